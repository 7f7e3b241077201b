namespace DeepSeq.MLNet;

/// <summary>A progress report during training.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean training loss so far in this epoch.</param>
/// <param name="SequencesPerSecond">Training throughput in this epoch.</param>
/// <param name="Elapsed">Time since training started.</param>
/// <param name="Remaining">Estimated time left for the planned epochs.</param>
/// <param name="ValidationLoss">Validation loss at the end of an epoch (with validation data), else null.</param>
/// <param name="ValidationMetric">Validation metric at the end of an epoch (accuracy; −MSE for regression), else null.</param>
public sealed record SequenceTrainingProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double SequencesPerSecond,
    TimeSpan Elapsed, TimeSpan Remaining, double? ValidationLoss, double? ValidationMetric);

/// <summary>One epoch's figures.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean training loss over the epoch.</param>
/// <param name="ValidationLoss">Validation loss after the epoch, or null without validation data.</param>
/// <param name="ValidationMetric">Validation metric after the epoch (accuracy; −MSE for regression), or null.</param>
/// <param name="Duration">Time the epoch took.</param>
public sealed record SequenceEpochSummary(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationMetric, TimeSpan Duration);

/// <summary>What training did.</summary>
/// <param name="Epochs">Per-epoch figures.</param>
/// <param name="BestEpoch">The epoch whose weights were kept.</param>
/// <param name="Cancelled">True when the cancellation token stopped training.</param>
/// <param name="Divergence">Why training stopped on a non-finite loss or gradient, or null.</param>
/// <param name="Duration">Wall-clock time of training.</param>
/// <param name="Warnings">
/// Signs of a bad run that did not stop it — an epoch whose loss ended above where it started, a kept model
/// no better than predicting the label distribution, rows skipped for having no tokens — also logged as
/// warnings to <c>MLContext.Log</c>.
/// </param>
public sealed record SequenceTrainingReport(IReadOnlyList<SequenceEpochSummary> Epochs, int BestEpoch, bool Cancelled, string? Divergence,
    TimeSpan Duration, IReadOnlyList<string> Warnings);

/// <summary>The architecture of a trained sequence model.</summary>
public sealed record SequenceArchitecture
{
    /// <summary>The recurrent cell.</summary>
    public required SequenceCell Cell { get; init; }
    /// <summary>The RNN non-linearity (<see cref="SequenceCell.Rnn"/> only), else null.</summary>
    public RnnNonlinearity? RnnActivation { get; init; }
    /// <summary>The gates with peepholes (<see cref="SequenceCell.PeepholeLstm"/>, <see cref="SequenceCell.CoupledLstm"/>), else null.</summary>
    public PeepholeConnections? Peepholes { get; init; }
    /// <summary>The GRU reset placement (<see cref="SequenceCell.Gru"/> only), else null.</summary>
    public GruResetMode? GruReset { get; init; }
    /// <summary>Hidden units per direction.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Stacked recurrent layers.</summary>
    public required int Layers { get; init; }
    /// <summary>Whether sequences are read in both directions.</summary>
    public required bool Bidirectional { get; init; }
    /// <summary>How the two directions combine (bidirectional only), else null.</summary>
    public DirectionMerge? Merge { get; init; }
    /// <summary>Pooling over time.</summary>
    public required PoolingMode Pooling { get; init; }
    /// <summary>The attention layer's size (attention pooling only), else null.</summary>
    public int? AttentionSize { get; init; }
    /// <summary>The dropout rate used in training.</summary>
    public required float Dropout { get; init; }
    /// <summary>Token input: the embedding rows (vocabulary + 1 for unknown words); null for numeric input.</summary>
    public int? VocabularySize { get; init; }
    /// <summary>Token input: the embedding dimension; null for numeric input.</summary>
    public int? EmbeddingSize { get; init; }
    /// <summary>Numeric input: values per step; null for token input.</summary>
    public int? FeaturesPerStep { get; init; }
    /// <summary>The longest sequence read; longer ones are cut.</summary>
    public required int MaxLength { get; init; }
    /// <summary>Whether a cut sequence keeps its end rather than its start.</summary>
    public required bool KeepEnd { get; init; }
    /// <summary>Outputs of the last layer: 1 (binary, regression) or the number of classes.</summary>
    public required int Outputs { get; init; }
}

/// <summary>
/// A trained sequence model as saved: what it predicts, its architecture, its class names, its weights by name
/// and the report of its training. From <see cref="SequenceModelTransformer.Model"/>, or from any transformer
/// holding one, also after <c>mlContext.Model.Load</c>, with <see cref="DeepSeqCatalog.GetTrainedModel"/>.
/// </summary>
public sealed class TrainedSequenceModel
{
    internal TrainedSequenceModel(SequenceTaskKind task, SequenceArchitecture architecture, IReadOnlyList<string> classNames,
        IReadOnlyDictionary<string, ReadOnlyMemory<float>> weights, SequenceTrainingReport? report)
    {
        Task = task; Architecture = architecture; ClassNames = classNames; Weights = weights; TrainingReport = report;
    }

    /// <summary>What the model predicts.</summary>
    public SequenceTaskKind Task { get; }
    /// <summary>The architecture.</summary>
    public SequenceArchitecture Architecture { get; }
    /// <summary>Class names in key order (multiclass), else empty.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Every weight tensor, flattened, by its name in the model.</summary>
    public IReadOnlyDictionary<string, ReadOnlyMemory<float>> Weights { get; }
    /// <summary>The training report; null for a loaded model whose saved format does not carry one.</summary>
    public SequenceTrainingReport? TrainingReport { get; }
}
