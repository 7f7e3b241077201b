using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>
/// A row with nothing to score — no tokens (empty, whitespace-only, punctuation-only or null text), no steps, or a
/// NaN/∞ value — gets NaN scores, ML.NET's missing value, which the evaluators skip and count; training skips such
/// rows and reports how many.
/// </summary>
[TestClass]
public sealed class EmptyRowTests
{
    static readonly string?[] Blank = ["", "   ", " \t ", "!!! ...", null];

    static List<Review> WithBlankRows(int count, int seed)
    {
        var rows = TestData.Reviews(count, seed);
        for (int i = 0; i < Blank.Length; i++) rows.Insert(3 + 7 * i, new Review { Text = Blank[i]!, Label = i % 2 == 0 });
        return rows;
    }

    [TestMethod]
    public void BlankReviewsScoreAsMissingValuesAndEvaluateSkipsThem()
    {
        var ml = new MLContext(seed: 1);
        var log = TestData.CaptureLog(ml);
        var train = ml.Data.LoadFromEnumerable(WithBlankRows(300, 1));
        var test = ml.Data.LoadFromEnumerable(WithBlankRows(100, 2));
        var model = TestData.SmallBinaryPipeline(ml, 4).Fit(train);
        var report = ml.DeepSeq().GetTrainedModel(model).TrainingReport!;
        Assert.IsTrue(report.Warnings.Any(w => w.StartsWith("Skipped 5 training rows with no tokens")), string.Join("\n", report.Warnings));
        Assert.IsTrue(log().Any(m => m.Contains("Skipped 5 training rows")));

        var scored = model.Transform(test);
        var rows = ml.Data.CreateEnumerable<ScoredReview>(scored, false).ToList();
        var blank = Enumerable.Range(0, Blank.Length).Select(i => 3 + 7 * i).ToHashSet();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            if (blank.Contains(i)) // whitespace, punctuation-only, empty and null text alike: no tokens, a missing value
                Assert.IsTrue(float.IsNaN(r.Score) && float.IsNaN(r.Probability) && !r.PredictedLabel && r.AttentionWeights.Length == 0, $"row {i} '{r.Text}': {r.Score}");
            else Assert.IsTrue(float.IsFinite(r.Score), $"row {i}");
        }

        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.85, metrics.Accuracy);
        Assert.AreEqual(100, (int)metrics.ConfusionMatrix.Counts.Sum(row => row.Sum()), "the blank rows are skipped");
    }

    [TestMethod]
    public void CrossValidateRunsOverBlankRows()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(WithBlankRows(150, 3));
        var results = ml.BinaryClassification.CrossValidate(data, TestData.SmallBinaryPipeline(ml, 2), numberOfFolds: 2);
        Assert.HasCount(2, results);
        foreach (var r in results) Assert.IsTrue(double.IsFinite(r.Metrics.Accuracy));
    }

    [TestMethod]
    public void BlankRowsInMulticlassGetNaNScoresAndAMissingPredictedLabel()
    {
        var ml = new MLContext(seed: 1);
        var trainRows = TestData.Topics(150, 5);
        trainRows.Insert(10, new Topic { Text = "", Category = "sport" });
        var testRows = TestData.Topics(40, 6);
        testRows.Insert(5, new Topic { Text = "?!", Category = "music" });
        var pipeline = TestData.SmallTopicPipeline(ml, 4).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedCategory", "PredictedLabel"));
        var scored = pipeline.Fit(ml.Data.LoadFromEnumerable(trainRows)).Transform(ml.Data.LoadFromEnumerable(testRows));
        var blank = ml.Data.CreateEnumerable<SequenceTrainerTests.TopicPrediction>(scored, false).ElementAt(5);
        Assert.IsTrue(blank.Score.Length == 3 && blank.Score.All(float.IsNaN), string.Join(",", blank.Score));
        Assert.AreEqual("", blank.PredictedCategory, "key 0: missing");
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.8, metrics.MacroAccuracy);
        Assert.AreEqual(40, (int)metrics.ConfusionMatrix.Counts.Sum(row => row.Sum()), "the blank row is skipped");
    }

    [TestMethod]
    public void EmptyAndNonFiniteNumericRowsScoreAsMissingValues()
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.Sums(200, 7);
        train[4].Steps = []; // skipped in training
        var model = ml.DeepSeq().Regression(new SequenceRegressionTrainer.Options
        {
            LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2, Cell = SequenceCell.Gru, HiddenSize = 8,
            Bidirectional = false, Pooling = PoolingMode.Last, Epochs = 3, BatchSize = 16, Dropout = 0f, Seed = 1, LearningRate = 0.01f,
        }).Fit(ml.Data.LoadFromEnumerable(train));
        StringAssert.StartsWith(model.TrainingReport.Warnings.Single(w => w.StartsWith("Skipped")), "Skipped 1 training row with no steps");

        var test = TestData.Sums(30, 8);
        test[1].Steps = [];
        test[2].Steps[0] = float.NaN;
        test[3].Steps[3] = float.PositiveInfinity;
        var scored = model.Transform(ml.Data.LoadFromEnumerable(test));
        var scores = scored.GetColumn<float>("Score").ToArray();
        Assert.IsTrue(float.IsNaN(scores[1]) && float.IsNaN(scores[2]) && float.IsNaN(scores[3]));
        Assert.IsTrue(scores.Where((_, i) => i is not (1 or 2 or 3)).All(float.IsFinite));
        var metrics = ml.Regression.Evaluate(scored, labelColumnName: "Target");
        Assert.IsTrue(double.IsFinite(metrics.RootMeanSquaredError));
    }

    public sealed class ScoredReview
    {
        public string Text = "";
        public float Score;
        public float Probability;
        public bool PredictedLabel;
        public float[] AttentionWeights = [];
    }
}
