using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

[TestClass]
public sealed class SequenceTrainerTests
{
    static (MLContext Ml, IDataView Train, IDataView Test, ITransformer Model) TrainBinary(Action<SequenceBinaryClassificationTrainer.Options>? configure = null)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(400, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Reviews(200, 2));
        var options = TestData.SmallBinary();
        configure?.Invoke(options);
        var model = TestData.Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(options)).Fit(train);
        return (ml, train, test, model);
    }

    [TestMethod]
    public void BinaryClassifierLearnsAndEvaluatesWithMLNetsEvaluator()
    {
        var (ml, _, test, model) = TrainBinary();
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
        Assert.IsGreaterThan(0.9, metrics.Accuracy, $"accuracy {metrics.Accuracy}");
        Assert.IsGreaterThan(0.95, metrics.AreaUnderRocCurve);
    }

    [TestMethod]
    public void SavedModelLoadsWithModelLoadAndPredictsBitIdentically()
    {
        var (ml, train, test, model) = TrainBinary();
        string path = Path.Combine(Path.GetTempPath(), $"deepseq-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = ml.Model.Load(path, out _);
            var before = ml.Data.CreateEnumerable<Scored>(model.Transform(test), false).ToList();
            var after = ml.Data.CreateEnumerable<Scored>(loaded.Transform(test), false).ToList();
            Assert.HasCount(before.Count, after);
            for (int i = 0; i < before.Count; i++)
            {
                Assert.AreEqual(BitConverter.SingleToInt32Bits(before[i].Score), BitConverter.SingleToInt32Bits(after[i].Score), $"row {i}");
                Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
            }
            // And in a fresh process, through a PredictionEngine.
            string[] texts = ["good good movie", "bad plot and bad actors", "the film was not bad really good"];
            var engine = ml.Model.CreatePredictionEngine<Review, Scored>(model);
            var expected = texts.Select(t => engine.Predict(new Review { Text = t }))
                .Select(p => $"{BitConverter.SingleToInt32Bits(p.Score):X8} {BitConverter.SingleToInt32Bits(p.Probability):X8} {p.PredictedLabel}").ToList();
            CollectionAssert.AreEqual(expected, TestData.RunLoadCheck([path, .. texts]));
        }
        finally { File.Delete(path); }
    }

    public sealed class Scored
    {
        public float Score;
        public float Probability;
        public bool PredictedLabel;
    }

    [TestMethod]
    public void TrainingLogsEpochsToMLContextLog()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(100, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 2;
        ml.DeepSeq().BinaryClassification(options).Fit(tokens, tokens);
        lock (messages)
        {
            Assert.IsTrue(messages.Any(m => m.Contains("Epoch 2/2") && m.Contains("validation loss") && m.Contains("sequences/s")), string.Join("\n", messages.TakeLast(20)));
            Assert.IsTrue(messages.Any(m => m.Contains("Kept the weights of epoch")));
        }
    }

    [TestMethod]
    public void OutputSchemaIsKnownBeforeFitting()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(30, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        // SchemaShape.Create is internal to ML.NET; estimators receive shapes made by it.
        var create = typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static, [typeof(DataViewSchema)])!;
        var shape = (SchemaShape)create.Invoke(null, [tokens.Schema])!;
        var output = ml.DeepSeq().BinaryClassification(TestData.SmallBinary()).GetOutputSchema(shape);
        var names = output.Select(c => c.Name).ToHashSet();
        foreach (var name in new[] { "Score", "Probability", "PredictedLabel", "AttentionWeights", "Tokens", "Text" }) Assert.Contains(name, names);
        Assert.IsFalse(names.Any(n => n.StartsWith("__DeepSeq")), "helper columns are dropped");
        var fitted = ml.DeepSeq().BinaryClassification(TestData.SmallBinary()).Fit(tokens).GetOutputSchema(tokens.Schema);
        CollectionAssert.AreEquivalent(names.ToList(), fitted.Select(c => c.Name).ToList());

        // A key label passes the same rule in both views of a schema.
        var topics = ml.Data.LoadFromEnumerable(TestData.Topics(30, 1));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label", "Category").Append(TestData.Tokenizer(ml)).Fit(topics).Transform(topics);
        var multiclass = ml.DeepSeq().MulticlassClassification(new SequenceMulticlassClassificationTrainer.Options { FeatureColumnName = "Tokens" })
            .GetOutputSchema((SchemaShape)create.Invoke(null, [keyed.Schema])!);
        Assert.IsTrue(multiclass.Any(c => c.Name == "PredictedLabel" && c.IsKey));
    }

    [TestMethod]
    public void CrossValidateRunsEveryFold()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(300, 3));
        var results = ml.BinaryClassification.CrossValidate(data, TestData.SmallBinaryPipeline(ml, 4), numberOfFolds: 3);
        Assert.HasCount(3, results);
        foreach (var r in results) Assert.IsGreaterThan(0.75, r.Metrics.Accuracy);
    }

    [TestMethod]
    public void FitDoesNotChangeTheEstimatorAndRepeatsForASeed()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(120, 4));
        var pipeline = TestData.SmallBinaryPipeline(ml, 2);
        float[] Scores() => [.. ml.Data.CreateEnumerable<Scored>(pipeline.Fit(data).Transform(data), false).Select(s => s.Score)];
        CollectionAssert.AreEqual(Scores(), Scores());
    }

    [TestMethod]
    public void MulticlassScoresAreProbabilitiesAndPredictedLabelMapsBackToTheClassName()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topics(300, 5));
        var test = ml.Data.LoadFromEnumerable(TestData.Topics(100, 6));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", "Category")
            .Append(TestData.Tokenizer(ml))
            .Append(ml.DeepSeq().MulticlassClassification(new SequenceMulticlassClassificationTrainer.Options
            {
                FeatureColumnName = "Tokens", HiddenSize = 16, EmbeddingSize = 8, Epochs = 6, BatchSize = 16, Dropout = 0f, Seed = 1, LearningRate = 0.01f,
                Pooling = PoolingMode.Attention,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedCategory", "PredictedLabel"));
        var model = pipeline.Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.9, metrics.MacroAccuracy, $"macro accuracy {metrics.MacroAccuracy}");
        Assert.IsTrue(scored.Schema["Score"].Type is VectorDataViewType { Size: 3 }, scored.Schema["Score"].Type.ToString());
        var rows = ml.Data.CreateEnumerable<TopicPrediction>(scored, false).ToList();
        foreach (var r in rows) Assert.AreEqual(1.0, r.Score.Sum(), 1e-5);
        Assert.IsGreaterThan(0.9, rows.Count(r => r.PredictedCategory == r.Category) / (double)rows.Count);
        // Attention pooling exposes one weight per token.
        Assert.IsTrue(rows.All(r => r.AttentionWeights.Length == r.Text.Split(' ').Length && Math.Abs(r.AttentionWeights.Sum() - 1) < 1e-4));
    }

    public sealed class TopicPrediction
    {
        public string Text = "";
        public string Category = "";
        public string PredictedCategory = "";
        public float[] Score = [];
        public float[] AttentionWeights = [];
    }

    [TestMethod]
    public void RegressionOnNumericSequencesLearnsASum()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Sums(500, 7));
        var test = ml.Data.LoadFromEnumerable(TestData.Sums(100, 8));
        var model = ml.DeepSeq().Regression(new SequenceRegressionTrainer.Options
        {
            LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2, Cell = SequenceCell.Gru, HiddenSize = 16,
            Bidirectional = false, Pooling = PoolingMode.Last, Epochs = 30, BatchSize = 16, Dropout = 0f, Seed = 1, LearningRate = 0.01f,
        }).Fit(train);
        var metrics = ml.Regression.Evaluate(model.Transform(test), labelColumnName: "Target");
        Assert.IsGreaterThan(0.9, metrics.RSquared, $"R² {metrics.RSquared}");
    }
}
