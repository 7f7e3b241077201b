using Microsoft.ML;

namespace DeepSeq.MLNet.Tests;

/// <summary>A run that learned nothing says so, in the training report and in MLContext.Log.</summary>
[TestClass]
public sealed class ReportTests
{
    [TestMethod]
    public void AHugeLearningRateIsReportedAndLogged()
    {
        var ml = new MLContext(seed: 1);
        var log = TestData.CaptureLog(ml);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(120, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 2;
        options.LearningRate = 1000;
        var report = ml.DeepSeq().BinaryClassification(options).Fit(tokens).TrainingReport;
        Assert.IsNull(report.Divergence, "the loss stays finite: nothing stops the run");
        var warning = report.Warnings.FirstOrDefault(w => w.Contains("learned nothing"));
        Assert.IsNotNull(warning, string.Join("\n", report.Warnings));
        StringAssert.Contains(warning, "LearningRate");
        var messages = log();
        foreach (var w in report.Warnings) Assert.IsTrue(messages.Any(m => m.Contains(w)), $"not logged: {w}");
    }

    [TestMethod]
    public void AGoodRunIsNotReportedAsLearningNothing()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(200, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 4;
        var report = ml.DeepSeq().BinaryClassification(options).Fit(tokens).TrainingReport;
        Assert.IsFalse(report.Warnings.Any(w => w.Contains("learned nothing")), string.Join("\n", report.Warnings));
    }
}
