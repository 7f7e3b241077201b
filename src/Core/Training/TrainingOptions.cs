using System.Globalization;

namespace DeepSeq.Core.Training;

/// <summary>The optimisers available to the trainer.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with L2 weight decay added to the gradient.</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
    /// <summary>SGD with momentum.</summary>
    Sgd,
}

/// <summary>What <see cref="Trainer.Train{TBatch}"/> does with an existing checkpoint file at <see cref="TrainingOptions.CheckpointPath"/>.</summary>
public enum CheckpointResume
{
    /// <summary>Resume from the file when it exists (refusing one written for another model or other settings); start afresh when it does not.</summary>
    Auto,
    /// <summary>Ignore an existing file and start afresh (the file is overwritten by the next checkpoint).</summary>
    Restart,
    /// <summary>Resume from the file; throw when it does not exist.</summary>
    Require,
}

/// <summary>Settings of <see cref="Trainer.Train{TBatch}"/>, for any model and task.</summary>
public record TrainingOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>The optimiser.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary>Base step size (the peak for <see cref="LearningRateSchedule.OneCycle"/>); <see cref="Schedule"/> shapes it over training.</summary>
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>Multiplies the learning rate after every epoch (1 = constant); used when <see cref="Schedule"/> is null.</summary>
    public float LearningRateDecay { get; init; } = 1f;
    /// <summary>How the learning rate moves over training (cosine, one-cycle, warm-up…); null: per-epoch decay by <see cref="LearningRateDecay"/>.</summary>
    public LearningRateSchedule? Schedule { get; init; }
    /// <summary>Momentum for SGD.</summary>
    public float Momentum { get; init; } = 0.9f;
    /// <summary>Nesterov momentum for SGD.</summary>
    public bool Nesterov { get; init; }
    /// <summary>Threads the kernels may use while training (0 = one per core). Results do not depend on it.</summary>
    public int NumberOfThreads { get; init; }
    /// <summary>Weight decay λ (L2 for Adam and SGD, decoupled for AdamW).</summary>
    public float WeightDecay { get; init; }
    /// <summary>Clip gradients to this global L2 norm; 0 turns it off.</summary>
    public float GradientClipNorm { get; init; } = 1f;
    /// <summary>Clamp each gradient value to ±this; 0 turns it off.</summary>
    public float GradientClipValue { get; init; }
    /// <summary>
    /// Decay of an exponential moving average of the parameters (Polyak averaging), updated after every step and
    /// used for validation and as the result; 0 turns it off. Around 0.998 smooths the epoch-to-epoch swings
    /// of a model that is still moving (the effective decay starts lower, as TensorFlow's moving average does).
    /// Non-trainable state (e.g. running statistics) is not averaged: the current state goes with the average.
    /// </summary>
    public float WeightAveraging { get; init; }
    /// <summary>Stop after this many epochs without a better validation metric (0 = never); the best weights are restored.</summary>
    public int EarlyStoppingPatience { get; init; } = 2;
    /// <summary>
    /// Batch examples of similar length (<see cref="ITrainingTask{TBatch}.Length"/>): the shuffled examples are cut
    /// into pools of 50 batches, each pool sorted by length and split into batches, and the batches shuffled.
    /// Off: batches are consecutive runs of the shuffled examples.
    /// </summary>
    public bool LengthBucketing { get; init; } = true;
    /// <summary>Seed of the batch order (one generator per epoch) and of the model's random streams (reseeded before every step).</summary>
    public int Seed { get; init; }
    /// <summary>Receives progress during training: about twice a second, and once after every epoch (then with <c>Batch == Batches</c> and the validation figures).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Stops training between steps; the best weights so far are kept (and, with a checkpoint file, the run can be resumed).</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>
    /// The checkpoint file (null: none). Written atomically (a temporary file beside it, then a rename) at the
    /// times set by <see cref="CheckpointEveryEpochs"/>, <see cref="CheckpointEveryMinutes"/> and
    /// <see cref="CheckpointEverySteps"/>, when training is cancelled, and when it ends (then marked finished: a
    /// later call with the same settings loads the result without training). See <see cref="Resume"/>.
    /// </summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Write a checkpoint after every this many epochs (0 = not by epochs).</summary>
    public int CheckpointEveryEpochs { get; init; } = 1;
    /// <summary>Write a checkpoint when this many minutes (fractions allowed) have passed since the last one; checked between steps (0 = not by time).</summary>
    public double CheckpointEveryMinutes { get; init; }
    /// <summary>Write a checkpoint after every this many steps (0 = not by steps).</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary>What to do with an existing checkpoint file.</summary>
    public CheckpointResume Resume { get; init; } = CheckpointResume.Auto;

    /// <summary>
    /// Gradient-flow diagnostics (null: off, the default, at no cost): on sampled batches, the norm of dL/dh at every
    /// step back in time, the per-step gain η and the effective memory of every recurrent layer, and the largest
    /// gradient norm of any step; in <see cref="TrainingReport.GradientFlow"/> and <see cref="TrainingProgress.GradientFlow"/>.
    /// Recording only reads gradients, so it does not change training; after a resume it covers the resumed part.
    /// </summary>
    public Diagnostics.GradientFlowOptions? GradientFlow { get; init; }

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public virtual void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Must be at least 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Must be at least 1.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Must be positive and finite.");
        if (!(LearningRateDecay > 0 && LearningRateDecay <= 1)) throw new ArgumentOutOfRangeException(nameof(LearningRateDecay), LearningRateDecay, "Must be in (0, 1].");
        if (Schedule is not null && LearningRateDecay != 1f)
            throw new ArgumentException($"Set either {nameof(LearningRateDecay)} or {nameof(Schedule)} (e.g. LearningRateSchedule.EpochDecay({LearningRateDecay.ToString(CultureInfo.InvariantCulture)})), not both.");
        Schedule?.Validate();
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Must be in [0, 1).");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "Must be non-negative.");
        if (!(GradientClipNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "Must be non-negative.");
        if (!(GradientClipValue >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipValue), GradientClipValue, "Must be non-negative.");
        if (NumberOfThreads < 0) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, "Must be non-negative (0 = one per core).");
        if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "Must be non-negative.");
        if (!(WeightAveraging >= 0 && WeightAveraging < 1)) throw new ArgumentOutOfRangeException(nameof(WeightAveraging), WeightAveraging, "Must be in [0, 1).");
        if (CheckpointPath is not null && string.IsNullOrWhiteSpace(CheckpointPath)) throw new ArgumentException("The checkpoint path is empty.", nameof(CheckpointPath));
        if (CheckpointEveryEpochs < 0) throw new ArgumentOutOfRangeException(nameof(CheckpointEveryEpochs), CheckpointEveryEpochs, "Must be non-negative.");
        if (!(CheckpointEveryMinutes >= 0) || double.IsInfinity(CheckpointEveryMinutes)) throw new ArgumentOutOfRangeException(nameof(CheckpointEveryMinutes), CheckpointEveryMinutes, "Must be non-negative and finite.");
        if (CheckpointEverySteps < 0) throw new ArgumentOutOfRangeException(nameof(CheckpointEverySteps), CheckpointEverySteps, "Must be non-negative.");
        if (!Enum.IsDefined(Resume)) throw new ArgumentOutOfRangeException(nameof(Resume), Resume, "Unknown resume mode.");
        GradientFlow?.Validate();
    }

    /// <summary>
    /// The settings that fix the course of training, by name, as invariant text: a checkpoint resumes only under
    /// the same ones. Progress, cancellation, thread count and checkpoint timing are not among them.
    /// </summary>
    public IReadOnlyDictionary<string, string> TrajectorySettings()
    {
        var s = new SortedDictionary<string, string>(StringComparer.Ordinal);
        AddTrajectorySettings(s);
        return s;
    }

    /// <summary>Adds the settings that fix the course of training (see <see cref="TrajectorySettings"/>); a derived record adds its own.</summary>
    protected virtual void AddTrajectorySettings(IDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        settings[nameof(Epochs)] = Epochs.ToString(CultureInfo.InvariantCulture);
        settings[nameof(BatchSize)] = BatchSize.ToString(CultureInfo.InvariantCulture);
        settings[nameof(Optimizer)] = Optimizer.ToString();
        settings[nameof(LearningRate)] = F(LearningRate);
        settings[nameof(Schedule)] = (Schedule ?? LearningRateSchedule.EpochDecay(LearningRateDecay)).Describe();
        settings[nameof(Momentum)] = Optimizer == OptimizerKind.Sgd ? F(Momentum) : "-";
        settings[nameof(Nesterov)] = Optimizer == OptimizerKind.Sgd ? Nesterov.ToString() : "-";
        settings[nameof(WeightDecay)] = F(WeightDecay);
        settings[nameof(GradientClipNorm)] = F(GradientClipNorm);
        settings[nameof(GradientClipValue)] = F(GradientClipValue);
        settings[nameof(WeightAveraging)] = F(WeightAveraging);
        settings[nameof(EarlyStoppingPatience)] = EarlyStoppingPatience.ToString(CultureInfo.InvariantCulture);
        settings[nameof(LengthBucketing)] = LengthBucketing.ToString();
        settings[nameof(Seed)] = Seed.ToString(CultureInfo.InvariantCulture);
    }
}

