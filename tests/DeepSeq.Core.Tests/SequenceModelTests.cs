using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class SequenceModelTests
{
    public static IEnumerable<object[]> Poolings() => Enum.GetValues<PoolingKind>().Select(p => new object[] { p });

    static SequenceBatch TokenBatch(Random rng, int vocabulary)
    {
        var batch = new SequenceBatch();
        batch.Reset(steps: 6, count: 3, features: 0);
        int[] lengths = [4, 6, 1];
        lengths.CopyTo(batch.Lengths, 0);
        for (int t = 0; t < 6; t++)
            for (int b = 0; b < 3; b++) batch.Tokens[t * 3 + b] = t < lengths[b] ? rng.Next(1, vocabulary) : 0;
        return batch;
    }

    static void CheckModel(string name, SequenceModel model, SequenceBatch batch, Random rng)
    {
        GradientCheck.Randomize(model, rng, 0.5f);
        var w = GradientCheck.Random(batch.Count * model.Config.Outputs, rng);
        var logits = new float[w.Length];
        double Loss() { model.Forward(logits, batch, training: false); return GradientCheck.Dot(w, logits); }
        Loss();
        foreach (var p in model.Parameters) p.ZeroGradient();
        model.Backward(w);
        foreach (var p in model.Parameters)
        {
            // Only rows of tokens in the batch have an embedding gradient; sample those.
            if (p == model.Embedding?.Table) continue;
            GradientCheck.Check($"{name}/{p.Name}", p, Loss, samples: 10, requireSignal: false);
        }
        if (model.Embedding is { } e)
        {
            int id = batch.Tokens[0];
            var row = e.Table.Value.Data.AsSpan(id * e.Dimension, e.Dimension).ToArray();
            var gradRow = e.Table.Gradient.Data.AsSpan(id * e.Dimension, e.Dimension).ToArray();
            GradientCheck.Check($"{name}/embedding[{id}]", row, gradRow, () => { row.CopyTo(e.Table.Value.Data, id * e.Dimension); return Loss(); });
            row.CopyTo(e.Table.Value.Data, id * e.Dimension);
        }
    }

    /// <summary>
    /// Max pooling (vectorised over features) against a plain loop, at widths that fill whole vectors and leave
    /// tails: the largest value of each feature over the sequence's own steps, and the gradient sent to the first
    /// step holding it (values are drawn from a few levels, so ties are common).
    /// </summary>
    [TestMethod]
    public void MaxPoolingTakesTheFirstLargestStepAtEveryWidth()
    {
        int w = System.Numerics.Vector<float>.Count;
        var rng = new Random(5);
        foreach (int f in new[] { 1, w - 1, w, w + 1, 3 * w + 1 })
        {
            const int T = 7, B = 5;
            int[] lengths = [7, 6, 3, 1, 7];
            var y = new float[T * B * f];
            for (int i = 0; i < y.Length; i++) y[i] = rng.Next(-3, 4);
            var pooling = new SequencePooling(PoolingKind.MaxMean, f);
            var pooled = new float[B * 2 * f];
            pooling.Forward(pooled, y, T, B, lengths);
            var dPooled = new float[pooled.Length];
            for (int b = 0; b < B; b++) for (int j = 0; j < f; j++) dPooled[b * 2 * f + j] = 1; // the max half only
            var dy = new float[y.Length];
            pooling.Backward(dy, dPooled, y);
            for (int b = 0; b < B; b++)
                for (int j = 0; j < f; j++)
                {
                    int first = 0;
                    for (int t = 1; t < lengths[b]; t++) if (y[(t * B + b) * f + j] > y[(first * B + b) * f + j]) first = t;
                    Assert.AreEqual(y[(first * B + b) * f + j], pooled[b * 2 * f + j], $"f {f} row {b} feature {j}");
                    for (int t = 0; t < T; t++)
                        Assert.AreEqual(t == first ? 1f : 0f, dy[(t * B + b) * f + j], $"f {f} row {b} feature {j} step {t}");
                }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Poolings))]
    public void TokenModelGradientsMatchFiniteDifferences(PoolingKind pooling)
    {
        var rng = new Random((int)pooling + 20);
        var model = new SequenceModel(new SequenceModelConfig
        {
            VocabularySize = 9, EmbeddingSize = 3, HiddenSize = 4, Bidirectional = true, Pooling = pooling,
            AttentionSize = 5, Dropout = 0f, Outputs = 2,
        });
        CheckModel(pooling.ToString(), model, TokenBatch(rng, 9), rng);
    }

    [TestMethod]
    public void NumericModelGradientsMatchFiniteDifferences()
    {
        var rng = new Random(30);
        var model = new SequenceModel(new SequenceModelConfig
        {
            FeatureSize = 2, HiddenSize = 4, Layers = 2, Cell = new RecurrentCellSpec(RecurrentCellKind.Gru),
            Bidirectional = true, Merge = BidirectionalMerge.Sum, Pooling = PoolingKind.Last, Dropout = 0f, Outputs = 1,
        });
        var batch = new SequenceBatch();
        batch.Reset(5, 2, 2);
        batch.Lengths[0] = 5; batch.Lengths[1] = 3;
        for (int i = 0; i < 20; i++) batch.Values[i] = rng.NextSingle() - 0.5f;
        CheckModel("numeric", model, batch, rng);
    }

    [TestMethod]
    public void AttentionWeightsSumToOneOverEachSequence()
    {
        var rng = new Random(31);
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 9, EmbeddingSize = 3, HiddenSize = 4, Pooling = PoolingKind.Attention, Dropout = 0f });
        model.Initialize(rng);
        var batch = TokenBatch(rng, 9);
        model.Forward(new float[3], batch, training: false);
        var alpha = model.AttentionWeights;
        Assert.AreEqual(6 * 3, alpha.Length);
        for (int b = 0; b < 3; b++)
        {
            double sum = 0;
            for (int t = 0; t < 6; t++)
            {
                if (t >= batch.Lengths[b]) Assert.AreEqual(0f, alpha[t * 3 + b], "no weight on padding");
                sum += alpha[t * 3 + b];
            }
            Assert.AreEqual(1.0, sum, 1e-5);
        }
    }

    public static IEnumerable<object[]> ProjectedCells() =>
    [
        [new RecurrentCellSpec(RecurrentCellKind.Lstm), true, 1],
        [new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true, Peepholes = PeepholeGates.Output }, false, 2],
        [new RecurrentCellSpec(RecurrentCellKind.Gru), true, 2],
        [new RecurrentCellSpec(RecurrentCellKind.Gru) { GruReset = GruResetPlacement.BeforeRecurrentMatmul }, true, 1],
        [new RecurrentCellSpec(RecurrentCellKind.Rnn), false, 1],
    ];

    [TestMethod]
    [DynamicData(nameof(ProjectedCells))]
    public void ProjectedEmbeddingScoresAsTheEmbeddingAndInputProjection(RecurrentCellSpec cell, bool bidirectional, int layers)
    {
        var rng = new Random(31);
        var config = new SequenceModelConfig
        {
            VocabularySize = 11, EmbeddingSize = 5, HiddenSize = 6, Cell = cell, Bidirectional = bidirectional, Layers = layers,
            Pooling = PoolingKind.MaxMean, Dropout = 0.3f, Outputs = 2,
        };
        var model = new SequenceModel(config);
        GradientCheck.Randomize(model, rng, 0.5f);
        var batch = TokenBatch(rng, 11);
        batch.Tokens[1] = 0; // the padding id inside a sequence reads as a zero embedding
        var expected = new float[batch.Count * 2];
        model.Forward(expected, batch, training: false);

        var table = ProjectedEmbedding.Build(model);
        Assert.AreEqual(ProjectedEmbedding.BytesFor(config), table.Bytes);
        // A second instance with the same weights shares the table, as the ML.NET row mapping does.
        var other = new SequenceModel(config);
        other.Load(model.SnapshotTensors());
        other.Projection = table;
        var actual = new float[expected.Length];
        other.Forward(actual, batch, training: false);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5f * (1 + Math.Abs(expected[i])), $"logit {i}");

        // Training ignores the table; backward after a projected forward is refused (it kept nothing).
        Assert.ThrowsExactly<InvalidOperationException>(() => other.Backward(new float[expected.Length]));
        other.Forward(actual, batch, training: true);
        other.Backward(new float[expected.Length]);
    }

    [TestMethod]
    [DataRow(PoolingKind.Max, true, 1, BidirectionalMerge.Concat, true)]
    [DataRow(PoolingKind.Mean, true, 1, BidirectionalMerge.Concat, true)]
    [DataRow(PoolingKind.MaxMean, false, 1, BidirectionalMerge.Concat, true)]
    [DataRow(PoolingKind.MaxMean, true, 2, BidirectionalMerge.Concat, false)]
    [DataRow(PoolingKind.Max, true, 1, BidirectionalMerge.Sum, false)]
    [DataRow(PoolingKind.Attention, true, 1, BidirectionalMerge.Concat, false)]
    [DataRow(PoolingKind.Last, true, 1, BidirectionalMerge.Concat, false)]
    public void ScoringThroughTheTablePoolsAsThePoolingLayer(PoolingKind pooling, bool bidirectional, int layers, BidirectionalMerge merge, bool asItGoes)
    {
        // 19 units: whole vectors and a tail at every width; the lengths (unsorted) end at different steps.
        var rng = new Random(37);
        var config = new SequenceModelConfig
        {
            VocabularySize = 11, EmbeddingSize = 5, HiddenSize = 19, Cell = new RecurrentCellSpec(RecurrentCellKind.Lstm),
            Bidirectional = bidirectional, Layers = layers, Merge = merge, Pooling = pooling, Outputs = 3,
        };
        var model = new SequenceModel(config);
        GradientCheck.Randomize(model, rng, 0.5f);
        var batch = TokenBatch(rng, 11);
        var expected = new float[batch.Count * 3];
        model.Forward(expected, batch, training: false);

        Assert.AreEqual(asItGoes, model.Recurrent.PoolsAsItGoes(pooling));
        model.Projection = ProjectedEmbedding.Build(model);
        var actual = new float[expected.Length];
        model.Forward(actual, batch, training: false);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5f * (1 + Math.Abs(expected[i])), $"logit {i}");
        // The same model then trains and scores the long way on the same buffers.
        model.Forward(actual, batch, training: true);
        model.Backward(new float[expected.Length]);
        model.Projection = null;
        model.Forward(actual, batch, training: false);
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    public void ProjectedEmbeddingRefusesAnotherArchitecture()
    {
        var model = new SequenceModel(new SequenceModelConfig { VocabularySize = 7, EmbeddingSize = 3, HiddenSize = 4 });
        var table = ProjectedEmbedding.Build(model);
        var wider = new SequenceModel(new SequenceModelConfig { VocabularySize = 7, EmbeddingSize = 3, HiddenSize = 5 });
        Assert.ThrowsExactly<ArgumentException>(() => wider.Projection = table);
        var numeric = new SequenceModel(new SequenceModelConfig { FeatureSize = 3, HiddenSize = 4 });
        Assert.ThrowsExactly<ArgumentException>(() => ProjectedEmbedding.Build(numeric));
        Assert.AreEqual(0, ProjectedEmbedding.BytesFor(numeric.Config));
    }
}
