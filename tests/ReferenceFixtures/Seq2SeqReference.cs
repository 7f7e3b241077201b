using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeq.Fixtures;

/// <summary>
/// One encoder–decoder fixture: source embedding (padding id 0) → bidirectional LSTM on a packed batch → bridge
/// h0 = tanh(W_b·[h_fwd; h_rev] + b) → LSTM decoder with input feeding and additive attention over the padded
/// memory → h̃ = tanh(W_c·[context; h]) → output layer. Weights named as DeepSeq names them.
/// </summary>
sealed record Seq2SeqCase(string Name)
{
    public int SourceVocabulary => 7;
    public int TargetVocabulary => 8;      // ids 0–3 special, 4–7 tokens
    public int Embedding => 3;
    public int EncoderHidden => 3;
    public int DecoderHidden => 4;
    public int AttentionSize => 3;
    public int Memory => 2 * EncoderHidden;
    public int[][] Sources { get; } = [[4, 5, 6, 4], [6], [5, 4, 6]];     // lengths 4, 1, 3: padded, unsorted
    public int[][] Targets { get; } = [[4, 5], [6, 7, 4], []];           // an empty target decodes only EOS
    public int Batch => Sources.Length;
    public int SourceSteps => Sources.Max(s => s.Length);
    public int TargetSteps => Targets.Max(t => t.Length) + 1;
}

sealed class Seq2SeqData
{
    public required Dictionary<string, float[]> Parameters;
    public required float[] LossWeights; // (T, B, V); zero past each target's EOS

    public static Seq2SeqData Create(Seq2SeqCase c, int seed)
    {
        var rng = new Random(seed);
        float[] R(int n, float scale) => [.. Enumerable.Range(0, n).Select(_ => MathF.Round(scale * (2f * rng.NextSingle() - 1f), 3))];
        int E = c.Embedding, He = c.EncoderHidden, H = c.DecoderHidden, A = c.AttentionSize, M = c.Memory, V = c.TargetVocabulary;
        var p = new Dictionary<string, float[]>();
        var src = R(c.SourceVocabulary * E, 1f); Array.Clear(src, 0, E);
        p["source_embedding.weight"] = src;
        foreach (var dir in new[] { "forward", "reverse" })
        {
            p[$"encoder.layers.0.{dir}.weight_ih"] = R(4 * He * E, 0.6f);
            p[$"encoder.layers.0.{dir}.weight_hh"] = R(4 * He * He, 0.6f);
            p[$"encoder.layers.0.{dir}.bias_ih"] = R(4 * He, 0.4f);
            p[$"encoder.layers.0.{dir}.bias_hh"] = R(4 * He, 0.4f);
        }
        p["bridge.weight"] = R(H * M, 0.6f); p["bridge.bias"] = R(H, 0.4f);
        var tgt = R(V * E, 1f); Array.Clear(tgt, 0, E);
        p["target_embedding.weight"] = tgt;
        p["decoder.weight_ih"] = R(4 * H * (E + H), 0.6f); p["decoder.weight_hh"] = R(4 * H * H, 0.6f);
        p["decoder.bias_ih"] = R(4 * H, 0.4f); p["decoder.bias_hh"] = R(4 * H, 0.4f);
        p["attention.query.weight"] = R(A * H, 1f); p["attention.key.weight"] = R(A * M, 1f); p["attention.v"] = R(A, 1.5f);
        p["combine.weight"] = R(H * (M + H), 0.6f);
        p["output.weight"] = R(V * H, 0.6f); p["output.bias"] = R(V, 0.2f);
        int T = c.TargetSteps, B = c.Batch;
        var w = R(T * B * V, 1f);
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                if (t > c.Targets[b].Length) Array.Clear(w, (t * B + b) * V, V);
        return new Seq2SeqData { Parameters = p, LossWeights = w };
    }
}

sealed record Seq2SeqResult(string Source, float[] Logits, float[] Attention, Dictionary<string, float[]> Gradients);

static class Seq2SeqReference
{
    const string Version = "libtorch 2.10.0 via TorchSharp-cpu 0.107.0";

    static float[] F(Tensor t) => [.. t.detach().to_type(ScalarType.Float32).contiguous().data<float>()];

