using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;

namespace DeepSeq.MLNet;

/// <summary>The ML.NET surface's settings and reports, to and from DeepSeq.Core's (which users never need to import).</summary>
internal static class CoreMapping
{
    public static SequenceTask ToCore(SequenceTaskKind task) => task switch
    {
        SequenceTaskKind.BinaryClassification => SequenceTask.BinaryClassification,
        SequenceTaskKind.MulticlassClassification => SequenceTask.MulticlassClassification,
        _ => SequenceTask.Regression,
    };

    public static SequenceTaskKind FromCore(SequenceTask task) => task switch
    {
        SequenceTask.BinaryClassification => SequenceTaskKind.BinaryClassification,
        SequenceTask.MulticlassClassification => SequenceTaskKind.MulticlassClassification,
        _ => SequenceTaskKind.Regression,
    };

    /// <summary>The cell with every unset variant setting at its default.</summary>
    public static RecurrentCellSpec Cell(SequenceOptions o) => o.Cell switch
    {
        SequenceCell.Rnn => new RecurrentCellSpec(RecurrentCellKind.Rnn)
        {
            RnnActivation = (o.RnnActivation ?? SequenceOptions.Defaults.RnnActivation) == RnnNonlinearity.Relu ? ActivationKind.Relu : ActivationKind.Tanh,
        },
        SequenceCell.Lstm => new RecurrentCellSpec(RecurrentCellKind.Lstm),
        SequenceCell.PeepholeLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = (PeepholeGates)(o.Peepholes ?? SequenceOptions.Defaults.Peepholes) },
        SequenceCell.CoupledLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true, Peepholes = (PeepholeGates)(o.Peepholes ?? PeepholeConnections.None) },
        _ => new RecurrentCellSpec(RecurrentCellKind.Gru)
        {
            GruReset = (o.GruReset ?? SequenceOptions.Defaults.GruReset) == GruResetMode.BeforeRecurrentMatmul ? GruResetPlacement.BeforeRecurrentMatmul : GruResetPlacement.AfterRecurrentMatmul,
        },
    };

    public static PoolingKind Pooling(PoolingMode p) => p switch
    {
        PoolingMode.Last => PoolingKind.Last,
        PoolingMode.Mean => PoolingKind.Mean,
        PoolingMode.Max => PoolingKind.Max,
        PoolingMode.MaxMean => PoolingKind.MaxMean,
        _ => PoolingKind.Attention,
    };

    static PoolingMode Pooling(PoolingKind p) => p switch
    {
        PoolingKind.Last => PoolingMode.Last,
        PoolingKind.Mean => PoolingMode.Mean,
        PoolingKind.Max => PoolingMode.Max,
        PoolingKind.MaxMean => PoolingMode.MaxMean,
        _ => PoolingMode.Attention,
    };

    public static BidirectionalMerge Merge(DirectionMerge m) => m switch
    {
        DirectionMerge.Sum => BidirectionalMerge.Sum,
        DirectionMerge.Average => BidirectionalMerge.Average,
        _ => BidirectionalMerge.Concat,
    };

    static DirectionMerge Merge(BidirectionalMerge m) => m switch
    {
        BidirectionalMerge.Sum => DirectionMerge.Sum,
        BidirectionalMerge.Average => DirectionMerge.Average,
        _ => DirectionMerge.Concat,
    };

    public static RecurrentInitializer Initializer(WeightInitializer i) => i == WeightInitializer.Uniform ? RecurrentInitializer.Uniform : RecurrentInitializer.XavierOrthogonal;

    public static SequenceTrainingOptions Training(SequenceOptions o, int seed, IProgress<TrainingProgress>? progress) => new()
    {
        Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, LearningRateDecay = o.LearningRateDecay,
        Optimizer = o.Optimizer switch { SequenceOptimizer.AdamW => OptimizerKind.AdamW, SequenceOptimizer.Sgd => OptimizerKind.Sgd, _ => OptimizerKind.Adam },
        Momentum = o.Momentum ?? SequenceOptions.Defaults.Momentum, Nesterov = o.Nesterov ?? SequenceOptions.Defaults.Nesterov,
        WeightDecay = o.WeightDecay, GradientClipNorm = o.GradientClipNorm, GradientClipValue = o.GradientClipValue, MaxLength = o.MaxLength,
        KeepEnd = o.KeepEnd, EarlyStoppingPatience = o.EarlyStoppingPatience, WeightAveraging = o.WeightAveraging, NumberOfThreads = o.NumberOfThreads,
        Seed = seed, Progress = progress, CancellationToken = o.CancellationToken,
    };

    public static SequenceTrainingProgress Progress(TrainingProgress p) =>
        new(p.Epoch, p.Epochs, p.Batch, p.Batches, p.Loss, p.SequencesPerSecond, p.Elapsed, p.Remaining, p.ValidationLoss, p.ValidationMetric);

    public static SequenceTrainingReport Report(TrainingReport r) =>
        new([.. r.Epochs.Select(e => new SequenceEpochSummary(e.Epoch, e.TrainLoss, e.ValidationLoss, e.ValidationMetric, e.Duration))],
            r.BestEpoch, r.Cancelled, r.Divergence, r.Duration, r.Warnings);

    /// <summary>A saved model as the surface shows it.</summary>
    public static TrainedSequenceModel Model(SavedSequenceModel saved)
    {
        var c = saved.Config;
        var cell = c.Cell.Kind switch
        {
            RecurrentCellKind.Rnn => SequenceCell.Rnn,
            RecurrentCellKind.Gru => SequenceCell.Gru,
            _ when c.Cell.CoupledInputForget => SequenceCell.CoupledLstm,
            _ when c.Cell.Peepholes != PeepholeGates.None => SequenceCell.PeepholeLstm,
            _ => SequenceCell.Lstm,
        };
        bool tokens = c.VocabularySize > 0;
        var architecture = new SequenceArchitecture
        {
            Cell = cell,
            RnnActivation = cell == SequenceCell.Rnn ? (c.Cell.RnnActivation == ActivationKind.Relu ? RnnNonlinearity.Relu : RnnNonlinearity.Tanh) : null,
            Peepholes = cell is SequenceCell.PeepholeLstm or SequenceCell.CoupledLstm ? (PeepholeConnections)c.Cell.Peepholes : null,
            GruReset = cell == SequenceCell.Gru ? (c.Cell.GruReset == GruResetPlacement.BeforeRecurrentMatmul ? GruResetMode.BeforeRecurrentMatmul : GruResetMode.AfterRecurrentMatmul) : null,
            HiddenSize = c.HiddenSize, Layers = c.Layers, Bidirectional = c.Bidirectional, Merge = c.Bidirectional ? Merge(c.Merge) : null,
            Pooling = Pooling(c.Pooling), AttentionSize = c.Pooling == PoolingKind.Attention ? c.AttentionSize : null, Dropout = c.Dropout,
            VocabularySize = tokens ? c.VocabularySize : null, EmbeddingSize = tokens ? c.EmbeddingSize : null, FeaturesPerStep = tokens ? null : saved.FeaturesPerStep,
            MaxLength = saved.MaxLength, KeepEnd = saved.KeepEnd, Outputs = c.Outputs,
        };
        var weights = saved.Weights.ToDictionary(kv => kv.Key, kv => (ReadOnlyMemory<float>)kv.Value);
        return new TrainedSequenceModel(FromCore(saved.Task), architecture, saved.ClassNames, weights, saved.Report is { } r ? Report(r) : null);
    }
}
