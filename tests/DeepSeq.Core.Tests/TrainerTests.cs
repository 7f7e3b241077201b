using DeepSeq.Core.Kernels;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>The generic training loop on a small regression model with a parameter, a state tensor and a random stream.</summary>
[TestClass]
public sealed class TrainerTests
{
    /// <summary>y = linear(dropout(x − running_mean)); running_mean (state) follows the batches' mean input in training.</summary>
    internal sealed class Centered : Module
    {
        public readonly Tensor RunningMean;
        public readonly Dropout Drop;
        public readonly Dense Linear;

        public Centered(int seed, int features = 4)
        {
            RunningMean = AddState("running_mean", features);
            Drop = AddChild("dropout", new Dropout(0.2f));
            Linear = AddChild("linear", new Dense(features, 1));
            Initializers.Initialize(Linear, new Random(seed));
        }

        public int Features => Linear.InputSize;
    }

    /// <summary>y = 1.5x₀ − 2x₁ + 0.5x₂ + 3 + noise, with inputs centred near 1 (so the running mean matters).</summary>
    internal sealed class CenteredTask : ITrainingTask<List<int>>
    {
        readonly float[][] _x, _vx;
        readonly float[] _y, _vy;
        public readonly Centered Net;
        public int Calls;
        public Action<int>? OnStep;               // called with the 1-based call count before each step
        public Func<int, float?>? LossOverride;   // a different loss for a call (e.g. NaN)
        public Func<int, double?>? MetricOverride; // a different validation metric for the n-th validation
        public readonly List<Dictionary<string, float[]>> Validated = []; // the tensors each validation saw
        public bool HasValidation = true;

        public CenteredTask(Centered net, int count = 200, int seed = 1)
        {
            Net = net;
            (_x, _y) = Data(count, net.Features, seed);
            (_vx, _vy) = Data(50, net.Features, seed + 100);
        }

        static (float[][], float[]) Data(int count, int features, int seed)
        {
            var rng = new Random(seed);
            var x = new float[count][]; var y = new float[count];
            for (int i = 0; i < count; i++)
            {
                x[i] = [.. Enumerable.Range(0, features).Select(_ => 1f + (float)rng.NextDouble() - 0.5f)];
                y[i] = 1.5f * x[i][0] - 2f * x[i][1] + 0.5f * x[i][2 % features] + 3f + 0.05f * ((float)rng.NextDouble() - 0.5f);
            }
            return (x, y);
        }

        public Module Model => Net;
        public int Count => _x.Length;
        public int Length(int index) => 1 + index % 7;
        public List<int> CreateBatch() => [];
        public void Fill(List<int> batch, int[] indices) { batch.Clear(); batch.AddRange(indices); }

        public float ForwardBackward(List<int> batch)
        {
            Calls++;
            OnStep?.Invoke(Calls);
            int n = batch.Count, f = Net.Features;
            var x = new float[n * f];
            var mean = Net.RunningMean.Data;
            var batchMean = new float[f];
            for (int r = 0; r < n; r++)
                for (int j = 0; j < f; j++) { x[r * f + j] = _x[batch[r]][j] - mean[j]; batchMean[j] += _x[batch[r]][j] / n; }
            for (int j = 0; j < f; j++) mean[j] = 0.9f * mean[j] + 0.1f * batchMean[j];
            var dropped = new float[n * f];
            Net.Drop.Forward(dropped, x, training: true);
            var pred = new float[n]; var dPred = new float[n];
            Net.Linear.Forward(pred, dropped, n);
            float loss = Losses.MeanSquaredError(pred, [.. batch.Select(i => _y[i])], dPred);
            Net.Linear.Backward(default, dPred, dropped, n);
            return LossOverride?.Invoke(Calls) ?? loss;
        }

        public ValidationResult? Validate()
        {
            if (!HasValidation) return null;
            Validated.Add(Net.SnapshotTensors());
            int n = _vx.Length, f = Net.Features;
            var x = new float[n * f];
            for (int r = 0; r < n; r++) for (int j = 0; j < f; j++) x[r * f + j] = _vx[r][j] - Net.RunningMean.Data[j];
            var pred = new float[n];
            Net.Linear.Forward(pred, x, n);
            double mse = pred.Select((p, r) => (double)(p - _vy[r]) * (p - _vy[r])).Average();
            return new ValidationResult(mse, MetricOverride?.Invoke(Validated.Count) ?? -mse);
        }
    }

