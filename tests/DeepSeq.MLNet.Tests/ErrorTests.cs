using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

[TestClass]
public sealed class ErrorTests
{
    [TestMethod]
    public void MissingFeatureColumnUsesMLNetsWording()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Tokenizer(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Reviews(20, 1))).Transform(ml.Data.LoadFromEnumerable(TestData.Reviews(20, 1)));
        var options = TestData.SmallBinary("Nope");
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().BinaryClassification(options).Fit(data));
        StringAssert.Contains(ex.Message, "Could not find feature column 'Nope'");
    }

    [TestMethod]
    public void MistypedLabelUsesMLNetsWording()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Sums(20, 1));
        var options = new SequenceBinaryClassificationTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps" };
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().BinaryClassification(options).Fit(data));
        StringAssert.Contains(ex.Message, "Schema mismatch for label column 'Target': expected Boolean, got Single");
    }

    [TestMethod]
    public void MistypedFeatureColumnIsReported()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(20, 1));
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().BinaryClassification(TestData.SmallBinary("Text")).Fit(data));
        StringAssert.Contains(ex.Message, "Schema mismatch for feature column 'Text'");
    }

    [TestMethod]
    public void AllEmptySequencesLeaveNothingToTrainOn()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Sums(4, 1);
        foreach (var r in rows) r.Steps = [];
        var options = new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2 };
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.DeepSeq().Regression(options).Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(ex.Message, "no row with steps");
    }

    [TestMethod]
    public void NaNFeatureIsReported()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Sums(10, 1);
        rows[5].Steps[1] = float.NaN;
        var options = new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2 };
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.DeepSeq().Regression(options).Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(ex.Message, "Row 5");
        StringAssert.Contains(ex.Message, "NaN");
    }

    [TestMethod]
    public void InfiniteRegressionLabelIsReported()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Sums(10, 1);
        rows[2].Target = float.PositiveInfinity;
        var options = new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2 };
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.DeepSeq().Regression(options).Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(ex.Message, "Row 2");
        StringAssert.Contains(ex.Message, "infinite label");
    }

    [TestMethod]
    public void MissingClassLabelIsReported()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topics(30, 1));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", "Category").Fit(train);
        var withUnknown = TestData.Topics(10, 2);
        withUnknown[4].Category = "weather"; // not among the label's keys: key 0, missing
        var data = TestData.Tokenizer(ml).Fit(train).Transform(toKey.Transform(ml.Data.LoadFromEnumerable(withUnknown)));
        var options = new SequenceMulticlassClassificationTrainer.Options { FeatureColumnName = "Tokens", Epochs = 1 };
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.DeepSeq().MulticlassClassification(options).Fit(data));
        StringAssert.Contains(ex.Message, "Row 4");
        StringAssert.Contains(ex.Message, "missing label");
    }

    [TestMethod]
    public void BadOptionsAreRejectedWithTheValue()
    {
        var ml = new MLContext();
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().BinaryClassification(new SequenceBinaryClassificationTrainer.Options { Epochs = 0 }));
        StringAssert.Contains(ex.Message, "Epochs");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().BinaryClassification(new SequenceBinaryClassificationTrainer.Options { LearningRate = float.NaN }));
    }

    static string ValidBlob()
    {
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 30, EmbeddingSize = 4, HiddenSize = 4, Dropout = 0f });
        model.Initialize(new Random(1));
        return ModelFormat.Write(SavedSequenceModel.From(model, SequenceTask.BinaryClassification, [], 400, false, 1));
    }

    // A failure inside a batch's forward (here a token id past the vocabulary, put in behind Read's check) reaches the
    // block scorer as itself, whether the block's batches run on one thread or are shared out between threads.
    [TestMethod]
    public void ABatchFailureInABlockRaisesTheSameErrorOnOneThreadAndOnSeveral()
    {
        var model = new LoadedModel(ModelFormat.Read(ValidBlob()));
        ScoringRow[] Rows()
        {
            var rows = new ScoringRow[3 * LoadedModel.BatchRows + 5];
            for (int i = 0; i < rows.Length; i++)
            {
                rows[i] = new ScoringRow();
                model.Read(rows[i], [1u, 2u, 3u, (uint)(i % 20 + 1)], default);
            }
            rows[^1].Tokens[0] = 999;
            return rows;
        }
        Exception serial;
        using (Core.Kernels.Gemm.LimitThreads(1)) serial = Assert.Throws<Exception>(() => model.PredictBlock(Rows()));
        var shared = Assert.Throws<Exception>(() => model.PredictBlock(Rows()));
        Assert.IsNotInstanceOfType<AggregateException>(shared);
        Assert.AreEqual(serial.GetType(), shared.GetType());
        Assert.AreEqual(serial.Message, shared.Message);
    }

    [TestMethod]
    public void DamagedModelGivesAClearErrorWhenScoring()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(20, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var blob = ValidBlob().ToCharArray();
        blob[ModelFormat.Prefix.Length + 300] = blob[ModelFormat.Prefix.Length + 300] == 'A' ? 'B' : 'A';
        var chain = SequenceFitting.Chain(ml, "Tokens", tokens: true, SequenceTaskKind.BinaryClassification, new string(blob), [], new HashSet<string>()).Fit(tokens);
        var ex = Assert.Throws<Exception>(() => ml.Data.CreateEnumerable<SequenceTrainerTests.Scored>(chain.Transform(tokens), false).ToList());
        var inner = ex.GetBaseException();
        Assert.IsInstanceOfType<InvalidDataException>(inner, ex.ToString());
        StringAssert.Contains(inner.Message, "damaged");
    }

    [TestMethod]
    public void ModelFormatRejectsForeignNewerAndDamagedText()
    {
        var blob = ValidBlob();
        Assert.AreEqual(30, ModelFormat.Read(blob).Config.VocabularySize, "a valid blob reads back");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ModelFormat.Read("hello")).Message, "does not hold a DeepSeq model");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ModelFormat.Read("DeepSeq.v9:AAAA")).Message, "newer DeepSeq format");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ModelFormat.Read(blob.AsSpan(0, blob.Length - 40))).Message, "damaged");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ModelFormat.Read(ModelFormat.Prefix + "!!!")).Message, "damaged");
    }

    [TestMethod]
    public void CorruptModelFileFailsToLoadWithAnException()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1));
        var model = TestData.SmallBinaryPipeline(ml, 1).Fit(train);
        string path = Path.Combine(Path.GetTempPath(), $"deepseq-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var bytes = File.ReadAllBytes(path);
            for (int i = bytes.Length / 3; i < bytes.Length / 3 + 64; i++) bytes[i] ^= 0x5A;
            File.WriteAllBytes(path, bytes);
            Assert.Throws<Exception>(() => ml.Model.Load(path, out _).Transform(train).Preview());
        }
        finally { File.Delete(path); }
    }
}
