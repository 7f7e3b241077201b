using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;
using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>The recurrent cells a sequence trainer can use.</summary>
public enum SequenceCell
{
    /// <summary>Elman RNN (tanh by default; see <see cref="SequenceOptions.RnnActivation"/>).</summary>
    Rnn,
    /// <summary>LSTM, PyTorch's equations.</summary>
    Lstm,
    /// <summary>LSTM with peephole connections on <see cref="SequenceOptions.Peepholes"/>.</summary>
    PeepholeLstm,
    /// <summary>LSTM with a coupled input–forget gate (f = 1 − i).</summary>
    CoupledLstm,
    /// <summary>GRU; reset placement in <see cref="SequenceOptions.GruReset"/>.</summary>
    Gru,
}

/// <summary>
/// Settings shared by the DeepSeq sequence trainers. Defaults (in <see cref="Defaults"/>) are those of the
/// IMDB sentiment model: a bidirectional LSTM with max + mean pooling and dropout 0.5.
/// </summary>
public abstract class SequenceOptions
{
    /// <summary>Default values.</summary>
    public static class Defaults
    {
        /// <summary>Bidirectional LSTM.</summary>
        public const SequenceCell Cell = SequenceCell.Lstm;
        /// <summary>Hidden units per direction.</summary>
        public const int HiddenSize = 128;
        /// <summary>Stacked layers.</summary>
        public const int Layers = 1;
        /// <summary>Token embedding dimension.</summary>
        public const int EmbeddingSize = 128;
        /// <summary>Pooling over time.</summary>
        public const PoolingKind Pooling = PoolingKind.MaxMean;
        /// <summary>Dropout on embeddings, between layers and before the output layer.</summary>
        public const float Dropout = 0.5f;
        /// <summary>Epochs.</summary>
        public const int Epochs = 5;
        /// <summary>Batch size.</summary>
        public const int BatchSize = 64;
        /// <summary>Adam's learning rate.</summary>
        public const float LearningRate = 2e-3f;
        /// <summary>Global-norm gradient clipping.</summary>
        public const float GradientClipNorm = 1f;
        /// <summary>Longest sequence used (tokens or steps).</summary>
        public const int MaxLength = 400;
    }

    /// <summary>Name of the label column.</summary>
    public string LabelColumnName = "Label";
    /// <summary>
    /// Name of the sequence column: token ids as a vector of keys (from <c>TokenizeIntoWords</c> + <c>MapValueToKey</c>,
    /// or <see cref="DeepSeqCatalog.TokenizeText"/>), or a vector of <see cref="Single"/> holding T × <see cref="FeaturesPerStep"/> values.
    /// </summary>
    public string FeatureColumnName = "Features";
    /// <summary>Features per time step of a numeric sequence column (ignored for tokens).</summary>
    public int FeaturesPerStep = 1;

    /// <summary>The recurrent cell.</summary>
    public SequenceCell Cell = Defaults.Cell;
    /// <summary>RNN non-linearity: Tanh or Relu.</summary>
    public ActivationKind RnnActivation = ActivationKind.Tanh;
    /// <summary>Gates with peepholes for <see cref="SequenceCell.PeepholeLstm"/> (default all; the output gate reads the new cell state, as in ONNX).</summary>
    public PeepholeGates Peepholes = PeepholeGates.All;
    /// <summary>Where the GRU applies its reset gate (default after the recurrent matmul, as PyTorch).</summary>
    public GruResetPlacement GruReset = GruResetPlacement.AfterRecurrentMatmul;
    /// <summary>Hidden units per direction.</summary>
    public int HiddenSize = Defaults.HiddenSize;
    /// <summary>Stacked recurrent layers.</summary>
    public int Layers = Defaults.Layers;
    /// <summary>Read each sequence in both directions.</summary>
    public bool Bidirectional = true;
    /// <summary>How the two directions combine.</summary>
    public BidirectionalMerge Merge = BidirectionalMerge.Concat;
    /// <summary>Token embedding dimension.</summary>
    public int EmbeddingSize = Defaults.EmbeddingSize;
    /// <summary>Pooling over time; <see cref="PoolingKind.Attention"/> also outputs per-token weights (column <c>AttentionWeights</c>).</summary>
    public PoolingKind Pooling = Defaults.Pooling;
    /// <summary>Size of the attention layer for attention pooling.</summary>
    public int AttentionSize = 64;
    /// <summary>Dropout on embeddings, between recurrent layers and before the output layer.</summary>
    public float Dropout = Defaults.Dropout;

