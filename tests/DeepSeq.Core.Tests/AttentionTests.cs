using DeepSeq.Core.Layers;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class AttentionTests
{
    public static IEnumerable<object[]> Kinds() => [[AttentionKind.Additive], [AttentionKind.Dot], [AttentionKind.General]];

    // Two decoder steps over a padded memory (S 4, B 3, lengths 4, 2, 1); L = Σ_t w_t·context_t.
    [TestMethod]
    [DynamicData(nameof(Kinds))]
    public void GradientsMatchFiniteDifferences(AttentionKind kind)
    {
        const int S = 4, B = 3, M = 5, T = 2;
        int Q = kind == AttentionKind.Dot ? M : 6;
        var rng = new Random(11 + (int)kind);
        var attention = new Attention(kind, Q, M, attentionSize: 7);
        GradientCheck.Randomize(attention, rng, 1f);
        var memory = GradientCheck.Random(S * B * M, rng);
        var queries = GradientCheck.Random(T * B * Q, rng);
        int[] lengths = [4, 2, 1];
        var w = GradientCheck.Random(T * B * M, rng, 3f);
        var context = new float[B * M];
        double Loss()
        {
            attention.SetMemory(memory, lengths, S, B);
            double l = 0;
            for (int t = 0; t < T; t++)
            {
                attention.Forward(context, queries.AsSpan(t * B * Q, B * Q), t);
                l += GradientCheck.Dot(w.AsSpan(t * B * M, B * M), context);
            }
            return l;
        }
        Loss();
        foreach (var p in attention.Parameters) p.ZeroGradient();
        var dQueries = new float[T * B * Q];
        var dMemory = new float[S * B * M];
        attention.BeginBackward();
        for (int t = T - 1; t >= 0; t--)
            attention.Backward(dQueries.AsSpan(t * B * Q, B * Q), w.AsSpan(t * B * M, B * M), queries.AsSpan(t * B * Q, B * Q), t);
        attention.BackwardMemory(dMemory);
        foreach (var (name, p) in attention.NamedParameters()) GradientCheck.Check($"{kind}/{name}", p, Loss, samples: 30);
        GradientCheck.Check($"{kind}/query", queries, dQueries, Loss, samples: 30);
        GradientCheck.Check($"{kind}/memory", memory, dMemory, Loss, samples: 60);
        // Padding: memory past a row's length gets no gradient, and the weights there are zero.
        for (int m = 0; m < M; m++) { Assert.AreEqual(0f, dMemory[(2 * B + 1) * M + m]); Assert.AreEqual(0f, dMemory[(1 * B + 2) * M + m]); }
        Assert.AreEqual(0f, attention.Weights(0)[1 * S + 2]);
        Assert.AreEqual(1f, attention.Weights(0)[2 * S + 0], 1e-6f);
    }

    [TestMethod]
    public void RejectsBadShapes()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new Attention(AttentionKind.Dot, 4, 5, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new Attention(AttentionKind.None, 4, 5, 3));
        var a = new Attention(AttentionKind.General, 4, 5, 0);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.SetMemory(new float[2 * 1 * 5], [3], 2, 1));
        StringAssert.Contains(e.Message, "length 3");
        Assert.ThrowsExactly<InvalidOperationException>(() => new Attention(AttentionKind.General, 4, 5, 0).Forward(new float[5], new float[4], 0));
    }
}