    internal static TrainingOptions Options(string? checkpoint = null) => new()
    {
        Epochs = 3, BatchSize = 8, LearningRate = 0.05f, Seed = 5, WeightAveraging = 0.9f, EarlyStoppingPatience = 0,
        Schedule = LearningRateSchedule.OneCycle(), CheckpointPath = checkpoint, CheckpointEverySteps = 4,
    };

    internal static float[] Flat(Module m) => [.. m.NamedTensors().SelectMany(kv => kv.Value.Data)];

    internal static string TempPath() => Path.Combine(Path.GetTempPath(), "deepseq-trainer-" + Guid.NewGuid().ToString("N"), "run.ckpt");

    internal static void Delete(string path) { if (Directory.Exists(Path.GetDirectoryName(path))) Directory.Delete(Path.GetDirectoryName(path)!, recursive: true); }

    [TestMethod]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        float[] Run(int seed)
        {
            var task = new CenteredTask(new Centered(1));
            Trainer.Train(task, Options() with { Seed = seed });
            return Flat(task.Net);
        }
        CollectionAssert.AreEqual(Run(5), Run(5));
        CollectionAssert.AreNotEqual(Run(5), Run(6));
    }

    [TestMethod]
    [DataRow("1")]
    [DataRow("13")]
    [DataRow("25")] // the last step of epoch 1 (25 batches an epoch)
    [DataRow("40")]
    [DataRow("7,30")] // resumed, stopped again, resumed again
    public void ResumingFromAnyStepGivesTheUninterruptedRun(string stops)
    {
        var reference = new CenteredTask(new Centered(1));
        var expected = Trainer.Train(reference, Options());
        string path = TempPath();
        try
        {
            TrainingReport? report = null;
            int seed = 1; // the run starts from the reference's initial weights; a resumed one from others, which the checkpoint overwrites
            foreach (int stop in stops.Split(',').Select(int.Parse))
            {
                using var cts = new CancellationTokenSource();
                var task = new CenteredTask(new Centered(seed)) { OnStep = n => { if (n == stop) cts.Cancel(); } };
                seed += 40;
                report = Trainer.Train(task, Options(path) with { CancellationToken = cts.Token });
                Assert.IsTrue(report.Cancelled);
            }
            var last = new CenteredTask(new Centered(99));
            report = Trainer.Train(last, Options(path));
            Assert.IsFalse(report.Cancelled);
            Assert.IsNotNull(report.ResumedAtStep);
            Assert.AreEqual(expected.Steps - report.ResumedAtStep!.Value, last.Calls, "only the remaining steps are taken");
            CollectionAssert.AreEqual(Flat(reference.Net), Flat(last.Net), "parameters and state, bit for bit");
            CollectionAssert.AreEqual(expected.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationMetric)).ToList(),
                report.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationMetric)).ToList());
            Assert.AreEqual(expected.BestEpoch, report.BestEpoch);
            Assert.AreEqual(expected.Steps, report.Steps);
        }
        finally { Delete(path); }
    }

    [TestMethod]
    public void CheckpointsDoNotChangeTheRun()
    {
        var plain = new CenteredTask(new Centered(1));
        Trainer.Train(plain, Options());
        string path = TempPath();
        try
        {
            var checkpointed = new CenteredTask(new Centered(1));
            Trainer.Train(checkpointed, Options(path) with { CheckpointEveryMinutes = 1e-9 }); // every step
            CollectionAssert.AreEqual(Flat(plain.Net), Flat(checkpointed.Net));
        }
        finally { Delete(path); }
    }

    [TestMethod]
    public void TheBestEpochsValidatedTensorsAreKeptStateIncluded()
    {
        double[] metrics = [0.5, 0.9, 0.1, 0.2, 0.3];
        var task = new CenteredTask(new Centered(1)) { MetricOverride = n => metrics[n - 1] };
        var report = Trainer.Train(task, Options() with { Epochs = 6, EarlyStoppingPatience = 2 });
        Assert.AreEqual(2, report.BestEpoch);
        Assert.HasCount(4, report.Epochs, "two epochs without a better metric stop training");
        var kept = task.Net.SnapshotTensors();
        foreach (var (name, values) in task.Validated[1]) CollectionAssert.AreEqual(values, kept[name], name);
        Assert.IsTrue(task.Net.RunningMean.Data.Any(v => v != 0));
        CollectionAssert.AreNotEqual(task.Validated[3]["running_mean"], kept["running_mean"], "later epochs moved the state; it was restored");
    }

    [TestMethod]
    public void WeightAveragingValidatesTheAverageWithTheCurrentState()
    {
        var task = new CenteredTask(new Centered(1)) { MetricOverride = n => n == 3 ? 1 : 0 };
        var report = Trainer.Train(task, Options() with { Epochs = 3 });
        Assert.AreEqual(3, report.BestEpoch);
        // The average lags the trained weights; the validated weights are not the trained ones but are what is kept.
        CollectionAssert.AreEqual(task.Validated[2]["linear.weight"], task.Net.Linear.Weight.Value.Data);
        var raw = new CenteredTask(new Centered(1)) { MetricOverride = n => n == 3 ? 1 : 0 };
        Trainer.Train(raw, Options() with { Epochs = 3, WeightAveraging = 0 });
        CollectionAssert.AreNotEqual(raw.Net.Linear.Weight.Value.Data, task.Net.Linear.Weight.Value.Data);
    }

    [TestMethod]
    public void DivergenceRollsBackToTheLastGoodTensorsStateIncluded()
    {
        // In epoch 2 (25 batches an epoch): back to what epoch 1 validated.
        var task = new CenteredTask(new Centered(1)) { LossOverride = n => n == 30 ? float.NaN : null };
        var report = Trainer.Train(task, Options());
        StringAssert.Contains(report.Divergence, "epoch 2, batch 5");
        StringAssert.Contains(report.Divergence, "Kept the weights of epoch 1");
        var kept = task.Net.SnapshotTensors();
        foreach (var (name, values) in task.Validated[0]) CollectionAssert.AreEqual(values, kept[name], name);

        // Before any epoch completed: the initial tensors, the running mean (moved by two steps) included.
        var early = new CenteredTask(new Centered(1)) { LossOverride = n => n == 3 ? float.PositiveInfinity : null };
        var initial = Flat(new Centered(1));
        report = Trainer.Train(early, Options());
        StringAssert.Contains(report.Divergence, "kept the initial weights");
        CollectionAssert.AreEqual(initial, Flat(early.Net));
        Assert.AreEqual(0, report.BestEpoch);
    }

    [TestMethod]
    public void CancellationKeepsTheBestTensors()
    {
        using var cts = new CancellationTokenSource();
        var task = new CenteredTask(new Centered(1)) { OnStep = n => { if (n == 60) cts.Cancel(); } };
        var report = Trainer.Train(task, Options() with { Epochs = 10, CancellationToken = cts.Token });
        Assert.IsTrue(report.Cancelled);
        Assert.HasCount(2, report.Epochs);
        Assert.AreEqual(60, report.Steps);
        var kept = task.Net.SnapshotTensors();
        foreach (var (name, values) in task.Validated[report.BestEpoch - 1]) CollectionAssert.AreEqual(values, kept[name], name);
    }

    [TestMethod]
    public void NumberOfThreadsHoldsDuringTrainingOnly()
    {
        int before = Gemm.Threads;
        var seen = new HashSet<int>();
        var task = new CenteredTask(new Centered(1)) { OnStep = _ => seen.Add(Gemm.Threads) };
        Trainer.Train(task, Options() with { Epochs = 1, NumberOfThreads = 1 });
        CollectionAssert.AreEqual(new[] { 1 }, seen.ToArray());
        Assert.AreEqual(before, Gemm.Threads, "restored afterwards");
        Assert.AreEqual(Environment.ProcessorCount, Gemm.MaxThreads, "the process-wide setting is left alone");
    }

    /// <summary>A single weight w with loss w (gradient 1): plain SGD moves it by exactly −lr each step.</summary>
    sealed class Scalar : Module
    {
        public readonly Parameter W;
        public Scalar() => W = AddParameter("w", 1);
    }

    sealed class ScalarTask(Scalar model, int count) : ITrainingTask<int>
    {
        public readonly List<float> Values = [];
        public Module Model => model;
        public int Count => count;
        public int CreateBatch() => 0;
        public void Fill(int batch, int[] indices) { }
        public float ForwardBackward(int batch)
        {
            Values.Add(model.W.Value.Data[0]);
            model.W.Gradient.Data[0] = 1f;
            return model.W.Value.Data[0];
        }
    }

    [TestMethod]
    [DataRow("cosine")]
    [DataRow("one-cycle")]
    [DataRow("decay")]
    public void TheLoopTakesEachStepAtTheScheduledRate(string kind)
    {
        var schedule = kind switch
        {
            "cosine" => LearningRateSchedule.Cosine(0.1f, warmupSteps: 5),
            "one-cycle" => LearningRateSchedule.OneCycle(),
            _ => LearningRateSchedule.EpochDecay(0.5f, warmupSteps: 3),
        };
        var model = new Scalar();
        var task = new ScalarTask(model, 40); // 10 batches of 4 an epoch
        Trainer.Train(task, new TrainingOptions
        {
            Epochs = 3, BatchSize = 4, Optimizer = OptimizerKind.Sgd, Momentum = 0, LearningRate = 0.5f, GradientClipNorm = 0,
            Schedule = schedule, EarlyStoppingPatience = 0,
        });
        task.Values.Add(model.W.Value.Data[0]);
        Assert.HasCount(31, task.Values);
        for (int k = 0; k < 30; k++)
            Assert.AreEqual(schedule.Rate(0.5f, k, 30, k / 10), task.Values[k] - task.Values[k + 1], 1e-6f, $"step {k}");
    }

    [TestMethod]
    public void EpochBatchesCoverEveryExampleOnceInASeededOrder()
    {
        Func<int, int> length = i => 1 + i * 7919 % 97;
        var a = Trainer.EpochBatches(1000, length, 8, seed: 3, epoch: 1);
        Assert.HasCount(125, a);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 1000).ToArray(), a.SelectMany(b => b).ToArray());
        CollectionAssert.AreEqual(a.SelectMany(b => b).ToArray(), Trainer.EpochBatches(1000, length, 8, 3, 1).SelectMany(b => b).ToArray(), "same seed and epoch, same order");
        CollectionAssert.AreNotEqual(a.SelectMany(b => b).ToArray(), Trainer.EpochBatches(1000, length, 8, 3, 2).SelectMany(b => b).ToArray(), "a new order every epoch");
        CollectionAssert.AreNotEqual(a.SelectMany(b => b).ToArray(), Trainer.EpochBatches(1000, length, 8, 4, 1).SelectMany(b => b).ToArray(), "and for every seed");

        // Bucketing: batches of similar lengths (far less padding than random batches).
        double Padding(List<int[]> batches) => batches.Average(b => b.Max(length) - b.Average(i => length(i)));
        var plain = Trainer.EpochBatches(1000, null, 8, 3, 1);
        Assert.IsLessThan(Padding(plain) / 5, Padding(a));
        Assert.IsTrue(plain.Take(124).All(b => b.Length == 8) && a.Count(b => b.Length < 8) == 0, "1000 = 125 × 8: every batch full");
        var uneven = Trainer.EpochBatches(1003, length, 8, 3, 1);
        Assert.HasCount(126, uneven);
        Assert.AreEqual(1, uneven.Count(b => b.Length < 8));
    }

    [TestMethod]
    public void RisingLossIsJudgedOnTheEpochsFirstAndLastTenth()
    {
        var rng = new Random(1);
        float Noise() => 0.02f * (float)(rng.NextDouble() - 0.5);
        var falling = Enumerable.Range(0, 50).Select(k => 1f - k / 100f + Noise()).ToList();
        var flat = Enumerable.Range(0, 50).Select(_ => 0.3f + 10 * Noise()).ToList();
        var rising = Enumerable.Range(0, 50).Select(k => 0.7f + k / 20f + Noise()).ToList();
        Assert.IsNull(Trainer.RisingLossWarning(1, falling, 1.0));
        Assert.IsNull(Trainer.RisingLossWarning(1, flat, 0.3), "noise is not a rise");
        StringAssert.Contains(Trainer.RisingLossWarning(3, rising, 0.7), "Epoch 3: the training loss rose");
        // Exploded within the first steps: the first tenth is already high, but far above the untrained model's loss.
        var exploded = Enumerable.Range(0, 50).Select(k => 1000f + 1000 * Noise()).ToList();
        StringAssert.Contains(Trainer.RisingLossWarning(1, exploded, 0.69), "(mean of the last 25 batches), above 0.69 at the first step of training");
        Assert.IsNull(Trainer.RisingLossWarning(4, flat, 0.69), "a plateau below the start is fine");
        Assert.IsNull(Trainer.RisingLossWarning(1, [1f, 2f, 3f], 0.1), "too few batches to judge");
        // A healthy late epoch whose batch losses wander by a third (as IMDB's third epoch did: 0.126 → 0.165).
        var wandering = Enumerable.Range(0, 357).Select(k => 0.126f + 0.04f * k / 356 + 20 * Noise()).ToList();
        Assert.IsNull(Trainer.RisingLossWarning(3, wandering, 0.69), "a rise by a third is not reported");
    }
}