    /// <summary>The optimiser.</summary>
    public OptimizerKind Optimizer = OptimizerKind.Adam;
    /// <summary>Initial learning rate.</summary>
    public float LearningRate = Defaults.LearningRate;
    /// <summary>Multiplies the learning rate after each epoch (1 = constant).</summary>
    public float LearningRateDecay = 1f;
    /// <summary>Weight decay (L2 for Adam and SGD, decoupled for AdamW).</summary>
    public float WeightDecay;
    /// <summary>Sequences per batch.</summary>
    public int BatchSize = Defaults.BatchSize;
    /// <summary>Passes over the training data.</summary>
    public int Epochs = Defaults.Epochs;
    /// <summary>Clip gradients to this global norm (0 = off).</summary>
    public float GradientClipNorm = Defaults.GradientClipNorm;
    /// <summary>Clamp each gradient value to ±this (0 = off).</summary>
    public float GradientClipValue;
    /// <summary>Decay of a moving average of the weights used for validation and as the result (0 = off; about 0.998 steadies a noisy plateau).</summary>
    public float WeightAveraging;
    /// <summary>Recurrent weight initialisation.</summary>
    public RecurrentInitializer Initializer = RecurrentInitializer.XavierOrthogonal;
    /// <summary>Start the LSTM forget-gate bias at 1.</summary>
    public bool UnitForgetBias = true;
    /// <summary>Seed of initialisation, shuffling and dropout; null takes one from the <see cref="MLContext"/>.</summary>
    public int? Seed;
    /// <summary>Longest sequence used; longer ones are cut, in training and in prediction.</summary>
    public int MaxLength = Defaults.MaxLength;
    /// <summary>When cutting, keep a sequence's end instead of its start.</summary>
    public bool KeepEnd;

    /// <summary>Validation data, scored after every epoch; with it, training stops early and keeps the best epoch's weights.</summary>
    public IDataView? ValidationData;
    /// <summary>Epochs without improvement on <see cref="ValidationData"/> before stopping (0 = never).</summary>
    public int EarlyStoppingPatience = 2;
    /// <summary>Receives progress (epoch, batch, loss, sequences per second, time left) during training.</summary>
    public IProgress<TrainingProgress>? Progress;
    /// <summary>Stops training early; the best weights so far are kept.</summary>
    public CancellationToken CancellationToken;

    internal RecurrentCellSpec CellSpec() => Cell switch
    {
        SequenceCell.Rnn => new RecurrentCellSpec(RecurrentCellKind.Rnn) { RnnActivation = RnnActivation },
        SequenceCell.Lstm => new RecurrentCellSpec(RecurrentCellKind.Lstm),
        SequenceCell.PeepholeLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = Peepholes },
        SequenceCell.CoupledLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true },
        SequenceCell.Gru => new RecurrentCellSpec(RecurrentCellKind.Gru) { GruReset = GruReset },
        _ => throw new ArgumentOutOfRangeException(nameof(Cell), Cell, "Unknown cell."),
    };

    internal SequenceTrainingOptions TrainingOptions(int seed, IProgress<TrainingProgress>? progress) => new()
    {
        Epochs = Epochs, BatchSize = BatchSize, Optimizer = Optimizer, LearningRate = LearningRate, LearningRateDecay = LearningRateDecay,
        WeightDecay = WeightDecay, GradientClipNorm = GradientClipNorm, GradientClipValue = GradientClipValue, MaxLength = MaxLength,
        KeepEnd = KeepEnd, EarlyStoppingPatience = EarlyStoppingPatience, WeightAveraging = WeightAveraging, Seed = seed, Progress = progress, CancellationToken = CancellationToken,
    };

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException("Set LabelColumnName.", nameof(LabelColumnName));
        if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException("Set FeatureColumnName.", nameof(FeatureColumnName));
        if (FeaturesPerStep < 1) throw new ArgumentOutOfRangeException(nameof(FeaturesPerStep), FeaturesPerStep, "Must be at least 1.");
        if (Cell == SequenceCell.PeepholeLstm && Peepholes == PeepholeGates.None)
            throw new ArgumentException("PeepholeLstm needs at least one gate in Peepholes.", nameof(Peepholes));
        TrainingOptions(0, null).Validate();
    }
}
