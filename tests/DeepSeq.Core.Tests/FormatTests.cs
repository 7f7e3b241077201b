using DeepSeq.Core.Format;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class FormatTests
{
    // A module with parameters, state and a child, as batch normalisation will be.
    sealed class WithState : Module
    {
        public WithState()
        {
            Scale = AddParameter("weight", 3);
            Running = AddState("running_mean", 3);
            AddChild("head", new Dense(3, 2));
        }
        public Parameter Scale { get; }
        public Tensor Running { get; }
    }

    sealed record Config(string Kind, int Size, PoolingKind Pooling, double Loss);

    static SavedModel Sample()
    {
        var m = new WithState();
        m.Scale.Value.Data[1] = 2.5f;
        m.Running.Data[2] = -7f;
        return SavedModel.Create("Test", new Config("x", 3, PoolingKind.MaxMean, double.NaN), m);
    }

    [TestMethod]
    public void RoundTripKeepsConfigParametersAndState()
    {
        var bytes = ModelFile.Write(Sample());
        var back = ModelFile.Read(bytes);
        Assert.AreEqual("Test", back.Family);
        var config = back.Config<Config>();
        Assert.AreEqual(PoolingKind.MaxMean, config.Pooling);
        Assert.IsTrue(double.IsNaN(config.Loss), "non-finite numbers survive");
        Assert.Contains("\"MaxMean\"", back.ConfigJson, "enums are written by name");
        var fresh = new WithState();
        fresh.Load(back.Tensors);
        Assert.AreEqual(2.5f, fresh.Scale.Value.Data[1]);
        Assert.AreEqual(-7f, fresh.Running.Data[2], "state is saved and loaded like parameters");
        CollectionAssert.AreEquivalent(new[] { "weight", "running_mean", "head.weight", "head.bias" }, back.Tensors.Keys.ToArray());
        CollectionAssert.AreEqual(bytes, ModelFile.Write(back), "writing is deterministic");
    }

    [TestMethod]
    public void DamagedForeignAndNewerFilesAreRefusedClearly()
    {
        var bytes = ModelFile.Write(Sample());
        var flipped = (byte[])bytes.Clone(); flipped[40] ^= 1;
        Assert.Contains("checksum", Assert.ThrowsExactly<InvalidDataException>(() => ModelFile.Read(flipped)).Message);
        Assert.Contains("length", Assert.ThrowsExactly<InvalidDataException>(() => ModelFile.Read(bytes.AsSpan(0, bytes.Length - 5))).Message);
        Assert.Contains("header", Assert.ThrowsExactly<InvalidDataException>(() => ModelFile.Read("PK\x03\x04 not a model"u8)).Message);
        var newer = (byte[])bytes.Clone(); newer[4] = (byte)(ModelFile.Version + 1);
        Assert.Contains("newer", Assert.ThrowsExactly<InvalidDataException>(() => ModelFile.Read(newer)).Message);
        var older = (byte[])bytes.Clone(); older[4] = 1;
        Assert.Contains("earlier", Assert.ThrowsExactly<InvalidDataException>(() => ModelFile.Read(older)).Message);
    }

    [TestMethod]
    public void AConfigOfTheWrongShapeIsRefused()
    {
        var saved = new SavedModel("Test", "{\"Kind\": 5, ", new Dictionary<string, float[]>());
        Assert.Contains("Test", Assert.ThrowsExactly<InvalidDataException>(() => saved.Config<Config>()).Message);
    }

    [TestMethod]
    public void SequenceModelRoundTripsBitForBit()
    {
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 9, EmbeddingSize = 3, HiddenSize = 4, Pooling = PoolingKind.Attention, Outputs = 2 });
        model.Initialize(new Random(3));
        var back = ModelFile.Read(ModelFile.Write(SavedModel.Create("SequenceClassifier", model.Config, model)));
        var copy = new SequenceModel(back.Config<SequenceModelConfig>());
        copy.Load(back.Tensors);
        Assert.AreEqual(model.Config, copy.Config, "the typed configuration round-trips");
        foreach (var ((name, a), (_, b)) in model.NamedTensors().Zip(copy.NamedTensors()))
            CollectionAssert.AreEqual(a.Data, b.Data, name);
    }
}
