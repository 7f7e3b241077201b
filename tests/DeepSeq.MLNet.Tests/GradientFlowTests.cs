using Microsoft.ML;

namespace DeepSeq.MLNet.Tests;

/// <summary>Gradient-flow diagnostics through the ML.NET trainers: the option, the report on the trained model, the log and the progress callback.</summary>
[TestClass]
public sealed class GradientFlowTests
{
    [TestMethod]
    public void TheReportTheLogAndTheProgressCarryTheGradientFlow()
    {
        var ml = new MLContext(seed: 1);
        var log = TestData.CaptureLog(ml);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(120, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 2;
        options.GradientFlowEveryBatches = 2;
        var progress = new List<SequenceTrainingProgress>();
        options.Progress = new Collect(progress);
        var model = ml.DeepSeq().BinaryClassification(options).Fit(tokens);

        var flow = model.TrainingReport.GradientFlow;
        Assert.IsNotNull(flow);
        Assert.IsNotEmpty(flow.Samples);
        Assert.AreEqual(0L, flow.Samples[0].Step);
        Assert.IsTrue(flow.Samples.All(s => s.Step % 2 == 0));
        var layers = flow.Samples[0].Layers;
        CollectionAssert.AreEqual(new[] { "recurrent.layers.0.forward", "recurrent.layers.0.reverse" }, layers.Select(l => l.Name).ToArray(), "a bidirectional layer records both directions");
        Assert.IsTrue(layers.All(l => l.GradientNorm.Count > 0 && l.GradientNorm.Count == l.Gain.Count && double.IsFinite(l.Eta) && l.JacobianProduct[0] == 1));
        Assert.IsGreaterThanOrEqualTo(flow.Samples.Max(s => s.GradientNorm), flow.LargestGradientNorm);
        var messages = log();
        Assert.IsTrue(messages.Any(m => m.Contains("Gradient flow at the start") && m.Contains("η")), string.Join("\n", messages));
        Assert.IsTrue(messages.Any(m => m.Contains("Largest gradient norm")));
        Assert.IsTrue(progress.Any(p => p.GradientFlow is not null));

        // Off by default: no report; not saved with the model either.
        options.GradientFlowEveryBatches = 0;
        options.Progress = null;
        Assert.IsNull(ml.DeepSeq().BinaryClassification(options).Fit(tokens).TrainingReport.GradientFlow);
        using var stream = new MemoryStream();
        ml.Model.Save(model, tokens.Schema, stream);
        stream.Position = 0;
        var loaded = ml.Model.Load(stream, out _);
        Assert.IsNull(ml.DeepSeq().GetTrainedModel(loaded).TrainingReport!.GradientFlow);
    }

    [TestMethod]
    public void ANegativeIntervalIsRefused()
    {
        var options = TestData.SmallBinary();
        options.GradientFlowEveryBatches = -1;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext().DeepSeq().BinaryClassification(options));
        StringAssert.Contains(e.Message, "GradientFlowEveryBatches");
    }

    sealed class Collect(List<SequenceTrainingProgress> into) : IProgress<SequenceTrainingProgress>
    {
        public void Report(SequenceTrainingProgress value) => into.Add(value);
    }
}
