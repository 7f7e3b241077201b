using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>What the three sequence trainers share: options checked and copied at creation, and fitting with or without validation data.</summary>
public abstract class SequenceTrainerEstimator<TOptions> : IEstimator<SequenceModelTransformer> where TOptions : SequenceOptions
{
    readonly MLContext _ml;
    readonly TOptions _options;
    readonly SequenceTaskKind _task;

    private protected SequenceTrainerEstimator(MLContext ml, TOptions options, SequenceTaskKind task, bool camelCaseNames)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(camelCaseNames);
        _options = (TOptions)options.Clone(); // later changes to the caller's object do not reach this trainer
        _task = task;
    }

    /// <summary>Reads the data, trains (holding out <see cref="SequenceOptions.ValidationFraction"/> of it, if set), and returns the model as a transformer.</summary>
    public SequenceModelTransformer Fit(IDataView input) => SequenceFitting.Fit(_ml, input, null, _options, _task);

    /// <summary>
    /// Trains on <paramref name="trainData"/>, scoring <paramref name="validationData"/> after every epoch: training
    /// stops early and keeps the best epoch's weights. The validation data must be featurized by the same fitted
    /// transforms as the training data (same vocabulary, same label keys).
    /// </summary>
    public SequenceModelTransformer Fit(IDataView trainData, IDataView validationData)
        => SequenceFitting.Fit(_ml, trainData, validationData ?? throw new ArgumentNullException(nameof(validationData)), _options, _task);

    /// <summary>The schema of the data the trained model produces.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => SequenceFitting.OutputShape(_ml, inputSchema, _options, _task);
}

/// <summary>
/// Trains a recurrent sequence model for binary classification. Label: Boolean. Features: token ids (vector of
/// keys) or a numeric vector of steps × features. Outputs <c>Score</c> (logit), <c>Probability</c>,
/// <c>PredictedLabel</c> and <c>AttentionWeights</c>, as <c>BinaryClassification.Evaluate</c> expects. A row with no
/// tokens or steps, or with a NaN or infinite value, gets NaN <c>Score</c> and <c>Probability</c> (a missing value,
/// skipped and counted by the evaluator) and <c>PredictedLabel</c> false.
/// </summary>
/// <remarks>
/// | Trainer characteristic | |
/// |---|---|
/// | Machine learning task | Binary classification |
/// | Is normalization required? | No for tokens; yes (roughly unit scale) for numeric steps |
/// | Is caching required? | No: the data is read once into memory |
/// | Required NuGet in addition to Microsoft.ML | DeepSeq.MLNet (pure managed) |
/// | Exportable to ONNX | No |
/// </remarks>
public sealed class SequenceBinaryClassificationTrainer : SequenceTrainerEstimator<SequenceBinaryClassificationTrainer.Options>
{
    /// <summary>Options of <see cref="SequenceBinaryClassificationTrainer"/>.</summary>
    public sealed class Options : SequenceOptions { }

    internal SequenceBinaryClassificationTrainer(MLContext ml, Options options, bool camelCaseNames = false) : base(ml, options, SequenceTaskKind.BinaryClassification, camelCaseNames) { }
}

/// <summary>
/// Trains a recurrent sequence model for multiclass classification. Label: a key (from <c>MapValueToKey</c>).
/// Outputs <c>Score</c> (a vector of K class probabilities whose slot names are the class names) and
/// <c>PredictedLabel</c> (a key with the label's values, so <c>MapKeyToValue</c> gives the class name), as
/// <c>MulticlassClassification.Evaluate</c> expects. A row with no tokens or steps, or with a NaN or infinite value,
/// gets a NaN <c>Score</c> (a missing value, skipped and counted by the evaluator) and a missing <c>PredictedLabel</c> (key 0).
/// </summary>
/// <remarks>
/// | Trainer characteristic | |
/// |---|---|
/// | Machine learning task | Multiclass classification (2 to 1023 classes) |
/// | Is normalization required? | No for tokens; yes (roughly unit scale) for numeric steps |
/// | Is caching required? | No: the data is read once into memory |
/// | Required NuGet in addition to Microsoft.ML | DeepSeq.MLNet (pure managed) |
/// | Exportable to ONNX | No |
/// </remarks>
public sealed class SequenceMulticlassClassificationTrainer : SequenceTrainerEstimator<SequenceMulticlassClassificationTrainer.Options>
{
    /// <summary>Options of <see cref="SequenceMulticlassClassificationTrainer"/>.</summary>
    public sealed class Options : SequenceOptions { }

    internal SequenceMulticlassClassificationTrainer(MLContext ml, Options options, bool camelCaseNames = false) : base(ml, options, SequenceTaskKind.MulticlassClassification, camelCaseNames) { }
}

/// <summary>
/// Trains a recurrent sequence model for regression. Label: Single. Outputs <c>Score</c>, as
/// <c>Regression.Evaluate</c> expects, and <c>AttentionWeights</c>. A row with no tokens or steps, or with a NaN or
/// infinite value, gets a NaN <c>Score</c> (a missing value, skipped and counted by the evaluator).
/// </summary>
/// <remarks>
/// | Trainer characteristic | |
/// |---|---|
/// | Machine learning task | Regression |
/// | Is normalization required? | Yes for numeric steps and for labels far from unit scale |
/// | Is caching required? | No: the data is read once into memory |
/// | Required NuGet in addition to Microsoft.ML | DeepSeq.MLNet (pure managed) |
/// | Exportable to ONNX | No |
/// </remarks>
public sealed class SequenceRegressionTrainer : SequenceTrainerEstimator<SequenceRegressionTrainer.Options>
{
    /// <summary>Options of <see cref="SequenceRegressionTrainer"/>.</summary>
    public sealed class Options : SequenceOptions { }

    internal SequenceRegressionTrainer(MLContext ml, Options options, bool camelCaseNames = false) : base(ml, options, SequenceTaskKind.Regression, camelCaseNames) { }
}
