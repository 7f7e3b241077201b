using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class ModuleTests
{
    static SequenceModel Model(PoolingKind pooling = PoolingKind.Attention) => new(new SequenceModelConfig
    {
        VocabularySize = 10, EmbeddingSize = 3, Cell = new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.Input },
        HiddenSize = 4, Layers = 2, Bidirectional = true, Pooling = pooling, AttentionSize = 2, Outputs = 3,
    });

    [TestMethod]
    public void NamesAreHierarchicalUniqueAndInParameterOrder()
    {
        var model = Model();
        var names = model.NamedParameters().Select(kv => kv.Key).ToList();
        // A module's own parts come before its children's.
        CollectionAssert.AreEqual(new[]
        {
            "embedding.weight",
            "recurrent.layers.0.forward.weight_ih", "recurrent.layers.0.forward.weight_hh", "recurrent.layers.0.forward.bias_ih",
            "recurrent.layers.0.forward.bias_hh", "recurrent.layers.0.forward.weight_pi",
            "recurrent.layers.0.reverse.weight_ih", "recurrent.layers.0.reverse.weight_hh", "recurrent.layers.0.reverse.bias_ih",
            "recurrent.layers.0.reverse.bias_hh", "recurrent.layers.0.reverse.weight_pi",
            "recurrent.layers.1.forward.weight_ih", "recurrent.layers.1.forward.weight_hh", "recurrent.layers.1.forward.bias_ih",
            "recurrent.layers.1.forward.bias_hh", "recurrent.layers.1.forward.weight_pi",
            "recurrent.layers.1.reverse.weight_ih", "recurrent.layers.1.reverse.weight_hh", "recurrent.layers.1.reverse.bias_ih",
            "recurrent.layers.1.reverse.bias_hh", "recurrent.layers.1.reverse.weight_pi",
            "pooling.vector", "pooling.projection.weight", "pooling.projection.bias", "head.weight", "head.bias",
        }, names);
        CollectionAssert.AreEqual(model.NamedParameters().Select(kv => kv.Value).ToList(), model.Parameters.ToList(), "same order as Parameters");
        Assert.AreEqual("weight_hh_l1_reverse", RecurrentNetwork.TorchName("layers.1.reverse.weight_hh"));
    }

    [TestMethod]
    public void LoadRestoresEveryTensorAndRefusesMismatches()
    {
        var a = Model(); var b = Model();
        a.Initialize(new Random(1));
        b.Load(a.SnapshotTensors());
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            CollectionAssert.AreEqual(pa.Value.Data, pb.Value.Data, name);

        var missing = a.SnapshotTensors(); missing.Remove("head.bias");
        Assert.Contains("head.bias", Assert.ThrowsExactly<InvalidDataException>(() => b.Load(missing)).Message);
        var extra = a.SnapshotTensors(); extra["head.scale"] = [1f];
        Assert.Contains("head.scale", Assert.ThrowsExactly<InvalidDataException>(() => b.Load(extra)).Message);
        var wrong = a.SnapshotTensors(); wrong["head.bias"] = [1f];
        Assert.Contains("head.bias", Assert.ThrowsExactly<InvalidDataException>(() => b.Load(wrong)).Message);
    }

    [TestMethod]
    public void LoadBumpsVersionsSoPackedWeightsFollow()
    {
        var model = Model(PoolingKind.Mean);
        var before = model.Parameters.Select(p => p.Version).ToArray();
        model.Load(model.SnapshotTensors());
        Assert.IsTrue(model.Parameters.Select(p => p.Version).Zip(before).All(v => v.First != v.Second));
    }

    [TestMethod]
    public void ReseedRepeatsDropoutMasks()
    {
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 10, EmbeddingSize = 3, HiddenSize = 4, Dropout = 0.5f, Pooling = PoolingKind.Mean });
        model.Initialize(new Random(2));
        var batch = new SequenceBatch();
        batch.Reset(3, 2, 0); batch.SetTokens(0, [1, 2, 3]); batch.SetTokens(1, [4, 5]);
        float[] Run(ulong seed) { model.Reseed(seed); var logits = new float[2]; model.Forward(batch, logits, training: true); return logits; }
        var first = Run(7);
        CollectionAssert.AreEqual(first, Run(7), "same seed, same masks");
        CollectionAssert.AreNotEqual(first, Run(8), "another seed, other masks");
    }
}
