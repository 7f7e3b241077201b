using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>
/// Settings shared by the DeepSeq sequence trainers, checked when the trainer is created. Every default is in
/// <see cref="Defaults"/>; they are those of the IMDB sentiment model, a bidirectional LSTM with max + mean
/// pooling and dropout 0.5. Settings that only apply to some cells, poolings or optimisers are nullable: unset,
/// they take their default where they apply; set where they do not apply, the trainer refuses them.
/// </summary>
public abstract class SequenceOptions
{
    /// <summary>The default of every setting (one source: the options, the simple overloads and the documentation use these).</summary>
    public static class Defaults
    {
        /// <summary>"Label".</summary>
        public const string LabelColumnName = "Label";
        /// <summary>"Features".</summary>
        public const string FeatureColumnName = "Features";
        /// <summary><see cref="SequenceCell.Lstm"/>.</summary>
        public const SequenceCell Cell = SequenceCell.Lstm;
        /// <summary><see cref="RnnNonlinearity.Tanh"/> (for <see cref="SequenceCell.Rnn"/>).</summary>
        public const RnnNonlinearity RnnActivation = RnnNonlinearity.Tanh;
        /// <summary><see cref="PeepholeConnections.All"/> for <see cref="SequenceCell.PeepholeLstm"/>; a coupled LSTM has none unless set.</summary>
        public const PeepholeConnections Peepholes = PeepholeConnections.All;
        /// <summary><see cref="GruResetMode.AfterRecurrentMatmul"/> (for <see cref="SequenceCell.Gru"/>, as PyTorch).</summary>
        public const GruResetMode GruReset = GruResetMode.AfterRecurrentMatmul;
        /// <summary>128 hidden units per direction.</summary>
        public const int HiddenSize = 128;
        /// <summary>1 recurrent layer.</summary>
        public const int Layers = 1;
        /// <summary>true: both directions.</summary>
        public const bool Bidirectional = true;
        /// <summary><see cref="DirectionMerge.Concat"/> (when bidirectional).</summary>
        public const DirectionMerge Merge = DirectionMerge.Concat;
        /// <summary>128 (token input).</summary>
        public const int EmbeddingSize = 128;
        /// <summary><see cref="PoolingMode.MaxMean"/>.</summary>
        public const PoolingMode Pooling = PoolingMode.MaxMean;
        /// <summary>64 (attention pooling).</summary>
        public const int AttentionSize = 64;
        /// <summary>0.5.</summary>
        public const float Dropout = 0.5f;
        /// <summary><see cref="SequenceOptimizer.Adam"/>.</summary>
        public const SequenceOptimizer Optimizer = SequenceOptimizer.Adam;
        /// <summary>0.002.</summary>
        public const float LearningRate = 2e-3f;
        /// <summary>1: a constant learning rate.</summary>
        public const float LearningRateDecay = 1f;
        /// <summary>0.9 (SGD).</summary>
        public const float Momentum = 0.9f;
        /// <summary>false (SGD).</summary>
        public const bool Nesterov = false;
        /// <summary>0: none.</summary>
        public const float WeightDecay = 0f;
        /// <summary>64 sequences.</summary>
        public const int BatchSize = 64;
        /// <summary>5 epochs.</summary>
        public const int Epochs = 5;
        /// <summary>1.</summary>
        public const float GradientClipNorm = 1f;
        /// <summary>0: off.</summary>
        public const float GradientClipValue = 0f;
        /// <summary>0: off.</summary>
        public const float WeightAveraging = 0f;
        /// <summary><see cref="WeightInitializer.XavierOrthogonal"/>.</summary>
        public const WeightInitializer Initializer = WeightInitializer.XavierOrthogonal;
        /// <summary>true (LSTM and peephole LSTM).</summary>
        public const bool UnitForgetBias = true;
        /// <summary>400 tokens or steps.</summary>
        public const int MaxLength = 400;
        /// <summary>false: a cut sequence keeps its start.</summary>
        public const bool KeepEnd = false;
        /// <summary>0: no held-out validation.</summary>
        public const float ValidationFraction = 0f;
        /// <summary>2 epochs.</summary>
        public const int EarlyStoppingPatience = 2;
        /// <summary>0: one thread per core.</summary>
        public const int NumberOfThreads = 0;
    }

