using DeepSeq.Core.Layers;
using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>Entry point: <c>mlContext.DeepSeq()</c>.</summary>
public static class MLContextExtensions
{
    /// <summary>The DeepSeq trainers and text featurizer for this context (logging and seed come from it).</summary>
    public static DeepSeqCatalog DeepSeq(this MLContext mlContext) => new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));
}

/// <summary>
/// Recurrent sequence trainers for ML.NET — RNN, LSTM (standard, peephole, coupled), GRU, bidirectional —
/// trained from scratch on the CPU in managed code, and a text-to-token featurizer.
/// </summary>
/// <example>
/// <code>
/// var ml = new MLContext(seed: 1);
/// var pipeline = ml.DeepSeq().TokenizeText("Tokens", "Text")
///     .Append(ml.DeepSeq().BinaryClassification("Label", "Tokens", epochs: 3));
/// var model = pipeline.Fit(train);
/// var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
/// </code>
/// </example>
public sealed class DeepSeqCatalog
{
    readonly MLContext _ml;

    internal DeepSeqCatalog(MLContext ml) => _ml = ml;

    /// <summary>
    /// Text → token ids for the sequence trainers: lower-cases, strips diacritics and punctuation, splits on
    /// spaces, and keeps the <paramref name="maximumVocabularySize"/> most frequent words seen at least
    /// <paramref name="minimumCount"/> times (ids 1…V by frequency; other words become 0, "unknown").
    /// The result is a vector of keys whose <c>KeyValues</c> annotation holds the vocabulary.
    /// </summary>
    public TextTokenizingEstimator TokenizeText(string outputColumnName, string? inputColumnName = null,
        int maximumVocabularySize = TextTokenizingEstimator.Defaults.MaximumVocabularySize, int minimumCount = TextTokenizingEstimator.Defaults.MinimumCount)
        => new(_ml, outputColumnName, inputColumnName ?? outputColumnName, maximumVocabularySize, minimumCount);

    /// <summary>A bidirectional recurrent binary classifier (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Boolean label column.</param>
    /// <param name="featureColumnName">Token ids (vector of keys) or numeric steps (vector of Single).</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's learning rate.</param>
    public SequenceBinaryClassificationTrainer BinaryClassification(string labelColumnName = "Label", string featureColumnName = "Features",
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = true, PoolingKind pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => BinaryClassification(Fill(new SequenceBinaryClassificationTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate));

    /// <summary>A recurrent binary classifier with every option.</summary>
    public SequenceBinaryClassificationTrainer BinaryClassification(SequenceBinaryClassificationTrainer.Options options) => new(_ml, options);

    /// <summary>A bidirectional recurrent multiclass classifier (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Key label column (from <c>MapValueToKey</c>).</param>
    /// <param name="featureColumnName">Token ids (vector of keys) or numeric steps (vector of Single).</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's learning rate.</param>
    public SequenceMulticlassClassificationTrainer MulticlassClassification(string labelColumnName = "Label", string featureColumnName = "Features",
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = true, PoolingKind pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => MulticlassClassification(Fill(new SequenceMulticlassClassificationTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate));

    /// <summary>A recurrent multiclass classifier with every option.</summary>
    public SequenceMulticlassClassificationTrainer MulticlassClassification(SequenceMulticlassClassificationTrainer.Options options) => new(_ml, options);

    /// <summary>A bidirectional recurrent regressor (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Single label column.</param>
    /// <param name="featureColumnName">Token ids (vector of keys) or numeric steps (vector of Single).</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's learning rate.</param>
    public SequenceRegressionTrainer Regression(string labelColumnName = "Label", string featureColumnName = "Features",
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = true, PoolingKind pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => Regression(Fill(new SequenceRegressionTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate));

    /// <summary>A recurrent regressor with every option.</summary>
    public SequenceRegressionTrainer Regression(SequenceRegressionTrainer.Options options) => new(_ml, options);

    static T Fill<T>(T o, string label, string features, SequenceCell cell, int hiddenSize, int layers, bool bidirectional, PoolingKind pooling, int epochs, float learningRate)
        where T : SequenceOptions
    {
        o.LabelColumnName = label; o.FeatureColumnName = features; o.Cell = cell; o.HiddenSize = hiddenSize; o.Layers = layers;
        o.Bidirectional = bidirectional; o.Pooling = pooling; o.Epochs = epochs; o.LearningRate = learningRate;
        return o;
    }
}
