using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>Numeric input must declare its layout; validation data comes held out or encoded as the training data.</summary>
[TestClass]
public sealed class InputTests
{
    [TestMethod]
    public void AFeaturizeTextVectorIsNotReadAsASequence()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(40, 1));
        var featurized = ml.Transforms.Text.FeaturizeText("Features", "Text").Fit(data).Transform(data);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().BinaryClassification().Fit(featurized));
        Assert.AreEqual("FeaturesPerStep", ex.ParamName);
        StringAssert.Contains(ex.Message, "does not guess");
        StringAssert.Contains(ex.Message, "FeaturizeText");
        StringAssert.Contains(ex.Message, "TokenizeText");
    }

    [TestMethod]
    public void ANumericColumnWithoutADeclaredLayoutIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Sums(20, 1));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().Regression(new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps" }).Fit(data));
        StringAssert.Contains(ex.Message, "set FeaturesPerStep");
    }

    [TestMethod]
    public void AStepsTimesFeaturesColumnTypeDeclaresTheLayout()
    {
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(Series));
        schema["Steps"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 0, 2); // Vector<Single, *, 2>
        var data = ml.Data.LoadFromEnumerable(TestData.Sums(40, 1), schema);
        var options = new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps", HiddenSize = 4, Epochs = 1, Dropout = 0 };
        Assert.AreEqual(2, ml.DeepSeq().Regression(options).Fit(data).Model.Architecture.FeaturesPerStep);
        options.FeaturesPerStep = 3;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().Regression(options).Fit(data)).Message, "declares 2 values per step");
    }

    [TestMethod]
    public void TheHeldOutValidationFractionIsTheSameForASeed()
    {
        int[] a = SequenceFitting.HeldOut(200, 0.2f, seed: 5), b = SequenceFitting.HeldOut(200, 0.2f, seed: 5), c = SequenceFitting.HeldOut(200, 0.2f, seed: 6);
        Assert.HasCount(40, a);
        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, c);

        // Inside Fit: the same seed holds out the same rows, so the validation figures repeat; it is logged.
        var ml = new MLContext(seed: 1);
        var log = TestData.CaptureLog(ml);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(100, 2));
        double?[] ValidationLosses(int seed) => [.. TestData.Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(new SequenceBinaryClassificationTrainer.Options
        {
            FeatureColumnName = "Tokens", HiddenSize = 8, EmbeddingSize = 8, Epochs = 2, BatchSize = 16, Dropout = 0, Seed = seed, ValidationFraction = 0.25f,
        })).Fit(data).LastTransformer.TrainingReport.Epochs.Select(e => e.ValidationLoss)];
        var first = ValidationLosses(3);
        Assert.IsTrue(first.All(v => v is not null));
        CollectionAssert.AreEqual(first, ValidationLosses(3));
        Assert.IsTrue(log().Any(m => m.Contains("Held out 25 of 100 rows")), string.Join("\n", log().TakeLast(10)));
    }

    [TestMethod]
    public void ValidationDataAndValidationFractionAreExclusive()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(30, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.ValidationFraction = 0.2f;
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().BinaryClassification(options).Fit(tokens, tokens));
        StringAssert.Contains(ex.Message, "not both");
    }

    [TestMethod]
    public void ValidationDataTokenizedWithAnotherVocabularyIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1));
        var valid = ml.Data.LoadFromEnumerable(TestData.Reviews(60, 2));
        var trainTokens = TestData.Tokenizer(ml).Fit(train).Transform(train);
        var ownTokens = TestData.Tokenizer(ml).Fit(valid).Transform(valid); // its own vocabulary: ids in range, words different
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().BinaryClassification(TestData.SmallBinary()).Fit(trainTokens, ownTokens));
        StringAssert.Contains(ex.Message, "another vocabulary");
        Assert.AreEqual("validationData", ex.ParamName);
    }

    [TestMethod]
    public void ValidationLabelsMappedWithOtherKeysAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topics(40, 1));
        var valid = ml.Data.LoadFromEnumerable(TestData.Topics(40, 2).OrderBy(t => t.Category).ToList()); // keys in another order
        var tokenizer = TestData.Tokenizer(ml).Fit(train);
        var trainData = tokenizer.Transform(ml.Transforms.Conversion.MapValueToKey("Label", "Category").Fit(train).Transform(train));
        var validData = tokenizer.Transform(ml.Transforms.Conversion.MapValueToKey("Label", "Category").Fit(valid).Transform(valid));
        var options = new SequenceMulticlassClassificationTrainer.Options { FeatureColumnName = "Tokens", Epochs = 1 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().MulticlassClassification(options).Fit(trainData, validData)).Message, "other classes");
    }
}
