using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Tests;

/// <summary>
/// A fitted model's <c>Transform</c> (and one from <c>DeepSeq().LoadModel</c>) scores rows in blocks read ahead;
/// a chain from <c>Model.Load</c> is ML.NET's own row-by-row mapping. Both must give the same columns, values
/// and rows, whatever the rows' lengths, blank rows and bad rows included, over several blocks.
/// </summary>
[TestClass]
public sealed class BlockScoringTests
{
    // More rows than one block (256), with blank rows scattered through them.
    static List<Review> Reviews(int count, int seed)
    {
        var rows = TestData.Reviews(count, seed);
        for (int i = 5; i < rows.Count; i += 97) rows[i] = new Review { Text = i % 2 == 0 ? "" : "!!!", Label = true };
        return rows;
    }

    static ITransformer RowByRow(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, schema, stream);
        stream.Position = 0;
        return ml.Model.Load(stream, out _);
    }

    static (float[] Scores, float[] Probabilities, bool[] Predicted, float[][] Attention, string[] Texts) Read(IDataView scored)
    {
        var rows = new MLContext().Data.CreateEnumerable<EmptyRowTests.ScoredReview>(scored, reuseRowObject: false).ToList();
        return ([.. rows.Select(r => r.Score)], [.. rows.Select(r => r.Probability)], [.. rows.Select(r => r.PredictedLabel)],
            [.. rows.Select(r => r.AttentionWeights)], [.. rows.Select(r => r.Text)]);
    }

    [TestMethod]
    public void BlockScoringGivesTheRowMappingsColumnsAndValuesOverSeveralBlocks()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(200, 1));
        var options = TestData.SmallBinary();
        options.Epochs = 2; options.Pooling = PoolingMode.Attention; options.MaxLength = 9; // rows longer than 9 tokens are cut
        var model = TestData.Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(options)).Fit(train);
        var test = ml.Data.LoadFromEnumerable(Reviews(600, 2));
        var stock = RowByRow(ml, model, train.Schema);

        var inBlocks = model.Transform(test);
        var rowByRow = stock.Transform(test);
        Assert.AreEqual(rowByRow.Schema.Count, inBlocks.Schema.Count);
        for (int i = 0; i < inBlocks.Schema.Count; i++)
        {
            Assert.AreEqual(rowByRow.Schema[i].Name, inBlocks.Schema[i].Name);
            Assert.AreEqual(rowByRow.Schema[i].Type, inBlocks.Schema[i].Type);
            Assert.AreEqual(rowByRow.Schema[i].IsHidden, inBlocks.Schema[i].IsHidden);
        }
        var a = Read(inBlocks);
        var b = Read(rowByRow);
        Assert.HasCount(600, a.Scores);
        CollectionAssert.AreEqual(b.Texts, a.Texts, "rows in order, passed-through columns unchanged");
        CollectionAssert.AreEqual(b.Predicted, a.Predicted);
        for (int i = 0; i < a.Scores.Length; i++)
        {
            if (float.IsNaN(b.Scores[i])) { Assert.IsTrue(float.IsNaN(a.Scores[i]) && a.Attention[i].Length == 0, $"row {i} is blank"); continue; }
            Assert.AreEqual(b.Scores[i], a.Scores[i], $"row {i}"); // bit for bit: a row's sums do not depend on its batch
            Assert.AreEqual(b.Probabilities[i], a.Probabilities[i], $"row {i}");
            CollectionAssert.AreEqual(b.Attention[i], a.Attention[i], $"row {i}: a weight per step read");
        }
        Assert.IsTrue(a.Attention.Any(w => w.Length == 9), "some rows were cut to MaxLength");

        // The evaluators read the block-scored view like the stock one.
        var metrics = ml.BinaryClassification.Evaluate(inBlocks);
        Assert.AreEqual(ml.BinaryClassification.Evaluate(rowByRow).Accuracy, metrics.Accuracy, 1e-9);
    }

    [TestMethod]
    public void LoadModelScoresInBlocksAndSavesTheStockChain()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topics(120, 1));
        var model = TestData.SmallTopicPipeline(ml, 2).Fit(train);
        var test = ml.Data.LoadFromEnumerable(TestData.Topics(300, 2));
        var stock = RowByRow(ml, model, train.Schema);

        using var file = new MemoryStream();
        ml.Model.Save(model, train.Schema, file);
        file.Position = 0;
        var loaded = ml.DeepSeq().LoadModel(file, out var inputSchema);
        Assert.AreEqual(train.Schema.Count, inputSchema.Count);
        CollectionAssert.AreEqual(ml.DeepSeq().GetTrainedModel(model).ClassNames.ToList(), ml.DeepSeq().GetTrainedModel(loaded).ClassNames.ToList());

        float[][] Scores(IDataView v) => [.. v.GetColumn<VBuffer<float>>("Score").Select(s => s.DenseValues().ToArray())];
        uint[] Labels(IDataView v) => [.. v.GetColumn<uint>("PredictedLabel")];
        var expected = Scores(stock.Transform(test));
        foreach (var scored in new[] { loaded.Transform(test), model.Transform(test) })
        {
            var actual = Scores(scored);
            Assert.HasCount(expected.Length, actual);
            for (int i = 0; i < actual.Length; i++)
                CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
            CollectionAssert.AreEqual(Labels(stock.Transform(test)), Labels(scored));
        }

        // Saved again, it is the stock chain that Model.Load reads.
        using var again = new MemoryStream();
        ml.Model.Save(loaded, inputSchema, again);
        again.Position = 0;
        var reloaded = ml.Model.Load(again, out _);
        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(reloaded);
        CollectionAssert.AreEqual(Labels(stock.Transform(test)), Labels(reloaded.Transform(test)));
    }

    [TestMethod]
    public void NumericStepsScoreInBlocksWithMissingRows()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DeepSeq().Regression(new SequenceRegressionTrainer.Options
        {
            LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2, Cell = SequenceCell.Gru, HiddenSize = 8,
            Epochs = 1, BatchSize = 16, Dropout = 0f, Seed = 1,
        }).Fit(ml.Data.LoadFromEnumerable(TestData.Sums(100, 7)));
        var rows = TestData.Sums(300, 8);
        rows[7].Steps = []; rows[70].Steps[1] = float.NaN; rows[270].Steps[0] = float.NegativeInfinity;
        var test = ml.Data.LoadFromEnumerable(rows);
        var expected = RowByRow(ml, model, test.Schema).Transform(test).GetColumn<float>("Score").ToArray();
        var actual = model.Transform(test).GetColumn<float>("Score").ToArray();
        Assert.HasCount(300, actual);
        for (int i = 0; i < actual.Length; i++)
            if (i is 7 or 70 or 270) Assert.IsTrue(float.IsNaN(actual[i]) && float.IsNaN(expected[i]), $"row {i}");
            else Assert.AreEqual(expected[i], actual[i], $"row {i}");
    }

    [TestMethod]
    public void ABadRowRaisesItsErrorAtItsOwnRowAndTheOthersStillScore()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Reviews(80, 1));
        var model = TestData.Tokenizer(ml).Append(ml.DeepSeq().BinaryClassification(TestData.SmallBinary())).Fit(train);
        // Token keys from a larger vocabulary than the model's: a row holding one of the extra words has a key
        // outside the model's embedding.
        var rows = TestData.Reviews(300, 2);
        var bad = new HashSet<int> { 3, 150, 299 };
        foreach (int i in bad) rows[i].Text += " zebra";
        var test = ml.Data.LoadFromEnumerable(rows);
        var wider = ml.DeepSeq().TokenizeText("Tokens", "Text", minimumCount: 1).Fit(ml.Data.LoadFromEnumerable(TestData.Reviews(80, 1).Append(new Review { Text = "zebra" }))).Transform(test);

        // (ML.NET's row-by-row mapping, read through its parallel cursors, stops the whole read at the first bad row.)
        var scored = model.LastTransformer.Transform(wider);
        using var cursor = scored.GetRowCursor([scored.Schema["Score"], scored.Schema["Text"]]);
        var getScore = cursor.GetGetter<float>(scored.Schema["Score"]);
        var getText = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["Text"]);
        var failed = new List<int>();
        float score = 0;
        ReadOnlyMemory<char> text = default;
        int count = 0;
        for (; cursor.MoveNext(); count++)
        {
            getText(ref text);
            Assert.AreEqual(rows[count].Text, text.ToString(), "the bad row's other columns read as usual");
            try { getScore(ref score); Assert.IsTrue(float.IsFinite(score), $"row {count}"); }
            catch (InvalidOperationException e) { StringAssert.Contains(e.Message, "outside the model's vocabulary"); failed.Add(count); }
        }
        Assert.AreEqual(300, count);
        CollectionAssert.AreEqual(bad.Order().ToList(), failed);
    }

    [TestMethod]
    public void TheCursorFollowsMLNetsRulesBeforeTheFirstRowAndAfterTheLast()
    {
        var ml = new MLContext(seed: 1);
        var model = TestData.SmallBinaryPipeline(ml, 1).Fit(ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1)));
        foreach (int n in new[] { 0, 1, 256, 512 }) // none, one, exactly one block, exactly two
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(TestData.Reviews(n, 2)));
            using var cursor = scored.GetRowCursor([scored.Schema["Score"], scored.Schema["Text"]]);
            var getScore = cursor.GetGetter<float>(scored.Schema["Score"]);
            var getText = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["Text"]);
            float score = 0;
            Assert.AreEqual(-1, cursor.Position);
            if (n > 0) Assert.ThrowsExactly<InvalidOperationException>(() => getScore(ref score), "before the first row");
            int rows = 0;
            while (cursor.MoveNext()) { Assert.AreEqual(rows++, cursor.Position); getScore(ref score); }
            Assert.AreEqual(n, rows);
            Assert.AreEqual(-1, cursor.Position, "after the last row");
            Assert.IsFalse(cursor.MoveNext());
            if (n > 0) Assert.ThrowsExactly<InvalidOperationException>(() => { ReadOnlyMemory<char> t = default; getText(ref t); }, "after the last row");
            Assert.ThrowsExactly<InvalidOperationException>(() => cursor.GetGetter<double>(scored.Schema["Score"]), "the column's type is Single");
        }
    }

    [TestMethod]
    public void AnInputThatFailsPartWayServesTheRowsBeforeItWithTheirOwnScores()
    {
        var ml = new MLContext(seed: 1);
        var model = TestData.SmallBinaryPipeline(ml, 1).Fit(ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1)));
        var rows = TestData.Reviews(5000, 2);
        for (int i = 0; i < rows.Count; i++) rows[i].Text += $" row{i}"; // each row's text names it
        var expected = model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").ToArray();
        const int FailAt = 4500; // inside a block (ML.NET's reader threads pass the error on after a whole batch of theirs)
        IEnumerable<Review> Failing()
        {
            for (int i = 0; i < rows.Count; i++)
            {
                if (i == FailAt) throw new InvalidDataException("the source failed");
                yield return rows[i];
            }
        }

        var scored = model.Transform(ml.Data.LoadFromEnumerable(Failing()));
        using var cursor = scored.GetRowCursor([scored.Schema["Score"], scored.Schema["Text"]]);
        var getScore = cursor.GetGetter<float>(scored.Schema["Score"]);
        var getText = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["Text"]);
        float score = 0;
        ReadOnlyMemory<char> text = default;
        int served = 0, failures = 0;
        for (int calls = 0; calls < rows.Count + 10; calls++) // a consumer that catches the error and reads on
        {
            try { if (!cursor.MoveNext()) break; }
            catch (Exception e) when (FromTheSource(e)) { failures++; continue; }
            catch (InvalidOperationException) when (failures > 0) { break; } // ML.NET's failed reader threads may refuse to go on
            getText(ref text); getScore(ref score);
            string t = text.ToString();
            int row = int.Parse(t[(t.LastIndexOf(" row", StringComparison.Ordinal) + 4)..]);
            Assert.AreEqual(expected[row], score, $"row {row} has its own score");
            served++;
        }
        Assert.IsGreaterThanOrEqualTo(1, failures);
        Assert.IsLessThanOrEqualTo(FailAt, served);
        Assert.IsGreaterThanOrEqualTo(256, served, "the rows read before the failure were served");
        static bool FromTheSource(Exception? e) // ML.NET's reader threads wrap it
        {
            for (; e is not null; e = e.InnerException) if (e is InvalidDataException) return true;
            return false;
        }
        Assert.IsLessThanOrEqualTo(FailAt, served);
        Assert.IsGreaterThanOrEqualTo(256, served, "the rows read before the failure were served (ML.NET's own reader threads raise it a little early)");
    }

    public sealed class ModelRow
    {
        [ColumnName(DeepSeq.MLNet.Transforms.DeepSeqColumns.Input), VectorType] public uint[] Input = [];
        [ColumnName(DeepSeq.MLNet.Transforms.DeepSeqColumns.Model)] public string Model = "";
    }

    [TestMethod]
    public void EachRowIsScoredByTheModelItNames()
    {
        // The model column comes from a value mapping, the same text on every row; a view that names two models
        // row by row must still get each row's own model's scores, as from the stock mapping.
        var ml = new MLContext(seed: 1);
        var texts = ml.Data.LoadFromEnumerable(TestData.Reviews(80, 1));
        var tokens = TestData.Tokenizer(ml).Fit(texts).Transform(texts);
        var chains = new[] { 1, 4 }.Select(epochs =>
        {
            var options = TestData.SmallBinary();
            options.Epochs = epochs;
            return (IEnumerable<ITransformer>)RowByRow(ml, ml.DeepSeq().BinaryClassification(options).Fit(tokens), tokens.Schema);
        }).ToList();
        static IEnumerable<ITransformer> Flat(IEnumerable<ITransformer> chain) => chain.SelectMany(t => t is IEnumerable<ITransformer> inner ? Flat(inner) : [t]);
        var mapping = Flat(chains[0]).Single(t => t.GetType().Name.StartsWith("CustomMappingTransformer", StringComparison.Ordinal)
            && t.GetType().GetGenericArguments()[0] == typeof(DeepSeq.MLNet.Transforms.TokenIdsInput));
        (string Model, uint[][] Ids) Prefix(IEnumerable<ITransformer> chain)
        {
            var view = tokens;
            foreach (var t in Flat(chain).TakeWhile(t => t.GetType() != mapping.GetType())) view = t.Transform(view);
            var rows = ml.Data.CreateEnumerable<ModelRow>(view, reuseRowObject: false).ToList();
            return (rows[0].Model, [.. rows.Select(r => r.Input)]);
        }
        var (a, ids) = Prefix(chains[0]);
        var (b, _) = Prefix(chains[1]);
        Assert.AreNotEqual(a, b);
        var mixed = ml.Data.LoadFromEnumerable(ids.Select((input, i) => new ModelRow { Input = input, Model = i % 3 == 0 ? b : a }).ToList());

        var expected = mapping.Transform(mixed).GetColumn<float>("Score").ToArray();
        var actual = DeepSeq.MLNet.Transforms.BlockScoring.Transform(mapping, mixed).GetColumn<float>("Score").ToArray();
        CollectionAssert.AreEqual(expected, actual);
        var onlyA = mapping.Transform(ml.Data.LoadFromEnumerable(ids.Select(input => new ModelRow { Input = input, Model = a }).ToList())).GetColumn<float>("Score").ToArray();
        Assert.IsTrue(Enumerable.Range(0, ids.Length).Any(i => i % 3 == 0 && actual[i] != onlyA[i]), "the rows naming the second model got its scores");
    }
}
