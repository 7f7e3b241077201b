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
    TimeSpan Elapsed, TimeSpan Remaining, double? ValidationLoss, double? ValidationMetric)
{
    /// <summary>The latest gradient-flow sample when <see cref="SequenceOptions.GradientFlowEveryBatches"/> is set, else null.</summary>
    public GradientFlowSample? GradientFlow { get; init; }
}

/// <summary>
/// The gradient flow through time of one recurrent layer and direction in one recorded batch, by distance d back
/// from each sequence's last step (d = 0: nearest the loss; for a reverse direction, from the sequence's start).
/// Norms are root-mean-square over the sequences reaching that far back.
/// </summary>
/// <param name="Name">The layer, e.g. <c>recurrent.layers.0.forward</c>.</param>
/// <param name="GradientNorm">‖dL/dh‖ at each distance: how far back the training signal reaches.</param>
/// <param name="Gain">
/// η at each distance: how much one step of backpropagation through time scales the state gradient flowing there
/// (‖∂s_t/∂s_{t−1}ᵀ·δ‖ / ‖δ‖, the norm of diag(f′)·W_hh or its gated equivalent along δ). Below 1 gradients vanish; above 1 they explode.
/// </param>
/// <param name="JacobianProduct">The product of the gains from the last step back to each distance (1 at d = 0).</param>
/// <param name="Eta">The geometric mean of the gains.</param>
/// <param name="EffectiveMemory">Steps back until the gradient norm falls below 10⁻³ of its value at d = 0; null when it never does within the sequences.</param>
public sealed record LayerGradientFlow(string Name, IReadOnlyList<double> GradientNorm, IReadOnlyList<double> Gain, IReadOnlyList<double> JacobianProduct,
    double Eta, int? EffectiveMemory);

/// <summary>The gradient flow of one recorded training batch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">0-based step of training.</param>
/// <param name="Loss">The batch's loss.</param>
/// <param name="GradientNorm">The global gradient norm before clipping.</param>
/// <param name="Layers">Each recurrent layer and direction.</param>
/// <param name="Summary">One line: loss, gradient norm, and per layer η and effective memory.</param>
public sealed record GradientFlowSample(int Epoch, long Step, double Loss, double GradientNorm, IReadOnlyList<LayerGradientFlow> Layers, string Summary);

/// <summary>The gradient-flow diagnostics of a training run (<see cref="SequenceOptions.GradientFlowEveryBatches"/>).</summary>
/// <param name="Samples">The recorded batches in training order (at most 200, thinned evenly over the run).</param>
/// <param name="LargestGradientNorm">The largest global gradient norm before clipping of any step, recorded or not.</param>
/// <param name="LargestGradientNormStep">The step where it was seen.</param>
public sealed record GradientFlowReport(IReadOnlyList<GradientFlowSample> Samples, double LargestGradientNorm, long LargestGradientNormStep);

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
    TimeSpan Duration, IReadOnlyList<string> Warnings)
{
    /// <summary>
    /// The gradient-flow diagnostics when <see cref="SequenceOptions.GradientFlowEveryBatches"/> was set; null otherwise,
    /// and for a loaded model (they are not saved with it).
    /// </summary>
    public GradientFlowReport? GradientFlow { get; init; }
}

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
