using System.Text.Json;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>
/// The whole classifier — embedding (padding id 0) → 2-layer bidirectional LSTM → pooling → dense head — trained
/// for five Adam steps on one batch, against libtorch (float64) doing the same: the loss of every step and every
/// final weight. The fixtures come from tests/ReferenceFixtures (see Fixtures/README.md).
/// </summary>
[TestClass]
public sealed class ClassifierParityTests
{
    static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "Fixtures", "classifier");

    [TestMethod]
    [DataRow(PoolingKind.Last, "last")]
    [DataRow(PoolingKind.Mean, "mean")]
    [DataRow(PoolingKind.Max, "max")]
    [DataRow(PoolingKind.MaxMean, "max_mean")]
    [DataRow(PoolingKind.Attention, "attention")]
    public void AdamStepsMatchLibtorch(PoolingKind pooling, string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, fixture + ".json")));
        var root = doc.RootElement;
        Assert.AreEqual(fixture, root.GetProperty("pooling").GetString());
        Assert.AreEqual("lstm", root.GetProperty("cell").GetString());
        int T = root.GetProperty("steps").GetInt32(), B = root.GetProperty("batch").GetInt32(), K = root.GetProperty("outputs").GetInt32();
        var model = new SequenceModel(new SequenceModelConfig
        {
            VocabularySize = root.GetProperty("vocabulary_size").GetInt32(),
            EmbeddingSize = root.GetProperty("embedding_size").GetInt32(),
            Cell = new RecurrentCellSpec(RecurrentCellKind.Lstm),
            HiddenSize = root.GetProperty("hidden_size").GetInt32(),
            Layers = root.GetProperty("layers").GetInt32(),
            Bidirectional = root.GetProperty("bidirectional").GetBoolean(),
            Merge = BidirectionalMerge.Concat,
            Pooling = pooling,
            AttentionSize = root.GetProperty("attention_size").GetInt32(),
            Dropout = 0f,
            Outputs = K,
        });
        var byName = ParametersByName(model);
        var initial = root.GetProperty("initial_parameters");
        CollectionAssert.AreEquivalent(byName.Keys.ToList(), initial.EnumerateObject().Select(p => p.Name).ToList(), "parameter names");
        foreach (var p in initial.EnumerateObject()) { Floats(p.Value).CopyTo(byName[p.Name].Value.Data, 0); byName[p.Name].MarkChanged(); }

        // The batch: tokens (T, B) time-major; 0 is padding, past each end and inside sequences too.
        int[] lengths = [.. root.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32())];
        int[] tokens = [.. root.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
        var batch = new SequenceBatch();
        batch.Reset(T, B, features: 0);
        for (int b = 0; b < B; b++) batch.SetTokens(b, [.. Enumerable.Range(0, lengths[b]).Select(t => tokens[t * B + b])]);
        bool binary = root.GetProperty("loss").GetString() == "binary_cross_entropy_with_logits";
        Assert.AreEqual(binary ? 1 : 3, K);
        var targets = binary ? Floats(root.GetProperty("targets")) : null;
        int[]? labels = binary ? null : [.. root.GetProperty("labels").EnumerateArray().Select(e => e.GetInt32())];

        var adamSettings = root.GetProperty("adam");
        var adam = new Adam(model.Parameters, learningRate: adamSettings.GetProperty("lr").GetSingle(),
            beta1: adamSettings.GetProperty("beta1").GetSingle(), beta2: adamSettings.GetProperty("beta2").GetSingle(),
            epsilon: adamSettings.GetProperty("eps").GetSingle());
        int steps = root.GetProperty("adam_steps").GetInt32();
        var losses = new float[steps];
        var logits = new float[B * K];
        var dLogits = new float[B * K];
        var probabilities = new float[B * K];
        for (int step = 0; step < steps; step++)
        {
            model.Forward(batch, logits, training: true); // dropout is 0: training and inference agree
            losses[step] = binary
                ? Losses.BinaryCrossEntropyWithLogits(logits, targets, dLogits)
                : Losses.SoftmaxCrossEntropy(logits, labels, K, dLogits, probabilities);
            adam.ZeroGradients();
            model.Backward(dLogits);
            adam.Step();
        }

        // float32 against float64 through 5 forward/backward passes and Adam's √v̂ normalisation: 1e-4 relative
        // with a 1e-5 absolute floor, as for the single-network parity fixtures.
        const double rel = 1e-4, abs = 1e-5;
        string source = root.GetProperty("source").GetString()!;
        var expectedLosses = Floats(root.GetProperty("losses"));
        var (worstLoss, worstLossShare) = Deviation(expectedLosses, losses, rel, abs);
        GradientCheck.AssertClose(expectedLosses, losses, rel, abs, $"{fixture} losses vs {source}");
        double worstWeight = 0, worstWeightShare = 0;
        foreach (var p in root.GetProperty("final_parameters").EnumerateObject())
        {
            var expected = Floats(p.Value);
            var (d, share) = Deviation(expected, byName[p.Name].Value.Data, rel, abs);
            worstWeight = Math.Max(worstWeight, d); worstWeightShare = Math.Max(worstWeightShare, share);
            GradientCheck.AssertClose(expected, byName[p.Name].Value.Data, rel, abs, $"{fixture} final {p.Name}");
        }
        Console.WriteLine($"{fixture}: largest |Δ| loss {worstLoss:G2} ({worstLossShare:P1} of its tolerance), weight {worstWeight:G2} ({worstWeightShare:P1})");
        Assert.AreEqual(-1, byName["embedding.weight"].Value.Data.AsSpan(0, model.Config.EmbeddingSize).IndexOfAnyExcept(0f), "the padding row moved");
    }

    /// <summary>
    /// The model's parameters under the fixture's names (PyTorch's, as a module with submodules embedding, rnn,
    /// attention, head). Every parameter of the model appears exactly once, so a new one cannot go unchecked.
    /// </summary>
    static Dictionary<string, Parameter> ParametersByName(SequenceModel model)
    {
        var map = new Dictionary<string, Parameter> { ["embedding.weight"] = model.Embedding!.Table };
        var rnn = model.Recurrent;
        for (int l = 0; l < rnn.LayerCount; l++)
            for (int d = 0; d < rnn.Directions; d++)
            {
                var cell = rnn.Cells[l * rnn.Directions + d];
                string suffix = $"_l{l}" + (d == 1 ? "_reverse" : "");
                map["rnn.weight_ih" + suffix] = cell.WeightIh;
                map["rnn.weight_hh" + suffix] = cell.WeightHh;
                map["rnn.bias_ih" + suffix] = cell.BiasIh;
                map["rnn.bias_hh" + suffix] = cell.BiasHh;
            }
        if (model.Pooling?.AttentionProjection is { } projection)
        {
            map["attention.weight"] = projection.Weight;
            map["attention.bias"] = projection.Bias!;
            map["attention.v"] = model.Pooling.AttentionVector!;
        }
        map["head.weight"] = model.Head.Weight;
        map["head.bias"] = model.Head.Bias!;
        CollectionAssert.AreEquivalent(model.Parameters.ToList(), map.Values.ToList(), "every parameter mapped exactly once");
        return map;
    }

    // Largest |expected − actual|, and the largest share of its tolerance used (≤ 1 passes): for the test log.
    static (double Largest, double Share) Deviation(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs)
    {
        double largest = 0, share = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)expected[i] - actual[i]);
            largest = Math.Max(largest, d);
            share = Math.Max(share, d / (abs + rel * Math.Abs(expected[i])));
        }
        return (largest, share);
    }

    static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];
}
