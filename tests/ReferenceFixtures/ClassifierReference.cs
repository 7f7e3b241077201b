using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeq.Fixtures;

/// <summary>
/// One end-to-end classifier fixture: embedding (padding id 0) → 2-layer bidirectional LSTM → pooling → dense head,
/// trained for a few Adam steps on one fixed batch. Sizes are small so the files stay small.
/// </summary>
sealed record ClassifierCase(string Name, string Pooling, string Loss)
{
    public int VocabularySize { get; init; } = 12;
    public int EmbeddingSize { get; init; } = 4;
    public int HiddenSize { get; init; } = 3;
    public int Layers { get; init; } = 2;
    public bool Bidirectional => true;
    public int AttentionSize { get; init; } = 3;
    public int Steps => Lengths.Max();
    public int Batch => Lengths.Length;
    public int[] Lengths { get; init; } = [4, 6, 1, 3]; // unsorted, with a one-step sequence
    public double LearningRate { get; init; } = 0.01;
    public double Beta1 => 0.9;
    public double Beta2 => 0.999;
    public double Epsilon => 1e-8;
    public int AdamSteps { get; init; } = 5;
    public int Outputs => Loss == "softmax_cross_entropy" ? 3 : 1;
    public int Directions => Bidirectional ? 2 : 1;
    public int PooledSize => (Pooling == "max_mean" ? 2 : 1) * Directions * HiddenSize;
}

/// <summary>The batch, the targets and the initial weights, named as a PyTorch module with submodules embedding, rnn, attention, head.</summary>
sealed class ClassifierData
{
    public required int[] Tokens;   // (T, B), 0 = padding, also inside sequences
    public required float[]? Targets; // (B) in {0, 1}, binary cross-entropy
    public required int[]? Labels;    // (B) in [0, 3), softmax cross-entropy
    public required Dictionary<string, float[]> Parameters;

    public static ClassifierData Create(ClassifierCase c, int seed)
    {
        var rng = new Random(seed);
        // Weights on a 1/1000 grid: random enough, exact in float32 and short in JSON.
        float[] R(int n, float scale) => [.. Enumerable.Range(0, n).Select(_ => MathF.Round(scale * (2f * rng.NextSingle() - 1f), 3))];
        int h = c.HiddenSize, g = 4 * h, T = c.Steps, B = c.Batch;
        var parameters = new Dictionary<string, float[]>();
        var embedding = R(c.VocabularySize * c.EmbeddingSize, 1f);
        Array.Clear(embedding, 0, c.EmbeddingSize); // the padding row is zero, as nn.Embedding(padding_idx: 0) makes it
        parameters["embedding.weight"] = embedding;
        for (int l = 0; l < c.Layers; l++)
            for (int d = 0; d < c.Directions; d++)
            {
                string suffix = $"_l{l}" + (d == 1 ? "_reverse" : "");
                int input = l == 0 ? c.EmbeddingSize : c.Directions * h;
                parameters["rnn.weight_ih" + suffix] = R(g * input, 0.6f);
                parameters["rnn.weight_hh" + suffix] = R(g * h, 0.6f);
                parameters["rnn.bias_ih" + suffix] = R(g, 0.4f);
                parameters["rnn.bias_hh" + suffix] = R(g, 0.4f);
            }
        int features = c.Directions * h;
        if (c.Pooling == "attention")
        {
            parameters["attention.weight"] = R(c.AttentionSize * features, 0.6f);
            parameters["attention.bias"] = R(c.AttentionSize, 0.4f);
            parameters["attention.v"] = R(c.AttentionSize, 1f);
        }
        parameters["head.weight"] = R(c.Outputs * c.PooledSize, 0.6f);
        parameters["head.bias"] = R(c.Outputs, 0.2f);

        var tokens = new int[T * B];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < c.Lengths[b]; t++) tokens[t * B + b] = rng.Next(1, c.VocabularySize);
        // Padding ids inside sequences: their embedding is zero and gets no gradient, but the steps still count.
        tokens[1 * B + 0] = 0; tokens[2 * B + 1] = 0;
        return new ClassifierData
        {
            Tokens = tokens, Parameters = parameters,
            Targets = c.Outputs == 1 ? [.. Enumerable.Range(0, B).Select(b => (float)((b + seed) % 2))] : null,
            Labels = c.Outputs == 1 ? null : [.. Enumerable.Range(0, B).Select(b => (b + seed) % c.Outputs)],
        };
    }
}

/// <summary>What libtorch computed: the loss before each Adam step, and the weights after the last.</summary>
sealed record ClassifierResult(string Source, float[] Losses, Dictionary<string, float[]> Final);

/// <summary>The classifier in libtorch (through TorchSharp), float64, trained by torch.optim.Adam.</summary>
static class ClassifierReference
{
    const string Version = "libtorch 2.10.0 via TorchSharp-cpu 0.107.0";

    static float[] F(Tensor t) => [.. t.detach().to_type(ScalarType.Float32).contiguous().data<float>()];

