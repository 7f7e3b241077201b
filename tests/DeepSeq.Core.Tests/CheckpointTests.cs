using DeepSeq.Core.Training;
using static DeepSeq.Core.Tests.TrainerTests;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class CheckpointTests
{
    string _path = "";

    [TestInitialize]
    public void Init() => _path = TempPath();

    [TestCleanup]
    public void Cleanup() => Delete(_path);

    /// <summary>Trains until the n-th step is done, then cancels (which writes a checkpoint).</summary>
    TrainingReport StopAfter(int steps, TrainingOptions? options = null, int modelSeed = 1)
    {
        using var cts = new CancellationTokenSource();
        var task = new CenteredTask(new Centered(modelSeed)) { OnStep = n => { if (n == steps) cts.Cancel(); } };
        return Trainer.Train(task, (options ?? Options(_path)) with { CancellationToken = cts.Token });
    }

    [TestMethod]
    public void ACheckpointHoldsEveryTensorTheOptimiserAndTheCounters()
    {
        StopAfter(30);
        var c = TrainingCheckpoint.Read(_path);
        var model = new Centered(1);
        CollectionAssert.AreEqual(model.NamedTensors().Select(kv => kv.Key).ToArray(), c.Model.Select(t => t.Name).ToArray());
        CollectionAssert.AreEqual(new[] { "linear.weight", "linear.bias", "running_mean" }, c.Model.Select(t => t.Name).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 4 }, c.Model[0].Shape);
        CollectionAssert.AreEqual(c.Model.Select(t => t.Name).ToArray(), c.Best.Select(t => t.Name).ToArray(), "best weights: parameters and state");
        CollectionAssert.AreEqual(new[] { "linear.weight", "linear.bias" }, c.Average.Select(t => t.Name).ToArray(), "averaged: parameters only");
        CollectionAssert.AreEqual(new[] { "m/linear.weight", "m/linear.bias", "v/linear.weight", "v/linear.bias" }, c.Optimizer.Select(t => t.Name).ToArray());
        Assert.IsTrue(c.Optimizer.All(t => t.Values.Any(v => v != 0)), "moments were saved");
        Assert.AreEqual((2, 5, 30L, 30L, false), (c.Epoch, c.Step, c.GlobalStep, c.OptimizerSteps, c.Finished));
        Assert.HasCount(1, c.Epochs);
        Assert.HasCount(5, c.EpochBatchLosses);
        Assert.AreEqual(1, c.BestEpoch);
        Assert.AreEqual(40L, c.EpochExamples);
        Assert.AreEqual("5", c.Settings["Seed"]);
        Assert.AreEqual("200", c.Settings["Examples"]);
        Assert.IsFalse(File.Exists(_path + ".tmp"), "the temporary file was renamed into place");
    }

    [TestMethod]
    public void DamagedOrForeignFilesAreRefusedClearly()
    {
        StopAfter(10);
        var bytes = File.ReadAllBytes(_path);

        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(_path, flipped);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(_path)).Message, "damaged");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Trainer.Train(new CenteredTask(new Centered(1)), Options(_path)));
        StringAssert.Contains(e.Message, "SHA-256");

        File.WriteAllBytes(_path, bytes[..(bytes.Length - 100)]);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(_path)).Message, "damaged");

        File.WriteAllText(_path, "{ \"not\": \"a checkpoint\", \"padding\": \"..........................................\" }");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(_path)).Message, "not a DeepSeq training checkpoint");
        File.WriteAllBytes(_path, []);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(_path)).Message, "not a DeepSeq training checkpoint");

        // A newer format (re-sealed with a valid checksum) names both versions.
        var newer = (byte[])bytes.Clone();
        newer[8] = 2;
        System.Security.Cryptography.SHA256.HashData(newer.AsSpan(0, newer.Length - 32)).CopyTo(newer.AsSpan(newer.Length - 32));
        File.WriteAllBytes(_path, newer);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(_path)).Message, "format version 2");
    }

    [TestMethod]
    public void ACheckpointOfOtherSettingsOrAnotherModelIsRefused()
    {
        StopAfter(10);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Trainer.Train(new CenteredTask(new Centered(1)), Options(_path) with { Seed = 6, BatchSize = 10 }));
        StringAssert.Contains(e.Message, "other settings");
        StringAssert.Contains(e.Message, "Seed: 5 there, 6 here");
        StringAssert.Contains(e.Message, "BatchSize: 8 there, 10 here");
        StringAssert.Contains(e.Message, "Restart");

        e = Assert.ThrowsExactly<InvalidDataException>(() => Trainer.Train(new CenteredTask(new Centered(1, features: 5)), Options(_path)));
        StringAssert.Contains(e.Message, "another model");
        StringAssert.Contains(e.Message, "'linear.weight' has shape [1, 4] there, [1, 5] here");

        e = Assert.ThrowsExactly<InvalidDataException>(() => Trainer.Train(new CenteredTask(new Centered(1), count: 150), Options(_path)));
        StringAssert.Contains(e.Message, "Examples: 200 there, 150 here");

        // Settings that do not change the course of training may differ.
        var report = Trainer.Train(new CenteredTask(new Centered(1)), Options(_path) with { NumberOfThreads = 1, CheckpointEverySteps = 0, CheckpointEveryMinutes = 5 });
        Assert.AreEqual(10L, report.ResumedAtStep);

        // Restart ignores the file and overwrites it.
        var restarted = Trainer.Train(new CenteredTask(new Centered(1)), Options(_path) with { Seed = 6, Resume = CheckpointResume.Restart });
        Assert.IsNull(restarted.ResumedAtStep);
        Assert.AreEqual("6", TrainingCheckpoint.Read(_path).Settings["Seed"]);
    }

    [TestMethod]
    public void AFinishedCheckpointGivesTheResultWithoutTraining()
    {
        var first = new CenteredTask(new Centered(1));
        var done = Trainer.Train(first, Options(_path));
        Assert.IsTrue(TrainingCheckpoint.Read(_path).Finished);
        var again = new CenteredTask(new Centered(2));
        var report = Trainer.Train(again, Options(_path));
        Assert.AreEqual(0, again.Calls, "no step taken");
        CollectionAssert.AreEqual(Flat(first.Net), Flat(again.Net));
        Assert.AreEqual(done.Steps, report.ResumedAtStep);
        Assert.AreEqual(done.BestEpoch, report.BestEpoch);
        CollectionAssert.AreEqual(done.Epochs.Select(e => e.TrainLoss).ToList(), report.Epochs.Select(e => e.TrainLoss).ToList());
    }

    [TestMethod]
    public void RequireWantsAFileAndAutoStartsWithoutOne()
    {
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => Trainer.Train(new CenteredTask(new Centered(1)), Options(_path) with { Resume = CheckpointResume.Require }));
        StringAssert.Contains(e.Message, "no checkpoint to resume");
        Assert.IsNull(Trainer.Train(new CenteredTask(new Centered(1)), Options(_path) with { Epochs = 1 }).ResumedAtStep);
    }

    [TestMethod]
    public void CheckpointsAreWrittenByStepsByTimeAndByEpochs()
    {
        var steps = new List<long>();
        var task = new CenteredTask(new Centered(1));
        task.OnStep = n => steps.Add(File.Exists(_path) ? TrainingCheckpoint.Read(_path).GlobalStep : -1);
        Trainer.Train(task, Options(_path) with { Epochs = 2, CheckpointEverySteps = 0, CheckpointEveryEpochs = 1 });
        Assert.IsTrue(steps.Take(25).All(s => s == -1) && steps.Skip(25).All(s => s == 25), "once, after epoch 1");

        Delete(_path); steps.Clear();
        task = new CenteredTask(new Centered(1)) { OnStep = n => steps.Add(File.Exists(_path) ? TrainingCheckpoint.Read(_path).GlobalStep : -1) };
        Trainer.Train(task, Options(_path) with { Epochs = 1, CheckpointEverySteps = 10, CheckpointEveryEpochs = 0 });
        CollectionAssert.AreEqual(new long[] { -1, 10, 20 }, steps.Distinct().ToArray());

        Delete(_path); steps.Clear();
        task = new CenteredTask(new Centered(1)) { OnStep = n => steps.Add(File.Exists(_path) ? TrainingCheckpoint.Read(_path).GlobalStep : -1) };
        Trainer.Train(task, Options(_path) with { Epochs = 1, CheckpointEverySteps = 0, CheckpointEveryEpochs = 0, CheckpointEveryMinutes = 1e-9 });
        CollectionAssert.AreEqual(Enumerable.Range(-1, 26).Where(s => s != 0).Select(s => (long)s).ToArray(), steps.ToArray(), "after every step");
    }

    [TestMethod]
    public void SgdMomentumIsCheckpointedToo()
    {
        var options = Options(_path) with { Optimizer = OptimizerKind.Sgd, Nesterov = true, Schedule = null, LearningRateDecay = 0.8f, WeightAveraging = 0 };
        var reference = new CenteredTask(new Centered(1));
        Trainer.Train(reference, options with { CheckpointPath = null });
        StopAfter(37, options);
        CollectionAssert.AreEqual(new[] { "velocity/linear.weight", "velocity/linear.bias" }, TrainingCheckpoint.Read(_path).Optimizer.Select(t => t.Name).ToArray());
        var resumed = new CenteredTask(new Centered(3));
        Trainer.Train(resumed, options);
        CollectionAssert.AreEqual(Flat(reference.Net), Flat(resumed.Net));
    }
}
