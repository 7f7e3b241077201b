using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>CompareModels and SearchModels on tiny data with tiny models: ranking, failure isolation, budget, determinism, ensembles.</summary>
[TestClass]
public sealed class ModelComparisonTests
{
    static (MLContext Ml, IDataView Train, IDataView Valid) Data()
    {
        var ml = new MLContext(seed: 1);
        return (ml, ml.Data.LoadFromEnumerable(TestData.Reviews(300, 1)), ml.Data.LoadFromEnumerable(TestData.Reviews(150, 2)));
    }

    static ModelCandidate Perceptron(string name = "bag of words + perceptron") =>
        ModelCandidate.Create(name, c => c.Transforms.Text.FeaturizeText("Features", "Text").Append(c.BinaryClassification.Trainers.AveragedPerceptron(numberOfIterations: 5)));

    static ModelCandidate Logistic(string name = "bag of words + logistic regression") =>
        ModelCandidate.Create(name, c => c.Transforms.Text.FeaturizeText("Features", "Text").Append(c.BinaryClassification.Trainers.LbfgsLogisticRegression(
            new Microsoft.ML.Trainers.LbfgsLogisticRegressionBinaryTrainer.Options { NumberOfThreads = 1 })));

    static ModelCandidate Recurrent(string name = "LSTM", int epochs = 3)
    {
        var options = TestData.SmallBinary();
        options.Epochs = epochs;
        options.NumberOfThreads = 1;
        return ModelCandidate.Create(name, TestData.Tokenizer, options);
    }