    public static ClassifierResult Run(ClassifierCase c, ClassifierData d)
    {
        int T = c.Steps, B = c.Batch, h = c.HiddenSize, features = c.Directions * h;
        var f64 = ScalarType.Float64;
        var embedding = nn.Embedding(c.VocabularySize, c.EmbeddingSize, padding_idx: 0, dtype: f64);
        var lstm = nn.LSTM(c.EmbeddingSize, h, c.Layers, bidirectional: c.Bidirectional, dtype: f64);
        var attention = c.Pooling == "attention" ? nn.Linear(features, c.AttentionSize, dtype: f64) : null;
        var v = c.Pooling == "attention" ? new Parameter(zeros(c.AttentionSize, dtype: f64)) : null;
        var head = nn.Linear(c.PooledSize, c.Outputs, dtype: f64);

        var named = new Dictionary<string, Parameter> { ["embedding.weight"] = embedding.weight! };
        foreach (var (name, p) in lstm.named_parameters()) named["rnn." + name] = p;
        if (attention is not null) { named["attention.weight"] = attention.weight!; named["attention.bias"] = attention.bias!; named["attention.v"] = v!; }
        named["head.weight"] = head.weight!; named["head.bias"] = head.bias!;
        if (!named.Keys.Order().SequenceEqual(d.Parameters.Keys.Order())) throw new InvalidOperationException("Parameter names differ.");
        using (no_grad())
            foreach (var (name, values) in d.Parameters) named[name].copy_(tensor(values, named[name].shape, dtype: f64));

        var tokens = tensor(d.Tokens.Select(i => (long)i).ToArray(), [T, B]);
        var lengths = tensor(c.Lengths.Select(n => (long)n).ToArray());
        var mask = arange(T).unsqueeze(1).lt(lengths.unsqueeze(0)); // (T, B): step t is inside sequence b
        var lengthsF = lengths.to_type(f64).unsqueeze(1);
        var ordered = d.Parameters.Keys.Select(k => named[k]).ToList();
        var adam = optim.Adam(ordered, lr: c.LearningRate, beta1: c.Beta1, beta2: c.Beta2, eps: c.Epsilon);

        var losses = new float[c.AdamSteps];
        double smallestMaxGap = double.PositiveInfinity;
        for (int step = 0; step < c.AdamSteps; step++)
        {
            adam.zero_grad();
            var x = embedding.call(tokens);                                             // (T, B, E)
            var packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted: false);
            var (outPacked, hN, _) = lstm.call(packed);
            var (y, _) = nn.utils.rnn.pad_packed_sequence(outPacked, total_length: T); // (T, B, 2H), zero past each end
            var m = mask.unsqueeze(2);
            Tensor Mean() => y.masked_fill(m.logical_not(), 0.0).sum(0L) / lengthsF;   // 0L: a literal 0 would bind to sum(ScalarType)
            Tensor Max()
            {
                var masked = y.masked_fill(m.logical_not(), double.NegativeInfinity);
                var top2 = masked.topk(2, dim: 0).values;                               // how close the runner-up is
                var gap = (top2[0] - top2[1]).masked_fill(lengths.unsqueeze(1).lt(2), double.PositiveInfinity);
                smallestMaxGap = Math.Min(smallestMaxGap, gap.min().item<double>());
                return masked.max(0L).values;
            }
            Tensor pooled = c.Pooling switch
            {
                "last" => cat([hN[^2], hN[^1]], 1),                                       // top layer: forward, reverse
                "mean" => Mean(),
                "max" => Max(),
                "max_mean" => cat([Max(), Mean()], 1),
                "attention" => Attention(y, mask, attention!, v!),
                _ => throw new NotSupportedException(c.Pooling),
            };
            var logits = head.call(pooled);                                             // (B, K)
            var loss = c.Outputs == 1
                ? nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), tensor(d.Targets!.Select(t => (double)t).ToArray()))
                : nn.functional.cross_entropy(logits, tensor(d.Labels!.Select(l => (long)l).ToArray()));
            losses[step] = (float)loss.item<double>();
            loss.backward();
            if (step == 0)
            {
                // Adam divides by √v̂: a gradient near zero in float64 would make the float32 step noise.
                double smallest = ordered.SelectMany(p => F(p.grad!)).Select(g => Math.Abs((double)g)).Where(g => g > 0).Min();
                Console.WriteLine($"  smallest non-zero |gradient| at step 1: {smallest:G3}");
            }
            adam.step();
        }
        if (c.Pooling.StartsWith("max")) Console.WriteLine($"  smallest max-pooling margin over the steps: {smallestMaxGap:G3}");
        return new ClassifierResult(
            $"{Version}: nn.Embedding(padding_idx 0), nn.LSTM on pack_padded_sequence, pooling and loss in torch ops, torch.optim.Adam as ported to C# by TorchSharp; float64, autograd",
            losses, d.Parameters.Keys.ToDictionary(k => k, k => F(named[k])));
    }

    // u = tanh(W·y_t + b), e_t = vᵀu_t, α = softmax over the sequence's own steps, pooled = Σ α_t·y_t.
    static Tensor Attention(Tensor y, Tensor mask, Linear projection, Tensor v)
    {
        var e = tanh(projection.call(y)).matmul(v);                                     // (T, B)
        var alpha = e.masked_fill(mask.logical_not(), double.NegativeInfinity).softmax(0L);
        return (alpha.unsqueeze(2) * y).sum(0L);
    }
}
