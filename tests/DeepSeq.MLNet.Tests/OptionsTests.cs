using System.Globalization;
using System.Reflection;
using System.Xml.Linq;
using Microsoft.ML;

namespace DeepSeq.MLNet.Tests;

/// <summary>Every option is checked when the trainer is created, by the name the user wrote.</summary>
[TestClass]
public sealed class OptionsTests
{
    static readonly MLContext Ml = new(seed: 1);

    static ArgumentException Refused(Action<SequenceBinaryClassificationTrainer.Options> set)
    {
        var options = new SequenceBinaryClassificationTrainer.Options();
        set(options);
        return Assert.Throws<ArgumentException>(() => Ml.DeepSeq().BinaryClassification(options));
    }

    [TestMethod]
    public void OutOfRangeValuesAreRefusedAtCreationNamingTheOption()
    {
        foreach (var (set, name) in new (Action<SequenceBinaryClassificationTrainer.Options>, string)[]
        {
            (o => o.HiddenSize = 0, "HiddenSize"),
            (o => o.Dropout = 1.5f, "Dropout"),
            (o => { o.Cell = SequenceCell.Rnn; o.RnnActivation = (RnnNonlinearity)6; }, "RnnActivation"), // e.g. a cast Gelu
            (o => o.Layers = 0, "Layers"),
            (o => o.EmbeddingSize = 0, "EmbeddingSize"),
            (o => o.FeaturesPerStep = 0, "FeaturesPerStep"),
            (o => o.Epochs = 0, "Epochs"),
            (o => o.LearningRate = float.NaN, "LearningRate"),
            (o => o.WeightDecay = -1, "WeightDecay"),
            (o => o.ValidationFraction = 1, "ValidationFraction"),
            (o => o.NumberOfThreads = -1, "NumberOfThreads"),
            (o => o.MaxLength = 0, "MaxLength"),
            (o => o.Pooling = (PoolingMode)42, "Pooling"),
            (o => { o.Optimizer = SequenceOptimizer.Sgd; o.Momentum = 1; }, "Momentum"),
            (o => { o.Cell = SequenceCell.PeepholeLstm; o.Peepholes = PeepholeConnections.None; }, "Peepholes"),
            (o => { o.Cell = SequenceCell.CoupledLstm; o.Peepholes = PeepholeConnections.Forget; }, "Peepholes"),
        })
        {
            var ex = Refused(set);
            Assert.AreEqual(name, ex.ParamName, ex.Message);
            StringAssert.Contains(ex.Message, name);
        }
    }

    [TestMethod]
    public void SettingsThatDoNotApplyAreRefusedNamingThem()
    {
        foreach (var (set, name, why) in new (Action<SequenceBinaryClassificationTrainer.Options>, string, string)[]
        {
            (o => o.GruReset = GruResetMode.BeforeRecurrentMatmul, "GruReset", "Cell = Gru"),
            (o => { o.Cell = SequenceCell.Gru; o.Peepholes = PeepholeConnections.Input; }, "Peepholes", "PeepholeLstm or CoupledLstm"),
            (o => o.RnnActivation = RnnNonlinearity.Relu, "RnnActivation", "Cell = Rnn"),
            (o => { o.Cell = SequenceCell.Gru; o.UnitForgetBias = false; }, "UnitForgetBias", "forget gate"),
            (o => { o.Bidirectional = false; o.Merge = DirectionMerge.Sum; }, "Merge", "Bidirectional = true"),
            (o => o.AttentionSize = 32, "AttentionSize", "Pooling = Attention"),
            (o => o.Momentum = 0.5f, "Momentum", "Optimizer = Sgd"),
            (o => { o.Optimizer = SequenceOptimizer.AdamW; o.Nesterov = true; }, "Nesterov", "Optimizer = Sgd"),
        })
        {
            var ex = Refused(set);
            Assert.AreEqual(name, ex.ParamName, ex.Message);
            StringAssert.Contains(ex.Message, why);
            StringAssert.Contains(ex.Message, $"Leave {name} unset");
        }
    }