    /// <summary>Name of the label column: Boolean (binary), a key (multiclass) or Single (regression) (default "Label").</summary>
    public string LabelColumnName = Defaults.LabelColumnName;
    /// <summary>
    /// Name of the sequence column (default "Features"): token ids as a vector of keys (from
    /// <see cref="DeepSeqCatalog.TokenizeText"/>, or <c>TokenizeIntoWords</c> + <c>MapValueToKey</c>), or numeric steps
    /// as a vector of <see cref="Single"/> whose layout is declared by <see cref="FeaturesPerStep"/>.
    /// </summary>
    public string FeatureColumnName = Defaults.FeatureColumnName;
    /// <summary>
    /// Numeric input only: values per time step; a row of T steps holds T × this values. Required for numeric input
    /// unless the column's type declares it (<c>Vector&lt;Single, *, F&gt;</c>): a numeric vector is not guessed to be a sequence.
    /// </summary>
    public int? FeaturesPerStep;

    /// <summary>The recurrent cell (default <see cref="SequenceCell.Lstm"/>).</summary>
    public SequenceCell Cell = Defaults.Cell;
    /// <summary><see cref="SequenceCell.Rnn"/> only: the non-linearity (default <see cref="RnnNonlinearity.Tanh"/>).</summary>
    public RnnNonlinearity? RnnActivation;
    /// <summary>
    /// <see cref="SequenceCell.PeepholeLstm"/> and <see cref="SequenceCell.CoupledLstm"/> only: the gates with peepholes.
    /// A coupled LSTM has none unless set, and no forget gate to give one (default <see cref="PeepholeConnections.All"/> for a peephole LSTM).
    /// </summary>
    public PeepholeConnections? Peepholes;
    /// <summary><see cref="SequenceCell.Gru"/> only: where the reset gate applies (default <see cref="GruResetMode.AfterRecurrentMatmul"/>).</summary>
    public GruResetMode? GruReset;
    /// <summary>Hidden units per direction (default 128).</summary>
    public int HiddenSize = Defaults.HiddenSize;
    /// <summary>Stacked recurrent layers (default 1).</summary>
    public int Layers = Defaults.Layers;
    /// <summary>Read each sequence in both directions (default true).</summary>
    public bool Bidirectional = Defaults.Bidirectional;
    /// <summary>Bidirectional only: how the two directions combine (default <see cref="DirectionMerge.Concat"/>).</summary>
    public DirectionMerge? Merge;
    /// <summary>Token input only: the embedding dimension (default 128).</summary>
    public int? EmbeddingSize;
    /// <summary>Pooling over time (default <see cref="PoolingMode.MaxMean"/>); <see cref="PoolingMode.Attention"/> also outputs per-step weights (column <c>AttentionWeights</c>).</summary>
    public PoolingMode Pooling = Defaults.Pooling;
    /// <summary><see cref="PoolingMode.Attention"/> only: the attention layer's size (default 64).</summary>
    public int? AttentionSize;
    /// <summary>Dropout on embeddings, between recurrent layers and before the output layer, in [0, 1) (default 0.5).</summary>
    public float Dropout = Defaults.Dropout;

    /// <summary>The optimiser (default <see cref="SequenceOptimizer.Adam"/>).</summary>
    public SequenceOptimizer Optimizer = Defaults.Optimizer;
    /// <summary>Initial learning rate (default 0.002).</summary>
    public float LearningRate = Defaults.LearningRate;
    /// <summary>Multiplies the learning rate after each epoch, in (0, 1] (default 1: constant).</summary>
    public float LearningRateDecay = Defaults.LearningRateDecay;
    /// <summary><see cref="SequenceOptimizer.Sgd"/> only: momentum, in [0, 1) (default 0.9).</summary>
    public float? Momentum;
    /// <summary><see cref="SequenceOptimizer.Sgd"/> only: Nesterov momentum (default false).</summary>
    public bool? Nesterov;
    /// <summary>Weight decay: L2 for Adam and SGD, decoupled for AdamW (default 0).</summary>
    public float WeightDecay = Defaults.WeightDecay;
    /// <summary>Sequences per batch (default 64).</summary>
    public int BatchSize = Defaults.BatchSize;
    /// <summary>Passes over the training data (default 5).</summary>
    public int Epochs = Defaults.Epochs;
    /// <summary>Clip gradients to this global norm; 0 = off (default 1).</summary>
    public float GradientClipNorm = Defaults.GradientClipNorm;
    /// <summary>Clamp each gradient value to ±this; 0 = off (default 0).</summary>
    public float GradientClipValue = Defaults.GradientClipValue;
    /// <summary>Decay of a moving average of the weights used for validation and as the result, in [0, 1); 0 = off (default 0; about 0.998 steadies a noisy plateau).</summary>
    public float WeightAveraging = Defaults.WeightAveraging;
    /// <summary>Recurrent weight initialisation (default <see cref="WeightInitializer.XavierOrthogonal"/>).</summary>
    public WeightInitializer Initializer = Defaults.Initializer;
    /// <summary><see cref="SequenceCell.Lstm"/> and <see cref="SequenceCell.PeepholeLstm"/> only: start the forget-gate bias at 1 (default true).</summary>
    public bool? UnitForgetBias;
    /// <summary>Seed of initialisation, the validation hold-out, shuffling and dropout; null takes one from the <see cref="MLContext"/>.</summary>
    public int? Seed;
    /// <summary>Longest sequence used, in training and in prediction; longer ones are cut (default 400).</summary>
    public int MaxLength = Defaults.MaxLength;
    /// <summary>When cutting, keep a sequence's end instead of its start (default false).</summary>
    public bool KeepEnd = Defaults.KeepEnd;