    public static Seq2SeqResult Run(Seq2SeqCase c, Seq2SeqData d)
    {
        var f64 = ScalarType.Float64;
        int S = c.SourceSteps, T = c.TargetSteps, B = c.Batch, E = c.Embedding, He = c.EncoderHidden, H = c.DecoderHidden, V = c.TargetVocabulary;
        var p = d.Parameters.ToDictionary(kv => kv.Key, kv => tensor(kv.Value.Select(v => (double)v).ToArray(), dtype: f64).requires_grad_(true));
        Tensor W(string name, long rows, long cols) => p[name].view(rows, cols);

        // Encoder: nn.LSTM on the packed batch, its weights from the fixture (copied in; gradients read back by name).
        var lstm = nn.LSTM(E, He, 1, bidirectional: true, dtype: f64);
        var lstmParams = lstm.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using (no_grad())
            foreach (var (name, param) in lstmParams) param.copy_(p[DeepSeqName(name)].view(param.shape));
        var srcIds = new long[S * B]; var tgtIn = new long[T * B];
        for (int b = 0; b < B; b++)
        {
            for (int s = 0; s < c.Sources[b].Length; s++) srcIds[s * B + b] = c.Sources[b][s];
            tgtIn[b] = 2; // BOS
            for (int t = 0; t < c.Targets[b].Length; t++) tgtIn[(t + 1) * B + b] = c.Targets[b][t];
        }
        var lengths = tensor(c.Sources.Select(s => (long)s.Length).ToArray());
        var x = W("source_embedding.weight", c.SourceVocabulary, E).index_select(0, tensor(srcIds)).view(S, B, E);
        var packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted: false);
        var (outPacked, hN, _) = lstm.call(packed);
        var (memory, _) = nn.utils.rnn.pad_packed_sequence(outPacked, total_length: S);          // (S, B, M), zero past each end
        var h = tanh(cat([hN[0], hN[1]], 1).matmul(W("bridge.weight", H, c.Memory).t()) + p["bridge.bias"]);
        var cell = zeros(B, H, dtype: f64);
        var feed = zeros(B, H, dtype: f64);
        var keys = memory.matmul(W("attention.key.weight", c.AttentionSize, c.Memory).t());      // (S, B, A)
        var mask = arange(S).unsqueeze(1).lt(lengths.unsqueeze(0));                               // (S, B)
        var tgtX = W("target_embedding.weight", V, E).index_select(0, tensor(tgtIn)).view(T, B, E);
        var wih = W("decoder.weight_ih", 4 * H, E + H); var whh = W("decoder.weight_hh", 4 * H, H);
        var logits = new List<Tensor>(); var attention = new List<Tensor>();
        for (int t = 0; t < T; t++)
        {
            var a = cat([tgtX[t], feed], 1).matmul(wih.t()) + p["decoder.bias_ih"] + h.matmul(whh.t()) + p["decoder.bias_hh"];
            var g = a.chunk(4, 1);
            cell = sigmoid(g[1]) * cell + sigmoid(g[0]) * tanh(g[2]);
            h = sigmoid(g[3]) * tanh(cell);
            var u = h.matmul(W("attention.query.weight", c.AttentionSize, H).t());                  // (B, A)
            var e = tanh(keys + u.unsqueeze(0)).matmul(p["attention.v"]);                           // (S, B)
            var alpha = e.masked_fill(mask.logical_not(), double.NegativeInfinity).softmax(0L);
            var context = (alpha.unsqueeze(2) * memory).sum(0L);                                    // (B, M)
            var ht = tanh(cat([context, h], 1).matmul(W("combine.weight", H, c.Memory + H).t()));
            feed = ht;
            logits.Add(ht.matmul(W("output.weight", V, H).t()) + p["output.bias"]);
            attention.Add(alpha.t());                                                               // (B, S)
        }
        var y = stack(logits);                                                                      // (T, B, V)
        var loss = (y * tensor(d.LossWeights.Select(v => (double)v).ToArray(), [T, B, V], dtype: f64)).sum();
        loss.backward();
        var grads = p.ToDictionary(kv => kv.Key, kv => kv.Value.grad is null ? new float[kv.Value.NumberOfElements] : F(kv.Value.grad));
        foreach (var (name, param) in lstmParams) grads[DeepSeqName(name)] = F(param.grad!);
        return new Seq2SeqResult($"{Version}: nn.LSTM (bidirectional) on pack_padded_sequence, the decoder step, additive attention and masking in torch ops; float64, autograd",
            F(y), F(stack(attention)), grads);
    }

    // weight_ih_l0_reverse → encoder.layers.0.reverse.weight_ih
    static string DeepSeqName(string torchName)
    {
        bool reverse = torchName.EndsWith("_reverse", StringComparison.Ordinal);
        string core = reverse ? torchName[..^"_reverse".Length] : torchName;
        int l = core.LastIndexOf("_l", StringComparison.Ordinal);
        return $"encoder.layers.{core[(l + 2)..]}.{(reverse ? "reverse" : "forward")}.{core[..l]}";
    }
}

static class Seq2SeqFixtures
{
    public static void Write(string directory, System.Text.Json.JsonSerializerOptions options)
    {
        Directory.CreateDirectory(directory);
        var c = new Seq2SeqCase("additive_attention");
        var data = Seq2SeqData.Create(c, 300);
        var r = Seq2SeqReference.Run(c, data);
        var doc = new Dictionary<string, object?>
        {
            ["name"] = c.Name, ["source"] = r.Source, ["source_vocabulary"] = c.SourceVocabulary, ["target_vocabulary"] = c.TargetVocabulary,
            ["embedding"] = c.Embedding, ["encoder_hidden"] = c.EncoderHidden, ["decoder_hidden"] = c.DecoderHidden, ["attention_size"] = c.AttentionSize,
            ["sources"] = c.Sources, ["targets"] = c.Targets, ["parameters"] = data.Parameters, ["loss_weights"] = data.LossWeights,
            ["logits"] = r.Logits, ["attention"] = r.Attention, ["gradients"] = r.Gradients,
        };
        File.WriteAllText(Path.Combine(directory, c.Name + ".json"), System.Text.Json.JsonSerializer.Serialize(doc, options));
        Console.WriteLine($"seq2seq/{c.Name}.json: {r.Source}");
    }
}
