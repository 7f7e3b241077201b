using DeepSeq.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>The image trainer through ML.NET: training, evaluation, Save/Load, PredictionEngine, input layouts and errors.</summary>
[TestClass]
public sealed class ImageClassificationTests
{
    const int Side = 8;

    sealed class ImageRow
    {
        public string Label { get; set; } = "";
        [VectorType(1, Side, Side)] public float[] Pixels { get; set; } = []; // (C, H, W), as ExtractPixels writes
    }

    sealed class Prediction
    {
        public float[] Score { get; set; } = [];
        [ColumnName("PredictedLabel")] public uint PredictedKey { get; set; }
    }

    // Three classes: a bright 3×3 square in the top-left, top-right or bottom half, on noise (0–255 like ExtractPixels).
    static List<ImageRow> Images(int count, int seed)
    {
        var rng = new Random(seed);
        string[] names = ["left", "right", "bottom"];
        var rows = new List<ImageRow>();
        for (int i = 0; i < count; i++)
        {
            int k = i % 3;
            var p = new float[Side * Side];
            for (int j = 0; j < p.Length; j++) p[j] = 60f * rng.NextSingle();
            int y0 = k == 2 ? 4 + rng.Next(2) : rng.Next(2), x0 = k == 0 ? rng.Next(2) : k == 1 ? 4 + rng.Next(2) : rng.Next(5);
            for (int y = y0; y < y0 + 3; y++) for (int x = x0; x < x0 + 3; x++) p[y * Side + x] = 200f + 55f * rng.NextSingle();
            rows.Add(new ImageRow { Label = names[k], Pixels = p });
        }
        return rows;
    }

    static ImageClassificationOptions Small() => new()
    {
        LabelColumnName = "Key", FeatureColumnName = "Pixels", StageWidths = [4, 8], BlocksPerStage = 1, Epochs = 6, BatchSize = 16,
        LearningRate = 0.05f, Flip = false, CropPadding = 0, Seed = 1,
    };

    [TestMethod]
    public void TrainsEvaluatesSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Images(240, 1));
        var test = ml.Data.LoadFromEnumerable(Images(90, 2));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Key", "Label").Append(ml.DeepSeq().ImageClassification(Small()));
        var model = pipeline.Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored, labelColumnName: "Key");
        Assert.IsGreaterThan(0.9, metrics.MicroAccuracy, $"micro accuracy {metrics.MicroAccuracy}");
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scored.Schema["Score"].GetSlotNames(ref slots);
        CollectionAssert.AreEqual(new[] { "left", "right", "bottom" }, slots.DenseValues().Select(s => s.ToString()).ToArray());

        string path = Path.Combine(Path.GetTempPath(), $"deepseq-image-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = new MLContext().Model.Load(path, out _);
            var before = scored.GetColumn<float[]>("Score").ToArray();
            var after = loaded.Transform(test).GetColumn<float[]>("Score").ToArray();
            for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], "scores after Model.Load");
            var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
            var row = Images(3, 3)[1];
            Assert.AreEqual(2u, engine.Predict(row).PredictedKey, "a 'right' image (key 2)");
        }
        finally { File.Delete(path); }
    }

    sealed class RawRow
    {
        public uint Label { get; set; }
        [VectorType(Side * Side * 2)] public float[] Pixels { get; set; } = [];
    }

    [TestMethod]
    public void ReadsDeclaredSizeInEitherLayout()
    {
        var ml = new MLContext(seed: 1);
        // Two channels, class = which channel holds the bright square; interleaved (H, W, C) order.
        var rng = new Random(4);
        var rows = Enumerable.Range(0, 120).Select(i =>
        {
            var p = new float[Side * Side * 2];
            for (int j = 0; j < p.Length; j++) p[j] = 0.2f * rng.NextSingle();
            for (int y = 2; y < 5; y++) for (int x = 2; x < 5; x++) p[(y * Side + x) * 2 + i % 2] = 1f;
            return new RawRow { Label = (uint)(i % 2), Pixels = p };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Small();
        options.Height = Side; options.Width = Side; options.Channels = 2; options.PixelLayout = PixelLayout.HeightWidthChannels; options.Epochs = 4;
        var model = ml.Transforms.Conversion.MapValueToKey("Key", "Label").Append(ml.DeepSeq().ImageClassification(options)).Fit(data);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data), labelColumnName: "Key");
        Assert.IsGreaterThan(0.9, metrics.MicroAccuracy);
    }

    [TestMethod]
    public void BadInputGivesClearErrors()
    {
        var ml = new MLContext(seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.DeepSeq().ImageClassification(new ImageClassificationOptions { BatchSize = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.DeepSeq().ImageClassification(new ImageClassificationOptions { LearningRate = float.NaN }));
        Assert.Throws<ArgumentException>(() => ml.DeepSeq().ImageClassification(new ImageClassificationOptions { StageWidths = [] }));
        var zeroInitPlain = Assert.Throws<ArgumentException>(() => ml.DeepSeq().ImageClassification(new ImageClassificationOptions { ZeroInitResidual = true, Residual = false }));
        StringAssert.Contains(zeroInitPlain.Message, nameof(ImageClassificationOptions.ZeroInitResidual));
        var data = ml.Transforms.Conversion.MapValueToKey("Key", "Label").Fit(ml.Data.LoadFromEnumerable(Images(12, 1))).Transform(ml.Data.LoadFromEnumerable(Images(12, 1)));
        var wrongSize = Small(); wrongSize.Height = 7; wrongSize.Width = 8; wrongSize.Channels = 1;
        var e = Assert.Throws<ArgumentException>(() => ml.DeepSeq().ImageClassification(wrongSize).Fit(data));
        StringAssert.Contains(e.Message, "7");
        var noLabel = Small(); noLabel.LabelColumnName = "Missing";
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.DeepSeq().ImageClassification(noLabel).Fit(data));
    }
}
