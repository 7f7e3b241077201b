using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>Multiclass scores carry the class names; the trained model can be read back, also after Model.Load.</summary>
[TestClass]
public sealed class OutputTests
{
    static string[] SlotNames(DataViewSchema.Column column)
    {
        Assert.IsNotNull(column.Annotations.Schema.GetColumnOrNull("SlotNames"), $"{column.Name} has no slot names");
        VBuffer<ReadOnlyMemory<char>> names = default;
        column.Annotations.GetValue("SlotNames", ref names);
        return [.. names.DenseValues().Select(n => n.ToString())];
    }

    [TestMethod]
    public void MulticlassScoreSlotNamesAreTheClassNamesAlsoAfterReloadAndInAFreshProcess()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topics(120, 5));
        var model = TestData.SmallTopicPipeline(ml, 2).Fit(train);
        string[] classes = [.. TestData.Topics(120, 5).Select(t => t.Category).Distinct()]; // MapValueToKey's order: first seen
        var scored = model.Transform(train);
        CollectionAssert.AreEqual(classes, SlotNames(scored.Schema["Score"]));
        Assert.IsTrue(scored.Schema["Score"].Type is VectorDataViewType { Size: 3 });
        Assert.IsFalse(scored.Schema.Any(c => classes.Contains(c.Name) || c.Name.StartsWith("__DeepSeq")), "helper columns are dropped");
        // The confusion table is labelled with them.
        StringAssert.Contains(ml.MulticlassClassification.Evaluate(scored).ConfusionMatrix.GetFormattedConfusionTable(), "sport");

        string path = Path.Combine(Path.GetTempPath(), $"deepseq-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = new MLContext().Model.Load(path, out var inputSchema);
            CollectionAssert.AreEqual(classes, SlotNames(loaded.Transform(train).Schema["Score"]));
            CollectionAssert.AreEqual(classes, SlotNames(loaded.GetOutputSchema(inputSchema)["Score"]));

            var trained = ml.DeepSeq().GetTrainedModel(model);
            var lines = TestData.RunLoadCheck("--inspect", path);
            Assert.AreEqual($"task MulticlassClassification; cell Lstm; hidden 16; pooling MaxMean; classes {string.Join('|', classes)}", lines[0]);
            Assert.AreEqual($"weights {trained.Weights.Count}: {trained.Weights.Sum(w => w.Value.Length)} values, checksum {trained.Weights.Sum(w => w.Value.Span.ToArray().Sum(x => (double)x)):R}", lines[1]);
            Assert.AreEqual($"slots {string.Join('|', classes)}", lines[2]);
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void MoreThanSixteenClassesUseTheWiderOutputKind()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 120).Select(i => new Topic { Text = $"the w{i % 20} film", Category = $"c{i % 20}" }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var scored = TestData.SmallTopicPipeline(ml, 1).Fit(data).Transform(data);
        CollectionAssert.AreEqual(Enumerable.Range(0, 20).Select(i => $"c{i}").ToArray(), SlotNames(scored.Schema["Score"]));
        foreach (var score in scored.GetColumn<float[]>("Score").Take(5)) Assert.AreEqual(1.0, score.Sum(), 1e-5);
    }

    [TestMethod]
    public void AClassNamedLikeAColumnKeepsTheColumnAndGetsASuffixedSlotName()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Topics(90, 3);
        foreach (var r in rows) r.Category = r.Category == "food" ? "Text" : r.Category; // a class named like the input column
        var data = ml.Data.LoadFromEnumerable(rows);
        var scored = TestData.SmallTopicPipeline(ml, 1).Fit(data).Transform(data);
        CollectionAssert.Contains(SlotNames(scored.Schema["Score"]), "Text (class)");
        Assert.IsTrue(scored.Schema["Text"].Type is TextDataViewType, "the Text column survives");
        Assert.AreEqual(rows[0].Text, scored.GetColumn<string>("Text").First());

        var names = SequenceFitting.ClassColumnNames(["a", "", "a", "Label", "__DeepSeq_P0"], new HashSet<string> { "Label" });
        CollectionAssert.AreEqual(new[] { "a", "(empty)", "a (class)", "Label (class)", "class __DeepSeq_P0" }, names);
    }

    [TestMethod]
    public void TheTrainedModelComesBackFromALoadedTransformer()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1));
        var options = TestData.SmallBinary();
        options.Epochs = 2;
        options.Cell = SequenceCell.Gru;
        options.GruReset = GruResetMode.BeforeRecurrentMatmul;
        options.Pooling = PoolingMode.Attention;
        options.AttentionSize = 8;
        var model = TestData.Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(options)).Fit(train);
        var fitted = model.LastTransformer.Model;
        Assert.AreSame(fitted, ml.DeepSeq().GetTrainedModel(model));
        Assert.HasCount(2, fitted.TrainingReport!.Epochs);

        string path = Path.Combine(Path.GetTempPath(), $"deepseq-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = ml.DeepSeq().GetTrainedModel(new MLContext().Model.Load(path, out _));
            Assert.AreEqual(SequenceTaskKind.BinaryClassification, loaded.Task);
            Assert.AreEqual(fitted.Architecture, loaded.Architecture);
            Assert.AreEqual(GruResetMode.BeforeRecurrentMatmul, loaded.Architecture.GruReset);
            Assert.AreEqual(8, loaded.Architecture.AttentionSize);
            Assert.IsNull(loaded.Architecture.Peepholes);
            CollectionAssert.AreEquivalent(fitted.Weights.Keys.ToList(), loaded.Weights.Keys.ToList());
            foreach (var (name, w) in fitted.Weights) Assert.IsTrue(w.Span.SequenceEqual(loaded.Weights[name].Span), name);
            // The report travels with the model.
            var report = loaded.TrainingReport ?? throw new AssertFailedException("the loaded model has no training report");
            Assert.AreEqual(fitted.TrainingReport.BestEpoch, report.BestEpoch);
            CollectionAssert.AreEqual(fitted.TrainingReport.Epochs.Select(e => e.TrainLoss).ToList(), report.Epochs.Select(e => e.TrainLoss).ToList());
        }
        finally { File.Delete(path); }

        Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().GetTrainedModel(TestData.Tokenizer(ml).Fit(train)));
    }
}