    [TestMethod]
    public void SimpleOverloadsAndTheTokenizerNameTheirParameters()
    {
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Ml.DeepSeq().BinaryClassification(hiddenSize: 0));
        Assert.AreEqual("hiddenSize", ex.ParamName);
        StringAssert.Contains(ex.Message, "hiddenSize must be at least 1");
        Assert.AreEqual("learningRate", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Ml.DeepSeq().Regression(learningRate: -1)).ParamName);
        Assert.AreEqual("epochs", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Ml.DeepSeq().MulticlassClassification(epochs: 0)).ParamName);
        var tokenizer = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Ml.DeepSeq().TokenizeText("Tokens", "Text", maximumVocabularySize: 0));
        Assert.AreEqual("maximumVocabularySize", tokenizer.ParamName);
        StringAssert.Contains(tokenizer.Message, "maximumVocabularySize");
        Assert.AreEqual("minimumCount", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Ml.DeepSeq().TokenizeText("Tokens", "Text", minimumCount: 0)).ParamName);
    }

    [TestMethod]
    public void InputKindSettingsAreCheckedAgainstTheColumn()
    {
        var ml = new MLContext(seed: 1);
        var reviews = ml.Data.LoadFromEnumerable(TestData.Reviews(20, 1));
        var tokens = TestData.Tokenizer(ml).Fit(reviews).Transform(reviews);
        var onTokens = TestData.SmallBinary();
        onTokens.FeaturesPerStep = 2;
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().BinaryClassification(onTokens).Fit(tokens));
        Assert.AreEqual("FeaturesPerStep", ex.ParamName);
        StringAssert.Contains(ex.Message, "token ids");

        var series = ml.Data.LoadFromEnumerable(TestData.Sums(20, 1));
        var onValues = new SequenceRegressionTrainer.Options { LabelColumnName = "Target", FeatureColumnName = "Steps", FeaturesPerStep = 2, EmbeddingSize = 16 };
        ex = Assert.ThrowsExactly<ArgumentException>(() => ml.DeepSeq().Regression(onValues).Fit(series));
        Assert.AreEqual("EmbeddingSize", ex.ParamName);
        StringAssert.Contains(ex.Message, "numeric values");
    }

    [TestMethod]
    public void TheTrainerKeepsTheOptionsItWasCreatedWith()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(40, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 1;
        var trainer = ml.DeepSeq().BinaryClassification(options);
        options.HiddenSize = 0; // too late: the trainer checked and copied its options
        Assert.AreEqual(16, trainer.Fit(tokens).Model.Architecture.HiddenSize);
    }

    [TestMethod]
    public void CoupledPeepholeLstmAndSgdWithNesterovMomentumTrainOnOneThread()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Reviews(60, 1));
        var tokens = TestData.Tokenizer(ml).Fit(data).Transform(data);
        var options = TestData.SmallBinary();
        options.Epochs = 1;
        options.Cell = SequenceCell.CoupledLstm;
        options.Peepholes = PeepholeConnections.Input | PeepholeConnections.Output;
        options.Optimizer = SequenceOptimizer.Sgd;
        options.Momentum = 0.8f;
        options.Nesterov = true;
        options.NumberOfThreads = 1;
        var model = ml.DeepSeq().BinaryClassification(options).Fit(tokens).Model;
        Assert.AreEqual(SequenceCell.CoupledLstm, model.Architecture.Cell);
        Assert.AreEqual(PeepholeConnections.Input | PeepholeConnections.Output, model.Architecture.Peepholes);
        var names = string.Join(", ", model.Weights.Keys);
        Assert.IsTrue(names.Contains("recurrent.layers.0.forward.weight_pi") && names.Contains("recurrent.layers.0.forward.weight_po") && !names.Contains("weight_pf"), names); // input and output peepholes
    }

    [TestMethod]
    public void NewOptionsHoldTheDefaults()
    {
        var o = new SequenceRegressionTrainer.Options();
        var defaults = typeof(SequenceOptions.Defaults).GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(f => f.Name, f => f.GetValue(null));
        foreach (var field in typeof(SequenceOptions).GetFields(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!defaults.TryGetValue(field.Name, out var expected)) continue;
            var actual = field.GetValue(o);
            if (Nullable.GetUnderlyingType(field.FieldType) is not null) Assert.IsNull(actual, $"{field.Name} is unset until it applies"); // its default applies where the setting does
            else Assert.AreEqual(expected, actual, field.Name);
        }
        // Every option with a default has one in Defaults, and the other way round.
        var options = typeof(SequenceOptions).GetFields(BindingFlags.Public | BindingFlags.Instance).Select(f => f.Name).ToHashSet();
        CollectionAssert.AreEquivalent(defaults.Keys.ToList(), options.Except(["Progress", "CancellationToken", "Seed", "FeaturesPerStep"]).ToList());
    }

    [TestMethod]
    public void DocumentedDefaultsAreTheDefaults()
    {
        // Each option's XML doc ends its summary with "(default X…)"; X must be the value in Defaults.
        var xml = XDocument.Load(Path.ChangeExtension(typeof(SequenceOptions).Assembly.Location, ".xml"));
        var defaults = typeof(SequenceOptions.Defaults).GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(f => f.Name, f => f.GetValue(null));
        int checkedCount = 0;
        foreach (var member in xml.Descendants("member"))
        {
            string name = member.Attribute("name")!.Value;
            if (!name.StartsWith("F:DeepSeq.MLNet.SequenceOptions.", StringComparison.Ordinal)) continue;
            string field = name["F:DeepSeq.MLNet.SequenceOptions.".Length..];
            string summary = string.Concat(member.Element("summary")!.Nodes().Select(n => n is XElement e ? ((string?)e.Attribute("cref"))?[2..] ?? e.Value : n.ToString()));
            int at = summary.LastIndexOf("(default ", StringComparison.Ordinal);
            if (at < 0) { Assert.IsFalse(defaults.ContainsKey(field), $"{field}: a default without documentation"); continue; }
            string documented = summary[(at + "(default ".Length)..].Split([')', ';', ':', ' '])[0].Trim().Trim('"');
            Assert.IsTrue(defaults.TryGetValue(field, out var value), $"{field} documents a default that Defaults lacks");
            string expected = value switch
            {
                float f => f.ToString(CultureInfo.InvariantCulture),
                bool b => b ? "true" : "false",
                Enum e => $"DeepSeq.MLNet.{e.GetType().Name}.{e}",
                _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
            };
            Assert.AreEqual(expected, documented, $"{field}: documented default");
            checkedCount++;
        }
        Assert.IsGreaterThan(25, checkedCount);
    }
}
