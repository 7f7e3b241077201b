using DeepSeq.Core.Layers;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class LayerGradientTests
{
    public static IEnumerable<object[]> Kinds() => Enum.GetValues<ActivationKind>().Select(k => new object[] { k });

    [TestMethod]
    [DynamicData(nameof(Kinds))]
    public void ActivationGradientsMatchFiniteDifferences(ActivationKind kind)
    {
        var rng = new Random((int)kind + 1);
        // Keep inputs away from the kink at 0, where a central difference straddles it.
        var x = GradientCheck.Random(40, rng, 2f).Select(v => MathF.Abs(v) < 0.05f ? v + 0.1f : v).ToArray();
        var w = GradientCheck.Random(40, rng);
        var y = new float[40];
        var act = new Activation(kind);
        double Loss() { act.Forward(y, x); return GradientCheck.Dot(w, y); }
        Loss();
        var dx = new float[40];
        act.Backward(dx, w, x, y);
        GradientCheck.Check(kind.ToString(), x, dx, Loss, samples: 40);
    }

    [TestMethod]
    public void ActivationValuesMatchDefinitions()
    {
        float[] x = [-2f, -0.5f, 0.5f, 3f];
        var y = new float[4];
        new Activation(ActivationKind.LeakyRelu).Forward(y, x);
        CollectionAssert.AreEqual(new[] { -0.02f, -0.005f, 0.5f, 3f }, y);
        new Activation(ActivationKind.LeakyRelu, 0.2f).Forward(y, x);
        Assert.AreEqual(-0.4f, y[0], 1e-7f);
        new Activation(ActivationKind.Elu).Forward(y, x);
        Assert.AreEqual(MathF.Exp(-2f) - 1f, y[0], 1e-6f);
        new Activation(ActivationKind.Selu).Forward(y, x);
        Assert.AreEqual(1.0507009873554805f * 3f, y[3], 1e-6f);
        new Activation(ActivationKind.Gelu).Forward(y, x);
        Assert.AreEqual(2.99636f, y[3], 1e-4f); // PyTorch gelu(3, approximate='tanh')
        new Activation(ActivationKind.Sigmoid).Forward(y, x);
        Assert.AreEqual(1f / (1f + MathF.Exp(2f)), y[0], 1e-6f);
    }

    [TestMethod]
    public void PReluGradientsMatchFiniteDifferences()
    {
        var rng = new Random(5);
        int n = 3, c = 4, s = 5;
        var layer = new PRelu(c);
        GradientCheck.Randomize(layer, rng);
        var x = GradientCheck.Random(n * c * s, rng, 2f).Select(v => MathF.Abs(v) < 0.05f ? v + 0.1f : v).ToArray();
        var w = GradientCheck.Random(x.Length, rng);
        var y = new float[x.Length];
        double Loss() { layer.Forward(y, x, n, s); return GradientCheck.Dot(w, y); }
        Loss();
        var dx = new float[x.Length];
        layer.Backward(dx, w, x, n, s);
        GradientCheck.Check("prelu/x", x, dx, Loss);
        GradientCheck.Check("prelu/slope", layer.Slope.Value.Data, layer.Slope.Gradient.Data, Loss);
    }

    [TestMethod]
    public void RReluDrawsSlopesInTrainingAndUsesTheirMeanAtInference()
    {
        var rng = new Random(6);
        var layer = new RRelu(seed: 3);
        var x = GradientCheck.Random(200, rng, 2f);
        var y = new float[200];
        layer.Forward(y, x, training: true);
        var dy = GradientCheck.Random(200, rng);
        var dx = new float[200];
        layer.Backward(dx, dy, x);
        var slopes = new HashSet<float>();
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] > 0) { Assert.AreEqual(x[i], y[i]); Assert.AreEqual(dy[i], dx[i]); continue; }
            float a = y[i] / x[i];
            Assert.IsTrue(a >= layer.Lower - 1e-6f && a <= layer.Upper + 1e-6f, $"slope {a} outside [{layer.Lower}, {layer.Upper}]");
            Assert.AreEqual(a * dy[i], dx[i], 1e-5f, "backward must use the slope drawn in forward");
            slopes.Add(MathF.Round(a, 4));
        }
        Assert.IsGreaterThan(10, slopes.Count, "slopes should vary in training");

        layer.Forward(y, x, training: false);
        float mean = (layer.Lower + layer.Upper) / 2;
        for (int i = 0; i < x.Length; i++) Assert.AreEqual(x[i] > 0 ? x[i] : mean * x[i], y[i], 1e-6f);
        var again = new RRelu(seed: 3); var y2 = new float[200];
        again.Forward(y2, x, training: true);
        layer = new RRelu(seed: 3); layer.Forward(y, x, training: true);
        CollectionAssert.AreEqual(y, y2, "same seed, same slopes");
    }

    [TestMethod]
    public void RReluAndDropoutGradientsMatchFiniteDifferencesForAFixedDraw()
    {
        // A fresh layer with the same seed draws the same slopes / mask, so the training-mode function is fixed.
        var rng = new Random(7);
        var x = GradientCheck.Random(60, rng, 2f).Select(v => MathF.Abs(v) < 0.05f ? v + 0.1f : v).ToArray();
        var w = GradientCheck.Random(60, rng);
        var y = new float[60];
        double RReluLoss() { new RRelu(seed: 5).Forward(y, x, training: true); return GradientCheck.Dot(w, y); }
        var rrelu = new RRelu(seed: 5);
        rrelu.Forward(y, x, training: true);
        var dx = new float[60];
        rrelu.Backward(dx, w, x);
        GradientCheck.Check("rrelu", x, dx, RReluLoss, samples: 60);

        double DropoutLoss() { new Dropout(0.4f, seed: 6).Forward(y, x, training: true); return GradientCheck.Dot(w, y); }
        var dropout = new Dropout(0.4f, seed: 6);
        dropout.Forward(y, x, training: true);
        Array.Clear(dx);
        dropout.Backward(dx, w);
        GradientCheck.Check("dropout", x, dx, DropoutLoss, samples: 60);
    }

    [TestMethod]
    public void MaxoutGradientsMatchFiniteDifferences()
    {
        var rng = new Random(8);
        var layer = new Maxout(3);
        var x = GradientCheck.Random(30, rng);
        var w = GradientCheck.Random(10, rng);
        var y = new float[10];
        double Loss() { layer.Forward(y, x); return GradientCheck.Dot(w, y); }
        Loss();
        var dx = new float[30];
        layer.Backward(dx, w);
        GradientCheck.Check("maxout", x, dx, Loss, samples: 30);
    }

    [TestMethod]
    public void DenseGradientsMatchFiniteDifferences()
    {
        var rng = new Random(9);
        var layer = new Dense(7, 5);
        GradientCheck.Randomize(layer, rng);
        int n = 4;
        var x = GradientCheck.Random(n * 7, rng);
        var w = GradientCheck.Random(n * 5, rng);
        var y = new float[n * 5];
        double Loss() { layer.Forward(y, x, n); return GradientCheck.Dot(w, y); }
        Loss();
        var dx = new float[x.Length];
        layer.Backward(dx, w, x, n);
        GradientCheck.Check("dense/x", x, dx, Loss);
        foreach (var p in layer.Parameters) GradientCheck.Check("dense/" + p.Name, p, Loss);
    }

    [TestMethod]
    public void EmbeddingGradientsMatchFiniteDifferencesAndPaddingStaysZero()
    {
        var rng = new Random(10);
        var layer = new Embedding(6, 3, paddingId: 0);
        Initializers.Initialize(layer, rng);
        int[] ids = [1, 0, 4, 1, 5];
        var w = GradientCheck.Random(ids.Length * 3, rng);
        var y = new float[ids.Length * 3];
        double Loss() { layer.Forward(y, ids); return GradientCheck.Dot(w, y); }
        Loss();
        for (int j = 0; j < 3; j++) Assert.AreEqual(0f, y[3 + j], "padding row");
        layer.Backward(w, ids);
        GradientCheck.Check("embedding", layer.Table.Value.Data, layer.Table.Gradient.Data, Loss, samples: 18);
        for (int j = 0; j < 3; j++) Assert.AreEqual(0f, layer.Table.Gradient.Data[j], "padding gets no gradient");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layer.Forward(new float[3], [6]));
    }

    [TestMethod]
    public void DropoutScalesKeptValuesAndRoutesGradientThroughTheMask()
    {
        var rng = new Random(12);
        var layer = new Dropout(0.3f, seed: 4);
        var x = GradientCheck.Random(4000, rng).Select(v => v + 2f).ToArray(); // non-zero inputs
        var y = new float[x.Length];
        layer.Forward(y, x, training: true);
        var dy = GradientCheck.Random(x.Length, rng);
        var dx = new float[x.Length];
        layer.Backward(dx, dy);
        int dropped = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float scale = y[i] / x[i];
            if (y[i] == 0) { dropped++; Assert.AreEqual(0f, dx[i]); }
            else { Assert.AreEqual(1f / 0.7f, scale, 1e-5f); Assert.AreEqual(dy[i] * scale, dx[i], 1e-5f); }
        }
        Assert.AreEqual(0.3, dropped / (double)x.Length, 0.03);
        layer.Forward(y, x, training: false);
        CollectionAssert.AreEqual(x, y, "identity at inference");
    }

    [TestMethod]
    public void LossGradientsMatchFiniteDifferences()
    {
        var rng = new Random(13);
        var z = GradientCheck.Random(12, rng, 3f);
        var t = GradientCheck.Random(12, rng).Select(v => v > 0 ? 1f : 0f).ToArray();
        var d = new float[12];
        Losses.BinaryCrossEntropyWithLogits(z, t, d);
        GradientCheck.Check("bce", z, (float[])d.Clone(), () => Losses.BinaryCrossEntropyWithLogits(z, t, new float[12]));
        Assert.AreEqual(Math.Log(2), Losses.BinaryCrossEntropyWithLogits([0f], [1f], new float[1]), 1e-6);
        Assert.AreEqual(0.0, Losses.BinaryCrossEntropyWithLogits([100f], [1f], new float[1]), 1e-6, "stable for large logits");

        int[] labels = [2, 0, 1];
        var probs = new float[12];
        Losses.SoftmaxCrossEntropy(z, labels, 4, d, probs);
        GradientCheck.Check("softmax-ce", z, (float[])d.Clone(), () => Losses.SoftmaxCrossEntropy(z, labels, 4, new float[12], new float[12]));
        Assert.AreEqual(1.0, probs.Take(4).Sum(), 1e-6);

        var target = GradientCheck.Random(12, rng);
        Losses.MeanSquaredError(z, target, d);
        GradientCheck.Check("mse", z, (float[])d.Clone(), () => Losses.MeanSquaredError(z, target, new float[12]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Losses.SoftmaxCrossEntropy(z, [4, 0, 0], 4, d, probs));
    }
}
