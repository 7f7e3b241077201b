using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

public sealed class Pair
{
    public string Source = "";
    public string Target = "";
}

public sealed class Prediction
{
    public string Translation = "";
    public float Score;
    [VectorType] public float[] Attention = [];
    [VectorType] public string[] SourceTokens = [];
    [VectorType] public string[] PredictedTokens = [];
}

[TestClass]
public sealed class SequenceToSequenceTests
{
    // Reversal of short letter strings: character tokens on both sides.
    static List<Pair> Reversals(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ =>
        {
            var s = new string([.. Enumerable.Range(0, rng.Next(3, 7)).Select(_ => (char)('a' + rng.Next(6)))]);
            return new Pair { Source = s, Target = new string([.. s.Reverse()]) };
        })];
    }

    static SequenceToSequenceTrainer.Options Small() => new()
    {
        SourceTokens = TextTokenUnit.Character, TargetTokens = TextTokenUnit.Character, EmbeddingSize = 16, EncoderHiddenSize = 24,
        DecoderHiddenSize = 32, AttentionSize = 16, Dropout = 0f, Epochs = 6, BatchSize = 32, LearningRate = 5e-3f, Seed = 3,
        // All six epochs: validation dips once or twice on the way up (epochs 3-4), and whether it dips twice in a
        // row — stopping early — turns on float rounding, not on whether the model learns.
        EarlyStoppingPatience = 0,
    };

    static (MLContext Ml, SequenceToSequenceTransformer Model, IDataView Test) Trained()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DeepSeq().SequenceToSequence(Small()).Fit(ml.Data.LoadFromEnumerable(Reversals(1500, 1)), ml.Data.LoadFromEnumerable(Reversals(100, 2)));
        return (ml, model, ml.Data.LoadFromEnumerable(Reversals(50, 3)));
    }

    static (MLContext Ml, SequenceToSequenceTransformer Model, IDataView Test)? s_trained;
    static (MLContext Ml, SequenceToSequenceTransformer Model, IDataView Test) Shared => s_trained ??= Trained();

    [TestMethod]
    public void LearnsToReverseAndOutputsTheAttentionMatrixWithItsTokens()
    {
        var (ml, model, test) = Shared;
        Assert.IsGreaterThan(0.8, model.TrainingReport.Epochs.Max(e => e.ValidationMetric ?? 0), "validation exact match");
        var rows = ml.Data.CreateEnumerable<Prediction>(model.Transform(test), reuseRowObject: false).ToList();
        var pairs = ml.Data.CreateEnumerable<Pair>(test, reuseRowObject: false).ToList();
        int right = rows.Zip(pairs).Count(x => x.First.Translation == x.Second.Target);
        Assert.IsGreaterThanOrEqualTo(0.8, right / (double)rows.Count, $"exact reversals {right}/{rows.Count}");
        foreach (var (p, pair) in rows.Zip(pairs))
        {
            CollectionAssert.AreEqual(pair.Source.Select(c => c.ToString()).ToArray(), p.SourceTokens);
            Assert.AreEqual(p.Translation, string.Concat(p.PredictedTokens));
            Assert.HasCount((p.PredictedTokens.Length + 1) * p.SourceTokens.Length, p.Attention);
            for (int r = 0; r <= p.PredictedTokens.Length; r++)
                Assert.AreEqual(1f, p.Attention.AsSpan(r * p.SourceTokens.Length, p.SourceTokens.Length).ToArray().Sum(), 1e-4f);
            Assert.IsLessThan(0f, p.Score);
        }
    }

    [TestMethod]
    public void SavedModelLoadsAndPredictsIdentically()
    {
        var (ml, model, test) = Shared;
        using var stream = new MemoryStream();
        ml.Model.Save(model, test.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext(seed: 9).Model.Load(stream, out _);
        var a = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
        var b = ml.Model.CreatePredictionEngine<Pair, Prediction>(loaded);
        foreach (var pair in ml.Data.CreateEnumerable<Pair>(test, reuseRowObject: false).Take(10))
        {
            var x = a.Predict(pair); var y = b.Predict(pair);
            Assert.AreEqual(x.Translation, y.Translation);
            Assert.AreEqual(x.Score, y.Score);
            CollectionAssert.AreEqual(x.Attention, y.Attention);
        }
    }

    [TestMethod]
    public void SavedModelLoadsInAFreshProcess()
    {
        var (ml, model, test) = Shared;
        string path = Path.Combine(Path.GetTempPath(), $"deepseq-seq2seq-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.Save(model, test.Schema, path);
            var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
            string[] texts = ["abcd", "fed", "cab"];
            var expected = texts.Select(t => { var p = engine.Predict(new Pair { Source = t }); return $"{p.Translation} {BitConverter.SingleToInt32Bits(p.Score):X8}"; }).ToList();
            CollectionAssert.AreEqual(expected, TestData.RunLoadCheck(["--seq2seq", path, .. texts]));
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void EmptySourceGivesAnEmptyPredictionAndNaNScore()
    {
        var (ml, model, _) = Shared;
        var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
        foreach (var text in new[] { "", "   " })
        {
            var p = engine.Predict(new Pair { Source = text });
            Assert.AreEqual("", p.Translation);
            Assert.IsTrue(float.IsNaN(p.Score));
            Assert.IsEmpty(p.Attention);
        }
    }

    [TestMethod]
    public void BadColumnsAndOptionsGiveClearErrors()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Reversals(10, 1));
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().SequenceToSequence(sourceColumnName: "Word").Fit(data));
        StringAssert.Contains(missing.Message, "Could not find source column 'Word'");
        var numbers = ml.Data.LoadFromEnumerable(new[] { new Series { Steps = [1f], Target = 1f } });
        var mismatch = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().SequenceToSequence("Out", "Steps", "Target").Fit(numbers));
        StringAssert.Contains(mismatch.Message, "Schema mismatch for source column 'Steps'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.DeepSeq().SequenceToSequence(new SequenceToSequenceTrainer.Options { BeamWidth = 0 }));
        var dot = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().SequenceToSequence(new SequenceToSequenceTrainer.Options { Attention = AttentionMode.Dot, EncoderHiddenSize = 100, DecoderHiddenSize = 100 }));
        StringAssert.Contains(dot.Message, "Dot");
        Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().SequenceToSequence(new SequenceToSequenceTrainer.Options { OutputColumnName = "Score" }));
    }

    [TestMethod]
    public void BeamSearchOptionDecodesReversalsToo()
    {
        var ml = new MLContext(seed: 1);
        var test = Shared.Test;
        var beam = Small(); beam.BeamWidth = 3;
        var model = ml.DeepSeq().SequenceToSequence(beam).Fit(ml.Data.LoadFromEnumerable(Reversals(1500, 1)));
        var rows = ml.Data.CreateEnumerable<Prediction>(model.Transform(test), reuseRowObject: false).ToList();
        var pairs = ml.Data.CreateEnumerable<Pair>(test, reuseRowObject: false).ToList();
        int right = rows.Zip(pairs).Count(x => x.First.Translation == x.Second.Target);
        Assert.IsGreaterThanOrEqualTo(0.8, right / (double)rows.Count, $"exact reversals with beam 3: {right}/{rows.Count}");
    }
}