/// <summary>A progress report.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean training loss so far in this epoch.</param>
/// <param name="SequencesPerSecond">Training throughput in this epoch (examples per second).</param>
/// <param name="Elapsed">Time since training started.</param>
/// <param name="Remaining">Estimated time left for the planned epochs.</param>
/// <param name="ValidationLoss">Validation loss at the end of an epoch, else null.</param>
/// <param name="ValidationMetric">Validation metric (accuracy, or −MSE) at the end of an epoch, else null.</param>
public sealed record TrainingProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double SequencesPerSecond,
    TimeSpan Elapsed, TimeSpan Remaining, double? ValidationLoss, double? ValidationMetric)
{
    /// <summary>The latest gradient-flow sample when <see cref="TrainingOptions.GradientFlow"/> is on, else null.</summary>
    public Diagnostics.GradientFlowSample? GradientFlow { get; init; }
}

/// <summary>One epoch's figures.</summary>
public sealed record EpochSummary(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationMetric, TimeSpan Duration);

/// <summary>What training did.</summary>
/// <param name="Epochs">Per-epoch figures.</param>
/// <param name="BestEpoch">The epoch whose weights were kept (0: none completed).</param>
/// <param name="Cancelled">True when the cancellation token stopped training.</param>
/// <param name="Divergence">Why training stopped on a non-finite loss or gradient, or null.</param>
/// <param name="Duration">Wall-clock time, including the runs before a resume.</param>
/// <param name="Warnings">Signs of a bad run that did not stop it (e.g. a loss that ended an epoch higher than it started).</param>
public sealed record TrainingReport(IReadOnlyList<EpochSummary> Epochs, int BestEpoch, bool Cancelled, string? Divergence, TimeSpan Duration,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Steps taken in all, across resumes.</summary>
    public long Steps { get; init; }
    /// <summary>The step count of the checkpoint this call resumed from, or null when it started afresh.</summary>
    public long? ResumedAtStep { get; init; }
    /// <summary>
    /// The gradient-flow diagnostics when <see cref="TrainingOptions.GradientFlow"/> was on, else null. Kept in memory
    /// only: a saved model's report does not carry them (hundreds of per-step curves would outweigh small models).
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Diagnostics.GradientFlowReport? GradientFlow { get; init; }
}