    // A model trained on shuffled labels: it has learnt nothing, so it must rank last.
    static ModelCandidate Guesser(MLContext ml)
    {
        var rng = new Random(5);
        var rows = TestData.Reviews(300, 1).Select(r => new Review { Text = r.Text, Label = rng.Next(2) == 0 }).ToList();
        var model = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.AveragedPerceptron(numberOfIterations: 5))
            .Fit(ml.Data.LoadFromEnumerable(rows));
        return ModelCandidate.Trained("shuffled labels", model, TimeSpan.FromSeconds(1));
    }

    [TestMethod]
    public void RanksCandidatesByTheValidationMetricAndMeasuresEach()
    {
        var (ml, train, valid) = Data();
        var result = ml.DeepSeq().CompareModels([Guesser(ml), Perceptron(), Recurrent()], train, valid, new() { EnsembleSize = 0 });

        Assert.HasCount(3, result.Leaderboard);
        Assert.AreEqual("shuffled labels", result.Leaderboard[^1].Name);
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, result.Leaderboard.Select(e => e.Rank).ToArray());
        for (int i = 1; i < 3; i++) Assert.IsGreaterThanOrEqualTo(result.Leaderboard[i].Metric, result.Leaderboard[i - 1].Metric);
        Assert.IsGreaterThan(0.8, result.Best!.Metric);
        foreach (var e in result.Leaderboard)
        {
            Assert.AreEqual(CandidateStatus.Completed, e.Status, e.Reason);
            Assert.IsGreaterThan(0.0, e.ScoringRowsPerSecond);
            Assert.IsGreaterThan(1000L, e.ModelSizeBytes);
            Assert.IsGreaterThan(TimeSpan.Zero, e.TrainingTime);
            Assert.HasCount(1, e.FoldMetrics);
        }
        // The metric is ML.NET's: the best model scores the validation rows to the same accuracy.
        Assert.AreEqual(result.Best.Metric, ml.BinaryClassification.EvaluateNonCalibrated(result.BestModel.Transform(valid)).Accuracy, 1e-12);
        StringAssert.StartsWith(result.ToCsv(), "rank,name,kind,status,metric,metric_mean");
        StringAssert.Contains(result.ToJson(), "\"best\": \"" + result.Best.Name + "\"");
    }

    [TestMethod]
    public void ACandidateThatThrowsOrDivergesIsReportedAndTheOthersGoOn()
    {
        var (ml, train, valid) = Data();
        var broken = ModelCandidate.Create("throws", (ModelCandidateContext _) => throw new InvalidOperationException("no such column 'Typo'"));
        // A model whose scores are all NaN, as a model that diverged without noticing would give.
        var nan = ModelCandidate.Trained("NaN scores", ml.Transforms.CustomMapping<Review, NanScore>((_, o) => (o.Score, o.Probability, o.PredictedLabel) = (float.NaN, float.NaN, false), null)
            .Fit(train), TimeSpan.Zero);
        var result = ml.DeepSeq().CompareModels([broken, nan, Perceptron()], train, valid, new() { EnsembleSize = 0 });

        var byName = result.Leaderboard.ToDictionary(e => e.Name);
        Assert.AreEqual(CandidateStatus.Failed, byName["throws"].Status);
        StringAssert.Contains(byName["throws"].Reason, "no such column 'Typo'");
        Assert.AreEqual(CandidateStatus.Diverged, byName["NaN scores"].Status);
        StringAssert.Contains(byName["NaN scores"].Reason, "not finite");
        Assert.AreEqual(CandidateStatus.Completed, byName["bag of words + perceptron"].Status);
        Assert.AreEqual("bag of words + perceptron", result.Best!.Name);
        Assert.AreEqual(0, byName["throws"].Rank);
    }

    public sealed class NanScore
    {
        public float Score, Probability;
        public bool PredictedLabel;
    }

    [TestMethod]
    public void ACandidatePastItsShareIsStoppedAndReportedAndTheBudgetHolds()
    {
        var (ml, train, valid) = Data();
        // One that honours its token, one that ignores it (abandoned after the grace period), one left no time.
        var waits = ModelCandidate.Create("waits", (ModelCandidateContext c) => { Task.Delay(TimeSpan.FromMinutes(1), c.CancellationToken).Wait(); return null!; });
        var sleeps = ModelCandidate.Create("sleeps", (ModelCandidateContext _) => { Thread.Sleep(TimeSpan.FromSeconds(60)); return null!; });
        var clock = Stopwatch.StartNew();
        var result = ml.DeepSeq().CompareModels([waits, sleeps, Perceptron()], train, valid, new() { TimeBudget = TimeSpan.FromSeconds(2), EnsembleSize = 0 });
        Assert.IsLessThan(40.0, clock.Elapsed.TotalSeconds, "2 s of budget, then a 10 s grace period at most, not the 60 s sleep");

        var byName = result.Leaderboard.ToDictionary(e => e.Name);
        Assert.AreEqual(CandidateStatus.OverBudget, byName["waits"].Status);
        StringAssert.Contains(byName["waits"].Reason, "share of the budget");
        Assert.AreEqual(CandidateStatus.OverBudget, byName["sleeps"].Status);
        StringAssert.Contains(byName["sleeps"].Reason, "abandoned");
        Assert.AreEqual(CandidateStatus.Skipped, byName["bag of words + perceptron"].Status);
        Assert.IsNull(result.Best);
        Assert.ThrowsExactly<InvalidOperationException>(() => _ = result.BestModel);
    }

    [TestMethod]
    public void ADeepSeqModelStoppedAtItsShareKeepsItsBestWeightsAndIsRanked()
    {
        var (ml, train, valid) = Data();
        var result = ml.DeepSeq().CompareModels([Recurrent("long LSTM", epochs: 100_000)], train, valid, new() { TimeBudget = TimeSpan.FromSeconds(3) });
        var entry = result.Leaderboard.Single();
        Assert.AreEqual(CandidateStatus.Completed, entry.Status, entry.Reason);
        StringAssert.Contains(entry.Reason, "kept the weights it had");
        Assert.IsLessThan(10.0, entry.TrainingTime.TotalSeconds);
        Assert.IsGreaterThan(0.7, entry.Metric);
    }

    [TestMethod]
    public void TheSameSeedGivesTheSameLeaderboard()
    {
        string Board()
        {
            var (ml, train, valid) = Data();
            var result = ml.DeepSeq().CompareModels([Perceptron(), Recurrent(), Logistic()], train, valid, new() { Seed = 7 });
            return string.Join("\n", result.Leaderboard.Select(e => $"{e.Name} {e.Status} {e.Metric:R} {e.MetricStandardDeviation:R}"));
        }
        Assert.AreEqual(Board(), Board());
    }

    [TestMethod]
    public void EnsemblesOfTheBestAreRankedAndSaveAndLoadAsOneModel()
    {
        var (ml, train, valid) = Data();
        var result = ml.DeepSeq().CompareModels([Perceptron(), Recurrent(), Logistic()], train, valid, new() { EnsembleSize = 3 });

        var averaged = result.Leaderboard.Single(e => e.Kind == CandidateKind.Averaged);
        var stacked = result.Leaderboard.Single(e => e.Kind == CandidateKind.Stacked);
        Assert.AreEqual(CandidateStatus.Completed, averaged.Status, averaged.Reason);
        Assert.AreEqual(CandidateStatus.Completed, stacked.Status, stacked.Reason);
        Assert.HasCount(2, averaged.Members, "the perceptron has no probabilities to average");
        Assert.HasCount(3, stacked.Members);
        Assert.IsGreaterThan(result.Leaderboard.Where(e => e.Kind == CandidateKind.Single).Max(e => e.TrainingTime), stacked.TrainingTime);

        // The averaged ensemble, built from stock transforms, scores the validation rows to the accuracy it was ranked with.
        var model = result.GetModel(averaged.Name);
        Assert.AreEqual(averaged.Metric, ml.BinaryClassification.Evaluate(model.Transform(valid)).Accuracy, 1e-9);
        foreach (var name in new[] { averaged.Name, stacked.Name })
        {
            string path = Path.Combine(Path.GetTempPath(), $"deepseq-ensemble-{Guid.NewGuid():N}.zip");
            try
            {
                ml.Model.Save(result.GetModel(name), train.Schema, path);
                var loaded = ml.Model.Load(path, out _);
                var before = result.GetModel(name).Transform(valid).GetColumn<float>("Probability").ToArray();
                var after = loaded.Transform(valid).GetColumn<float>("Probability").ToArray();
                CollectionAssert.AreEqual(before, after, name);
            }
            finally { File.Delete(path); }
        }
    }

    [TestMethod]
    public void CrossValidationGivesAMeanAndSpreadPerCandidateAndRefitsTheBest()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(300, 3));
        var result = ml.DeepSeq().CompareModels([Perceptron(), Logistic()], data, numberOfFolds: 3, new() { EnsembleSize = 2 });

        foreach (var e in result.Leaderboard)
        {
            Assert.AreEqual(CandidateStatus.Completed, e.Status, e.Reason);
            Assert.HasCount(3, e.FoldMetrics);
            Assert.AreEqual(e.FoldMetrics.Average(), e.Metric, 1e-12);
            double mean = e.Metric, spread = Math.Sqrt(e.FoldMetrics.Sum(m => (m - mean) * (m - mean)) / 2);
            Assert.AreEqual(spread, e.MetricStandardDeviation, 1e-12, "sample standard deviation across the folds");
        }
        Assert.IsGreaterThan(0.7, ml.BinaryClassification.EvaluateNonCalibrated(result.BestModel.Transform(data)).Accuracy);
        Assert.IsNotNull(result.GetModel(result.Leaderboard.Single(e => e.Kind == CandidateKind.Stacked).Name));
    }

    [TestMethod]
    public void TheSearchHalvesItsTrialsOnTheValidationMetricAndRepeatsForASeed()
    {
        ModelComparisonResult Search()
        {
            var (ml, train, valid) = Data();
            var space = new SequenceSearchSpace { HiddenSizes = [4, 8], Poolings = [PoolingMode.Max, PoolingMode.Mean] };
            var baseOptions = TestData.SmallBinary();
            baseOptions.Epochs = 2;
            baseOptions.NumberOfThreads = 1;
            return ml.DeepSeq().SearchSequenceModels(space, TestData.Tokenizer, baseOptions, train, valid, new() { Seed = 3 },
                new ModelSearchOptions { Trials = 4, ReductionFactor = 2 });
        }
        var first = Search();
        Assert.HasCount(4, first.Leaderboard);
        var finalist = first.Leaderboard[0];
        Assert.AreEqual(CandidateStatus.Completed, finalist.Status, finalist.Reason);
        Assert.AreEqual(3, first.Leaderboard.Count(e => e.Status == CandidateStatus.Eliminated));
        Assert.AreEqual(2, first.Leaderboard.Count(e => e.Reason?.Contains("round 1/3") == true), "4 trials → 2 → 1");
        Assert.IsNotNull(first.BestModel);

        var second = Search();
        CollectionAssert.AreEqual(first.Leaderboard.Select(e => $"{e.Name} {e.Status} {e.Metric:R}").ToArray(),
            second.Leaderboard.Select(e => $"{e.Name} {e.Status} {e.Metric:R}").ToArray());
    }

    [TestMethod]
    public void NaiveBayesLogisticRegressionPicksItsPenaltyOnValidationAndSavesAndLoads()
    {
        var (ml, train, valid) = Data();
        var result = ml.DeepSeq().CompareModels([Perceptron(), ModelCandidate.NaiveBayesLogisticRegression("NB-LR", l2Penalties: [0.01f, 1f])], train, valid, new() { EnsembleSize = 2 });

        var nb = result.Leaderboard.Single(e => e.Name == "NB-LR");
        Assert.AreEqual(CandidateStatus.Completed, nb.Status, nb.Reason);
        Assert.IsGreaterThan(0.8, nb.Metric);
        StringAssert.Matches(nb.Reason, new System.Text.RegularExpressions.Regex(@"^L2 (0\.01|1) \(best of 0\.01, 1 on validation\)$"));
        Assert.AreEqual(CandidateStatus.Completed, result.Leaderboard.Single(e => e.Kind == CandidateKind.Stacked).Status);

        // Stock transforms only: it saves and loads, and scores the validation rows to the accuracy it was ranked with.
        var model = result.GetModel("NB-LR");
        Assert.AreEqual(nb.Metric, ml.BinaryClassification.Evaluate(model.Transform(valid)).Accuracy, 1e-12);
        string path = Path.Combine(Path.GetTempPath(), $"deepseq-nblr-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = ml.Model.Load(path, out _);
            CollectionAssert.AreEqual(model.Transform(valid).GetColumn<float>("Probability").ToArray(), loaded.Transform(valid).GetColumn<float>("Probability").ToArray());
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void NaiveBayesLogisticRegressionScalesEachCountByItsLogCountRatio()
    {
        var ml = new MLContext(seed: 1);
        Review R(string text, bool label) => new() { Text = text, Label = label };
        var data = ml.Data.LoadFromEnumerable([R("good film", true), R("good film", true), R("bad film", false), R("bad film", false)]);
        var result = ml.DeepSeq().CompareModels([ModelCandidate.NaiveBayesLogisticRegression("NB-LR", ngramLength: 1, l2Penalties: [0.1f])], data, data, new() { EnsembleSize = 0 });
        var features = result.GetModel("NB-LR").Transform(data).GetColumn<float[]>("__DeepSeq_NbFeatures").First(); // slots: good, film, bad

        // Present in 2 of 2 positive rows and 0 of 2 negative: r = log((2 + 1) / 7 / ((0 + 1) / 7)) = log 3, each class's
        // counts summing to 4 plus one per slot; "film" is in every row, r = 0, and the scale's floor is 0.001.
        double good = Math.Log(3), film = 1e-3, norm = Math.Sqrt(good * good + film * film);
        Assert.AreEqual(good / norm, features[0], 1e-6);
        Assert.AreEqual(film / norm, features[1], 1e-6);
        Assert.AreEqual(0f, features[2]);
    }

    public sealed class Picture
    {
        public string Label = "";
        [VectorType(1, 6, 6)] public float[] Pixels = [];
    }

    // Two classes: a bright 2×2 square in the left or the right half, on noise.
    static List<Picture> Pictures(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(i =>
        {
            var p = new float[36];
            for (int j = 0; j < p.Length; j++) p[j] = 0.3f * rng.NextSingle();
            int y0 = rng.Next(5), x0 = i % 2 == 0 ? rng.Next(2) : 3 + rng.Next(2);
            for (int y = y0; y < y0 + 2; y++) for (int x = x0; x < x0 + 2; x++) p[y * 6 + x] = 1f;
            return new Picture { Label = i % 2 == 0 ? "left" : "right", Pixels = p };
        })];
    }

    [TestMethod]
    public void AnImageModelIsRankedBesideAnMlNetMulticlassTrainer()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Pictures(160, 1));
        var valid = ml.Data.LoadFromEnumerable(Pictures(80, 2));
        var cnn = ModelCandidate.Create("CNN", c => c.Transforms.Conversion.MapValueToKey("Label").Append(c.DeepSeq().ImageClassification(new ImageClassificationOptions
        {
            FeatureColumnName = "Pixels", StageWidths = [4], BlocksPerStage = 1, Epochs = 4, BatchSize = 16, LearningRate = 0.05f, Flip = false, CropPadding = 0, Seed = 1, NumberOfThreads = 1,
        })));
        var maxEnt = ModelCandidate.Create("maximum entropy", c => c.Transforms.Conversion.MapValueToKey("Label").Append(c.MulticlassClassification.Trainers.LbfgsMaximumEntropy(featureColumnName: "Pixels")));
        var result = ml.DeepSeq().CompareModels([cnn, maxEnt], train, valid, new() { Task = SequenceTaskKind.MulticlassClassification, Metric = ComparisonMetric.MicroAccuracy });

        foreach (var e in result.Leaderboard)
        {
            Assert.AreEqual(CandidateStatus.Completed, e.Status, $"{e.Name}: {e.Reason}");
            Assert.IsGreaterThan(0.8, e.Metric, e.Name);
        }
        Assert.AreEqual(CandidateKind.Single, result.Leaderboard.Single(e => e.Name == "CNN").Kind, "multiclass: no ensembles");
        Assert.HasCount(2, result.Leaderboard);
        Assert.AreEqual(result.Best!.Metric, ml.MulticlassClassification.Evaluate(result.BestModel.Transform(valid)).MicroAccuracy, 1e-12);
    }

    [TestMethod]
    public void TheImageSearchDrawsDepthWidthAndActivationAndRepeatsForASeed()
    {
        ModelComparisonResult Search()
        {
            var ml = new MLContext(seed: 1);
            var train = ml.Data.LoadFromEnumerable(Pictures(160, 1));
            var valid = ml.Data.LoadFromEnumerable(Pictures(80, 2));
            var space = new ImageSearchSpace { BlocksPerStage = [1, 2], StageWidths = [[2], [4]], Activations = [ImageActivation.Relu, ImageActivation.Elu], Residual = [true, false] };
            var baseOptions = new ImageClassificationOptions { FeatureColumnName = "Pixels", Epochs = 4, BatchSize = 16, Flip = false, CropPadding = 0, Seed = 1, NumberOfThreads = 1 };
            return ml.DeepSeq().SearchImageModels(space, c => c.Transforms.Conversion.MapValueToKey("Label"), baseOptions, train, valid,
                search: new ModelSearchOptions { Trials = 4, ReductionFactor = 2 });
        }
        var first = Search();
        Assert.HasCount(4, first.Leaderboard);
        var finalist = first.Leaderboard[0];
        Assert.AreEqual(CandidateStatus.Completed, finalist.Status, finalist.Reason);
        Assert.IsGreaterThan(0.8, finalist.Metric, finalist.Name);
        Assert.AreEqual(3, first.Leaderboard.Count(e => e.Status == CandidateStatus.Eliminated));
        // Every trial names what it drew: network kind and depth (2 × blocks + 2 with one stage), width, activation, learning rate.
        foreach (var e in first.Leaderboard)
            StringAssert.Matches(e.Description, new System.Text.RegularExpressions.Regex(@"^(ResNet|plain)-(4|6) (2|4), (Relu|Elu), lr 0\.\d+$"), e.Name);

        var second = Search();
        CollectionAssert.AreEqual(first.Leaderboard.Select(e => $"{e.Name} {e.Status} {e.Metric:R}").ToArray(),
            second.Leaderboard.Select(e => $"{e.Name} {e.Status} {e.Metric:R}").ToArray());
    }

    [TestMethod]
    public void BadSettingsAreRefusedByName()
    {
        var (ml, train, valid) = Data();
        var catalog = ml.DeepSeq();
        Assert.ThrowsExactly<ArgumentException>(() => catalog.CompareModels([Perceptron()], train, valid, new() { Metric = ComparisonMetric.RSquared }));
        Assert.ThrowsExactly<ArgumentException>(() => catalog.CompareModels([Perceptron("a"), Perceptron("a")], train, valid));
        Assert.ThrowsExactly<ArgumentException>(() => catalog.CompareModels([], train, valid));
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => catalog.CompareModels([Perceptron()], train, valid, new() { LabelColumnName = "Sentiment" }));
        StringAssert.Contains(missing.Message, "Could not find label column 'Sentiment'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => catalog.CompareModels([Perceptron()], train, valid, new() { TimeBudget = TimeSpan.Zero }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => catalog.CompareModels([Perceptron()], train, numberOfFolds: 1));
        Assert.ThrowsExactly<ArgumentException>(() => catalog.CompareModels([Guesser(ml)], train, numberOfFolds: 3));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => catalog.SearchModels((_, _) => Perceptron(), train, valid, search: new() { ReductionFactor = 1 }));
        Assert.ThrowsExactly<ArgumentException>(() => catalog.SearchSequenceModels(new SequenceSearchSpace { Cells = [] }, TestData.Tokenizer, TestData.SmallBinary(), train, valid));
        var key = (Func<MLContext, IEstimator<ITransformer>>)(c => c.Transforms.Conversion.MapValueToKey("Label"));
        Assert.ThrowsExactly<ArgumentException>(() => catalog.SearchImageModels(new ImageSearchSpace { Activations = [] }, key, new ImageClassificationOptions(), train, valid));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => catalog.SearchImageModels(new ImageSearchSpace { BlocksPerStage = [0] }, key, new ImageClassificationOptions(), train, valid));
        var binary = Assert.ThrowsExactly<ArgumentException>(() => catalog.SearchImageModels(new ImageSearchSpace(), key, new ImageClassificationOptions(), train, valid, new ModelComparisonOptions()));
        StringAssert.Contains(binary.Message, "multiclass");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelCandidate.NaiveBayesLogisticRegression("NB-LR", ngramLength: 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelCandidate.NaiveBayesLogisticRegression("NB-LR", l2Penalties: []));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelCandidate.NaiveBayesLogisticRegression("NB-LR", l2Penalties: [float.NaN]));
    }
}
