using DeepSeq.Core.Training;
using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>What the three sequence trainers share: checked options, and fitting through <see cref="SequenceFitting"/>.</summary>
public abstract class SequenceTrainerEstimator<TOptions> : IEstimator<SequenceModelTransformer> where TOptions : SequenceOptions
{
    readonly MLContext _ml;
    readonly TOptions _options;
    readonly SequenceTask _task;

    private protected SequenceTrainerEstimator(MLContext ml, TOptions options, SequenceTask task)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
        _task = task;
    }

    /// <summary>Reads the data, trains, and returns the model as a transformer.</summary>
    public SequenceModelTransformer Fit(IDataView input) => SequenceFitting.Fit(_ml, input, _options, _task, $"DeepSeq.Sequence{_task}");
    /// <summary>The schema of the data the trained model produces.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => SequenceFitting.OutputShape(_ml, inputSchema, _options, _task);
}

/// <summary>
/// Trains a recurrent sequence model for binary classification. Label: Boolean. Features: token ids (vector of
/// keys) or a numeric vector of steps × features. Outputs <c>Score</c> (logit), <c>Probability</c>,
/// <c>PredictedLabel</c> and <c>AttentionWeights</c>, as <c>BinaryClassification.Evaluate</c> expects.
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

    internal SequenceBinaryClassificationTrainer(MLContext ml, Options options) : base(ml, options, SequenceTask.BinaryClassification) { }
}

/// <summary>
/// Trains a recurrent sequence model for multiclass classification. Label: a key (from <c>MapValueToKey</c>).
/// Outputs <c>Score</c> (a vector of K class probabilities) and <c>PredictedLabel</c> (a key with the label's
/// values, so <c>MapKeyToValue</c> gives the class name), as <c>MulticlassClassification.Evaluate</c> expects.
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

    internal SequenceMulticlassClassificationTrainer(MLContext ml, Options options) : base(ml, options, SequenceTask.MulticlassClassification) { }
}

/// <summary>
/// Trains a recurrent sequence model for regression. Label: Single. Outputs <c>Score</c>, as
/// <c>Regression.Evaluate</c> expects, and <c>AttentionWeights</c>.
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

    internal SequenceRegressionTrainer(MLContext ml, Options options) : base(ml, options, SequenceTask.Regression) { }
}
