using System.Text.Json;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>
/// The encoder–decoder with additive attention and input feeding over a padded batch, against libtorch (float64
/// autograd): the logits of every step, the attention weights, and the gradient of every parameter. The fixture
/// comes from tests/ReferenceFixtures (Seq2SeqReference.cs; see Fixtures/README.md).
/// </summary>
[TestClass]
public sealed class Seq2SeqParityTests
{
    static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];

    [TestMethod]
    public void AdditiveAttentionDecoderMatchesLibtorch()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "seq2seq", "additive_attention.json")));
        var root = doc.RootElement;
        int V = root.GetProperty("target_vocabulary").GetInt32();
        var model = new Seq2SeqModel(new Seq2SeqConfig
        {
            SourceVocabularySize = root.GetProperty("source_vocabulary").GetInt32(), TargetVocabularySize = V,
            EmbeddingSize = root.GetProperty("embedding").GetInt32(), EncoderCell = new(RecurrentCellKind.Lstm),
            EncoderHiddenSize = root.GetProperty("encoder_hidden").GetInt32(), EncoderLayers = 1, Bidirectional = true,
            DecoderCell = new(RecurrentCellKind.Lstm), DecoderHiddenSize = root.GetProperty("decoder_hidden").GetInt32(),
            Attention = AttentionKind.Additive, AttentionSize = root.GetProperty("attention_size").GetInt32(), InputFeeding = true, Dropout = 0f,
        });
        var parameters = root.GetProperty("parameters");
        CollectionAssert.AreEquivalent(model.NamedParameters().Select(kv => kv.Key).ToList(), parameters.EnumerateObject().Select(p => p.Name).ToList(), "parameter names");
        model.Load(parameters.EnumerateObject().ToDictionary(p => p.Name, p => Floats(p.Value)));

        var data = new Seq2SeqDataset();
        var sources = root.GetProperty("sources").EnumerateArray().ToList();
        var targets = root.GetProperty("targets").EnumerateArray().ToList();
        for (int i = 0; i < sources.Count; i++)
            data.Add([.. sources[i].EnumerateArray().Select(v => v.GetInt32())], [.. targets[i].EnumerateArray().Select(v => v.GetInt32())]);
        var batch = new Seq2SeqBatch();
        Seq2SeqTrainer.Fill(batch, model, data, [.. Enumerable.Range(0, data.Count)]);
        int T = batch.TargetSteps, B = batch.Count, S = batch.SourceSteps;

        var logits = new float[T * B * V];
        model.Forward(logits, batch, training: false);
        GradientCheck.AssertClose(Floats(root.GetProperty("logits")), logits, 1e-4, 1e-5, "logits");
        var attention = new float[T * B * S];
        for (int t = 0; t < T; t++) model.Attention!.Weights(t).CopyTo(attention.AsSpan(t * B * S));
        GradientCheck.AssertClose(Floats(root.GetProperty("attention")), attention, 1e-4, 1e-5, "attention weights");

        foreach (var p in model.Parameters) p.ZeroGradient();
        model.Backward(Floats(root.GetProperty("loss_weights")));
        var gradients = root.GetProperty("gradients");
        foreach (var (name, p) in model.NamedParameters())
            GradientCheck.AssertClose(Floats(gradients.GetProperty(name)), p.Gradient.Data, 1e-4, 1e-5, $"d{name}");
    }
}
