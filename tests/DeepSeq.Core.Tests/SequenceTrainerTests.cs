using DeepSeq.Core.Layers;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class SequenceTrainerTests
{
    // Label 1 when token 1 occurs more often than token 2; other tokens are noise.
    static SequenceDataset Counting(int count, int seed)
    {
        var rng = new Random(seed);
        var rows = new List<int[]>(); var labels = new List<float>();
        for (int i = 0; i < count; i++)
        {
            var seq = Enumerable.Range(0, rng.Next(3, 12)).Select(_ => rng.Next(1, 8)).ToArray();
            int ones = seq.Count(t => t == 1), twos = seq.Count(t => t == 2);
            if (ones == twos) { seq[0] = 1; ones++; if (seq.Skip(1).Count(t => t == 2) == ones) seq[^1] = 1; }
            rows.Add(seq); labels.Add(seq.Count(t => t == 1) > seq.Count(t => t == 2) ? 1f : 0f);
        }
        return SequenceDataset.FromTokens(rows, labels);
    }

    static SequenceModel Small(int seed = 1)
    {
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 8, EmbeddingSize = 8, HiddenSize = 16, Dropout = 0f, Pooling = PoolingKind.MaxMean }, seed);
        model.Initialize(new Random(seed));
        return model;
    }

    [TestMethod]
    public void TrainsToHighValidationAccuracyAndReportsEveryEpoch()
    {
        var model = Small();
        var reports = new List<TrainingProgress>();
        var report = SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Counting(600, 1), Counting(200, 2), new SequenceTrainingOptions
        {
            Epochs = 6, BatchSize = 16, LearningRate = 0.01f, Seed = 3, EarlyStoppingPatience = 0, Progress = new Collect(reports),
        });
        Assert.HasCount(6, report.Epochs);
        Assert.IsGreaterThan(0.9, report.Epochs.Max(e => e.ValidationMetric!.Value));
        Assert.IsTrue(reports.Any(r => r.ValidationMetric is not null && r.SequencesPerSecond > 0));
        Assert.AreEqual(report.Epochs.MaxBy(e => e.ValidationMetric)!.Epoch, report.BestEpoch, "the best epoch's weights are kept");
        var (_, accuracy) = SequenceTrainer.Evaluate(model, SequenceTask.BinaryClassification, Counting(200, 2));
        Assert.AreEqual(report.Epochs[report.BestEpoch - 1].ValidationMetric!.Value, accuracy, 1e-9, "restored weights score as the best epoch did");
    }

    [TestMethod]
    public void WeightAveragingKeepsTheAverageTheValidationScored()
    {
        var model = Small();
        var report = SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Counting(600, 1), Counting(200, 2), new SequenceTrainingOptions
        {
            Epochs = 6, BatchSize = 16, LearningRate = 0.01f, Seed = 3, EarlyStoppingPatience = 0, WeightAveraging = 0.99f,
        });
        Assert.IsGreaterThan(0.9, report.Epochs.Max(e => e.ValidationMetric!.Value));
        var (_, accuracy) = SequenceTrainer.Evaluate(model, SequenceTask.BinaryClassification, Counting(200, 2));
        Assert.AreEqual(report.Epochs[report.BestEpoch - 1].ValidationMetric!.Value, accuracy, 1e-9, "the kept weights are the average that was validated");
    }

    [TestMethod]
    public void DivergenceIsReportedAndTheLastGoodWeightsKept()
    {
        // Regression (MSE is unbounded) with an SGD step of 1e4 and no clipping: the loss overflows within a few batches.
        var model = Small();
        var counting = Counting(200, 1);
        var targets = Enumerable.Range(0, counting.Count).Select(i => (float)counting.Tokens(i).Length).ToList();
        var data = SequenceDataset.FromTokens([.. Enumerable.Range(0, counting.Count).Select(i => counting.Tokens(i).ToArray())], targets);
        var report = SequenceTrainer.Train(model, SequenceTask.Regression, data, null, new SequenceTrainingOptions
        {
            Epochs = 5, BatchSize = 8, Optimizer = OptimizerKind.Sgd, LearningRate = 1e4f, Momentum = 0.9f, GradientClipNorm = 0, Seed = 1,
        });
        Assert.IsNotNull(report.Divergence, "an SGD step of 1e4 without clipping must blow up");
        StringAssert.Contains(report.Divergence, "diverged");
        Assert.IsTrue(model.Parameters.All(p => p.Value.Data.All(float.IsFinite)), "kept weights are finite");
        var initial = Small();
        if (report.BestEpoch == 0)
            CollectionAssert.AreEqual(initial.Parameters.SelectMany(p => p.Value.Data).ToArray(), model.Parameters.SelectMany(p => p.Value.Data).ToArray(), "before any good epoch, the initial weights are kept");
    }

    [TestMethod]
    public void CancellationStopsTrainingAndKeepsTheBestWeights()
    {
        using var cts = new CancellationTokenSource();
        var model = Small();
        int calls = 0;
        var report = SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Counting(400, 1), null, new SequenceTrainingOptions
        {
            Epochs = 50, BatchSize = 8, Seed = 1, CancellationToken = cts.Token,
            Progress = new Collect(null, p => { if (p.Batch == p.Batches && ++calls == 2) cts.Cancel(); }),
        });
        Assert.IsTrue(report.Cancelled);
        Assert.IsLessThan(50, report.Epochs.Count);
        Assert.IsGreaterThan(0, report.BestEpoch);
    }

    [TestMethod]
    public void SameSeedSameModel()
    {
        float[] Run()
        {
            var model = Small(4);
            SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Counting(100, 1), null, new SequenceTrainingOptions { Epochs = 2, BatchSize = 8, Seed = 9 });
            return [.. model.Parameters.SelectMany(p => p.Value.Data)];
        }
        CollectionAssert.AreEqual(Run(), Run());
    }

    [TestMethod]
    public void ALearningRateFarTooHighIsWarnedAbout()
    {
        var model = Small();
        var report = SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Counting(600, 1), null, new SequenceTrainingOptions
        {
            Epochs = 2, BatchSize = 8, LearningRate = 1000f, Seed = 1, EarlyStoppingPatience = 0,
        });
        Assert.IsNull(report.Divergence);
        Assert.IsNotEmpty(report.Warnings);
        StringAssert.Contains(report.Warnings[0], "Epoch 1: the training loss ended at");

        var sane = SequenceTrainer.Train(Small(), SequenceTask.BinaryClassification, Counting(600, 1), null, new SequenceTrainingOptions
        {
            Epochs = 2, BatchSize = 8, LearningRate = 0.01f, Seed = 1, EarlyStoppingPatience = 0,
        });
        Assert.IsEmpty(sane.Warnings);
    }

    [TestMethod]
    public void BadLabelsAreRejected()
    {
        var data = SequenceDataset.FromTokens([[1, 2], [3]], [1f, 2f]);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => SequenceTrainer.Train(Small(), SequenceTask.BinaryClassification, data, null, new SequenceTrainingOptions()));
        StringAssert.Contains(ex.Message, "binary labels must be 0 or 1");
        Assert.ThrowsExactly<ArgumentException>(() => SequenceDataset.FromTokens([[1], []], [0f, 1f]));
    }

    sealed class Collect(List<TrainingProgress>? into, Action<TrainingProgress>? then = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { into?.Add(value); then?.Invoke(value); }
    }
}