    /// <summary>
    /// Share of the training rows held out inside <c>Fit</c> as validation data, in [0, 1) (default 0): chosen at
    /// random from <see cref="Seed"/>, scored after every epoch; training then stops early and keeps the best
    /// epoch's weights. The alternative to passing validation data to <c>Fit(trainData, validationData)</c>.
    /// </summary>
    public float ValidationFraction = Defaults.ValidationFraction;
    /// <summary>Epochs without improvement (on the validation data, else the training loss) before stopping; 0 = never (default 2).</summary>
    public int EarlyStoppingPatience = Defaults.EarlyStoppingPatience;
    /// <summary>Threads this trainer's kernels may use; 0 = one per core (default 0).</summary>
    public int NumberOfThreads = Defaults.NumberOfThreads;
    /// <summary>Receives progress (epoch, batch, loss, sequences per second, time left) during training.</summary>
    public IProgress<SequenceTrainingProgress>? Progress;
    /// <summary>Stops training early; the best weights so far are kept.</summary>
    public CancellationToken CancellationToken;

    internal SequenceOptions Clone() => (SequenceOptions)MemberwiseClone();

    /// <summary>
    /// Throws when a setting is out of range or does not apply to the chosen cell, pooling, direction or optimiser,
    /// naming it as the user wrote it: <paramref name="camelCase"/> for the simple overloads' parameters.
    /// </summary>
    internal void Validate(bool camelCase = false)
    {
        string N(string field) => camelCase ? char.ToLowerInvariant(field[0]) + field[1..] : field;
        ArgumentOutOfRangeException Range(string field, object? value, string rule) => new(N(field), value, $"{N(field)} {rule}.");
        ArgumentException NotApplicable(string field, string appliesTo, string chosen) =>
            new($"{N(field)} applies to {appliesTo}; this trainer has {chosen}. Leave {N(field)} unset.", N(field));
        static bool Finite(float x) => float.IsFinite(x);

        if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException($"Set {N(nameof(LabelColumnName))}.", N(nameof(LabelColumnName)));
        if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException($"Set {N(nameof(FeatureColumnName))}.", N(nameof(FeatureColumnName)));
        if (FeaturesPerStep is < 1) throw Range(nameof(FeaturesPerStep), FeaturesPerStep, "must be at least 1");

        if (!Enum.IsDefined(Cell)) throw Range(nameof(Cell), Cell, "is not a SequenceCell");
        if (RnnActivation is { } activation)
        {
            if (Cell != SequenceCell.Rnn) throw NotApplicable(nameof(RnnActivation), "Cell = Rnn", $"Cell = {Cell}");
            if (!Enum.IsDefined(activation)) throw Range(nameof(RnnActivation), activation, "must be Tanh or Relu");
        }
        if (Peepholes is { } peepholes)
        {
            if (Cell is not (SequenceCell.PeepholeLstm or SequenceCell.CoupledLstm))
                throw NotApplicable(nameof(Peepholes), "Cell = PeepholeLstm or CoupledLstm", $"Cell = {Cell}");
            if ((peepholes & ~PeepholeConnections.All) != 0) throw Range(nameof(Peepholes), peepholes, "must combine Input, Forget and Output");
            if (Cell == SequenceCell.PeepholeLstm && peepholes == PeepholeConnections.None)
                throw Range(nameof(Peepholes), peepholes, "needs at least one gate for Cell = PeepholeLstm (for none, use Cell = Lstm)");
            if (Cell == SequenceCell.CoupledLstm && peepholes.HasFlag(PeepholeConnections.Forget))
                throw Range(nameof(Peepholes), peepholes, "cannot include Forget for Cell = CoupledLstm, which computes f = 1 − i and has no forget gate");
        }
        if (GruReset is { } reset)
        {
            if (Cell != SequenceCell.Gru) throw NotApplicable(nameof(GruReset), "Cell = Gru", $"Cell = {Cell}");
            if (!Enum.IsDefined(reset)) throw Range(nameof(GruReset), reset, "is not a GruResetMode");
        }
        if (UnitForgetBias is not null && Cell is not (SequenceCell.Lstm or SequenceCell.PeepholeLstm))
            throw NotApplicable(nameof(UnitForgetBias), "Cell = Lstm or PeepholeLstm (cells with a forget gate)", $"Cell = {Cell}");
        if (HiddenSize < 1) throw Range(nameof(HiddenSize), HiddenSize, "must be at least 1");
        if (Layers < 1) throw Range(nameof(Layers), Layers, "must be at least 1");
        if (Merge is { } merge)
        {
            if (!Bidirectional) throw NotApplicable(nameof(Merge), "Bidirectional = true", "Bidirectional = false");
            if (!Enum.IsDefined(merge)) throw Range(nameof(Merge), merge, "is not a DirectionMerge");
        }
        if (EmbeddingSize is < 1) throw Range(nameof(EmbeddingSize), EmbeddingSize, "must be at least 1");
        if (!Enum.IsDefined(Pooling)) throw Range(nameof(Pooling), Pooling, "is not a PoolingMode");
        if (AttentionSize is { } attention)
        {
            if (Pooling != PoolingMode.Attention) throw NotApplicable(nameof(AttentionSize), "Pooling = Attention", $"Pooling = {Pooling}");
            if (attention < 1) throw Range(nameof(AttentionSize), attention, "must be at least 1");
        }
        if (!(Dropout >= 0 && Dropout < 1)) throw Range(nameof(Dropout), Dropout, "must be in [0, 1)");

        if (!Enum.IsDefined(Optimizer)) throw Range(nameof(Optimizer), Optimizer, "is not a SequenceOptimizer");
        if (!(LearningRate > 0) || !Finite(LearningRate)) throw Range(nameof(LearningRate), LearningRate, "must be positive and finite");
        if (!(LearningRateDecay > 0 && LearningRateDecay <= 1)) throw Range(nameof(LearningRateDecay), LearningRateDecay, "must be in (0, 1]");
        if (Momentum is { } momentum)
        {
            if (Optimizer != SequenceOptimizer.Sgd) throw NotApplicable(nameof(Momentum), "Optimizer = Sgd", $"Optimizer = {Optimizer}");
            if (!(momentum >= 0 && momentum < 1)) throw Range(nameof(Momentum), momentum, "must be in [0, 1)");
        }
        if (Nesterov is not null && Optimizer != SequenceOptimizer.Sgd) throw NotApplicable(nameof(Nesterov), "Optimizer = Sgd", $"Optimizer = {Optimizer}");
        if (Nesterov == true && Momentum == 0) throw Range(nameof(Nesterov), Nesterov, "needs a positive Momentum");
        if (!(WeightDecay >= 0) || !Finite(WeightDecay)) throw Range(nameof(WeightDecay), WeightDecay, "must be non-negative and finite");
        if (BatchSize < 1) throw Range(nameof(BatchSize), BatchSize, "must be at least 1");
        if (Epochs < 1) throw Range(nameof(Epochs), Epochs, "must be at least 1");
        if (!(GradientClipNorm >= 0) || !Finite(GradientClipNorm)) throw Range(nameof(GradientClipNorm), GradientClipNorm, "must be non-negative and finite (0 = off)");
        if (!(GradientClipValue >= 0) || !Finite(GradientClipValue)) throw Range(nameof(GradientClipValue), GradientClipValue, "must be non-negative and finite (0 = off)");
        if (!(WeightAveraging >= 0 && WeightAveraging < 1)) throw Range(nameof(WeightAveraging), WeightAveraging, "must be in [0, 1)");
        if (!Enum.IsDefined(Initializer)) throw Range(nameof(Initializer), Initializer, "is not a WeightInitializer");
        if (MaxLength < 1) throw Range(nameof(MaxLength), MaxLength, "must be at least 1");
        if (!(ValidationFraction >= 0 && ValidationFraction < 1)) throw Range(nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        if (EarlyStoppingPatience < 0) throw Range(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative (0 = never stop early)");
        if (NumberOfThreads < 0) throw Range(nameof(NumberOfThreads), NumberOfThreads, "must be non-negative (0 = one per core)");
    }
}
