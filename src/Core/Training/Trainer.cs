using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using DeepSeq.Core.Diagnostics;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Training;

/// <summary>A validation pass's figures.</summary>
/// <param name="Loss">Mean loss over the validation set.</param>
/// <param name="Metric">The figure early stopping and best-weights selection follow; higher is better (e.g. accuracy, or −MSE).</param>
public readonly record struct ValidationResult(double Loss, double Metric);

/// <summary>
/// What <see cref="Trainer"/> needs to train one model on one data set with one loss. The trainer owns the
/// loop (batch order, optimiser, clipping, schedules, averaging, validation, checkpoints); the task owns the
/// data layout, the forward pass, the loss and the backward pass.
/// </summary>
/// <typeparam name="TBatch">The task's batch type, created once and refilled every step.</typeparam>
public interface ITrainingTask<TBatch>
{
    /// <summary>
    /// The model: its <see cref="Module.Parameters"/> are optimised, its tensors (parameters and state) are
    /// snapshotted and checkpointed by name, and <see cref="Module.Reseed"/> restarts its random streams before every step.
    /// </summary>
    Module Model { get; }

    /// <summary>Training examples (indices 0 … Count − 1).</summary>
    int Count { get; }

    /// <summary>The size of example <paramref name="index"/> for length bucketing (e.g. its steps after cutting); a constant when examples have one size.</summary>
    int Length(int index) => 1;

    /// <summary>A batch object that <see cref="Fill"/> refills every step.</summary>
    TBatch CreateBatch();

    /// <summary>Fills <paramref name="batch"/> with the examples <paramref name="indices"/>.</summary>
    void Fill(TBatch batch, int[] indices);

    /// <summary>
    /// Runs the model forward in training mode on <paramref name="batch"/>, computes the loss and runs backward,
    /// adding into the parameters' gradients (zeroed by the trainer beforehand). Returns the batch's mean loss.
    /// </summary>
    float ForwardBackward(TBatch batch);

    /// <summary>Scores the model (in inference mode) on the validation set, or returns null when there is none (then the training loss decides).</summary>
    ValidationResult? Validate() => null;
}

/// <summary>
/// One training loop for any model, data set and loss (<see cref="ITrainingTask{TBatch}"/>): shuffled,
/// length-bucketed batches; Adam, AdamW or SGD; gradient clipping; learning-rate schedules; divergence detection
/// with rollback; a moving average of the weights; validation with early stopping and best-weights restore;
/// progress; cancellation; and checkpoints from which a killed run resumes to exactly the weights of an
/// uninterrupted one.
/// </summary>
/// <remarks>
/// <para>Determinism: for a seed, everything random derives from (seed, epoch, step) — the batch order of epoch e
/// from a generator keyed by (seed, e), the model's random streams from <c>Reseed(Mix(seed, step))</c> before
/// every step — so a run repeats bit for bit for a seed (the kernels' results do not depend on the thread count),
/// and a resume needs only the counters.</para>
/// <para>Divergence: a non-finite loss or gradient norm stops training and restores the best weights so far (the
/// initial ones before any epoch completed), reported in <see cref="TrainingReport.Divergence"/>.</para>
/// <para>Rising loss: an epoch adds a warning to <see cref="TrainingReport.Warnings"/> when the mean loss of its
/// last tenth of batches (at least 2) exceeds the mean of its first tenth by more than half and by more than three
/// standard errors of the difference (smaller rises happen in healthy runs: batches of different lengths have
/// different losses, and an IMDB epoch rose by a third with nothing wrong), or when the mean loss of its second half exceeds 1.5 × the loss of the first
/// step of training (the untrained model's) by more than two standard errors. A learning rate far too high shows
/// the second way before it overflows: the loss leaps within a few steps, so the epoch's first tenth is already
/// high. Epochs of fewer than 4 batches are not judged.</para>
/// </remarks>
public static class Trainer
{
    /// <summary>Trains <c>task.Model</c> in place (ending with the best or averaged weights, as the options say); returns what happened.</summary>
    /// <exception cref="InvalidDataException">The checkpoint file is damaged, foreign, or was written for another model or other settings.</exception>
    public static TrainingReport Train<TBatch>(ITrainingTask<TBatch> task, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (task.Model is null) throw new ArgumentException("The task has no model.", nameof(task));
        if (task.Count <= 0) throw new ArgumentException("The training set is empty.", nameof(task));
        using var threads = Gemm.LimitThreads(options.NumberOfThreads); // this run only: other work in the process keeps its own
        return new Run<TBatch>(task, options).Execute();
    }

    /// <summary>Batches of one epoch: <paramref name="count"/> examples in the order keyed by (seed, epoch), bucketed by <paramref name="length"/> when given.</summary>
    internal static List<int[]> EpochBatches(int count, Func<int, int>? length, int batchSize, int seed, int epoch)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        ulong key = Module.Mix(~(ulong)(long)seed, (ulong)epoch); // apart from the model's stream keys Mix(seed, step)
        Shuffle<int>(order, key);
        var batches = new List<int[]>((count + batchSize - 1) / batchSize);
        if (length is null)
        {
            for (int b = 0; b < count; b += batchSize) batches.Add(order[b..Math.Min(b + batchSize, count)]);
            return batches;
        }
        // Pools of 50 batches, each sorted by length (stably: ties keep the shuffled order), split into batches;
        // then the batches are shuffled. Little padding, yet a different order every epoch.
        int pool = batchSize * 50;
        for (int start = 0; start < count; start += pool)
        {
            int n = Math.Min(pool, count - start);
            var keys = new long[n];
            for (int k = 0; k < n; k++) keys[k] = ((long)length(order[start + k]) << 32) | (uint)k;
            var chunk = order[start..(start + n)];
            Array.Sort(keys, chunk); // keys are unique: the order is fully determined
            for (int b = 0; b < n; b += batchSize) batches.Add(chunk[b..Math.Min(b + batchSize, n)]);
        }
        Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batches), Module.Mix(key, 1));
        return batches;
    }

    // Fisher–Yates with draws Mix(key, i): a fixed, platform-independent order for a key.
    static void Shuffle<T>(Span<T> items, ulong key)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)(((Module.Mix(key, (ulong)i) >> 32) * (ulong)(i + 1)) >> 32);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>
    /// The rising-loss test of an epoch (see the class remarks) on its batch losses and the loss of the first step
    /// of training: the warning text, or null.
    /// </summary>
    internal static string? RisingLossWarning(int epoch, IReadOnlyList<float> losses, double initialLoss)
    {
        int n = losses.Count, part = Math.Max(2, (n + 9) / 10);
        if (n < 2 * part) return null;
        var (m1, v1) = MeanVariance(losses, 0, part);
        var (m2, v2) = MeanVariance(losses, n - part, part);
        double rise = m2 - m1, se = Math.Sqrt((v1 + v2) / part);
        if (rise > 0.5 * Math.Abs(m1) && rise > 3 * se)
            return string.Create(CultureInfo.InvariantCulture,
                $"Epoch {epoch}: the training loss rose from {m1:G4} (mean of the first {part} batches) to {m2:G4} (last {part}); the learning rate may be too high.");
        int half = n / 2;
        var (m3, v3) = MeanVariance(losses, n - half, half); // a whole half: batch losses of a run gone wild are very noisy
        if (m3 > 1.5 * initialLoss && m3 - initialLoss > 2 * Math.Sqrt(v3 / half))
            return string.Create(CultureInfo.InvariantCulture,
                $"Epoch {epoch}: the training loss ended at {m3:G4} (mean of the last {half} batches), above {initialLoss:G4} at the first step of training; the learning rate may be too high.");
        return null;
    }

    static (double Mean, double Variance) MeanVariance(IReadOnlyList<float> x, int start, int n)
    {
        double sum = 0, sq = 0;
        for (int i = start; i < start + n; i++) sum += x[i];
        double mean = sum / n;
        for (int i = start; i < start + n; i++) sq += (x[i] - mean) * (x[i] - mean);
        return (mean, n > 1 ? sq / (n - 1) : 0);
    }

    sealed class Run<TBatch>
    {
        readonly ITrainingTask<TBatch> _task;
        readonly TrainingOptions _o;
        readonly Module _model;
        readonly IReadOnlyList<Parameter> _parameters;
        readonly List<KeyValuePair<string, Parameter>> _namedParameters;
        readonly List<KeyValuePair<string, Tensor>> _tensors; // parameters' values, then state
        readonly Optimizer _optimizer;
        readonly LearningRateSchedule _schedule;
        readonly IReadOnlyDictionary<string, string> _settings;
        readonly ulong _seed;
        readonly int _batchesPerEpoch;
        readonly long _totalSteps;

        float[][] _best;            // every tensor: the best so far (the initial weights until an epoch completes)
        readonly float[][]? _average, _raw; // parameters only: their moving average, and the trained ones while the average is validated
        int _epoch = 1, _step, _bestEpoch, _sinceBest;
        long _globalStep, _seen;
        double _lossSum, _bestMetric = double.NegativeInfinity, _initialLoss = double.NaN; // the loss of the first step of training
        List<float> _batchLosses = [];
        List<EpochSummary> _epochs = [];
        List<string> _warnings = [];
        string? _divergence;
        TimeSpan _elapsedBefore, _epochElapsedBefore;
        long? _resumedAt;
        readonly Stopwatch _clock = new(), _sinceCheckpoint = new();
        readonly GradientFlowMonitor? _flow; // null unless TrainingOptions.GradientFlow is set
        long _lastCheckpointStep;

        public Run(ITrainingTask<TBatch> task, TrainingOptions options)
        {
            _task = task; _o = options; _model = task.Model;
            _namedParameters = [.. _model.NamedParameters()];
            _parameters = [.. _namedParameters.Select(kv => kv.Value)];
            _tensors = [.. _model.NamedTensors()];
            _optimizer = options.Optimizer switch
            {
                OptimizerKind.Sgd => new Sgd(_parameters, options.LearningRate, options.Momentum, options.Nesterov, options.WeightDecay),
                OptimizerKind.AdamW => Adam.AdamW(_parameters, options.LearningRate, options.WeightDecay),
                _ => new Adam(_parameters, options.LearningRate, weightDecay: options.WeightDecay),
            };
            _schedule = options.Schedule ?? LearningRateSchedule.EpochDecay(options.LearningRateDecay);
            var settings = new SortedDictionary<string, string>(options.TrajectorySettings().ToDictionary(), StringComparer.Ordinal)
            {
                ["Examples"] = task.Count.ToString(CultureInfo.InvariantCulture),
            };
            _settings = settings;
            _seed = (ulong)(long)options.Seed;
            _batchesPerEpoch = (task.Count + options.BatchSize - 1) / options.BatchSize;
            _totalSteps = (long)_batchesPerEpoch * options.Epochs;
            _best = Snapshot(_tensors.Count);
            if (options.GradientFlow is not null) _flow = new GradientFlowMonitor(_model, options.GradientFlow);
            if (options.WeightAveraging > 0)
            {
                _average = [.. _parameters.Select(p => (float[])p.Value.Data.Clone())];
                _raw = [.. _parameters.Select(p => new float[p.Value.Length])];
            }
        }

        bool Checkpointing => _o.CheckpointPath is not null;

        public TrainingReport Execute()
        {
            if (Checkpointing && TryResume(out var finished)) return finished!;
            _clock.Start(); _sinceCheckpoint.Start();
            _lastCheckpointStep = _globalStep;
            var batch = _task.CreateBatch();
            Func<int, int>? length = _o.LengthBucketing ? _task.Length : null;
            bool cancelled = false, stopped = false;
            for (; _epoch <= _o.Epochs && !stopped; _epoch++)
            {
                var batches = EpochBatches(_task.Count, length, _o.BatchSize, _o.Seed, _epoch);
                var epochClock = Stopwatch.StartNew();
                var lastReport = Stopwatch.StartNew();
                for (; _step < batches.Count; )
                {
                    if (_o.CancellationToken.IsCancellationRequested) { cancelled = true; break; }
                    if (!TakeStep(batch, batches[_step])) break;
                    if (_o.Progress is not null && lastReport.Elapsed.TotalSeconds >= 0.5 && _step < batches.Count)
                    {
                        lastReport.Restart(); // the last batch is reported once, with the validation figures, after the epoch
                        _o.Progress.Report(Progress(_step, _epochElapsedBefore + epochClock.Elapsed, null, null));
                    }
                    if (Checkpointing && _step < batches.Count && (StepsDue() || MinutesDue())) WriteCheckpoint(finished: false);
                }
                if (cancelled || _divergence is not null) { _epochElapsedBefore += epochClock.Elapsed; break; }
                stopped = EndEpoch(_epochElapsedBefore + epochClock.Elapsed);
                _step = 0; _lossSum = 0; _seen = 0; _batchLosses = []; _epochElapsedBefore = TimeSpan.Zero;
                if (Checkpointing && !stopped && _epoch < _o.Epochs &&
                    ((_o.CheckpointEveryEpochs > 0 && _epoch % _o.CheckpointEveryEpochs == 0) || StepsDue() || MinutesDue()))
                {
                    _epoch++; // the checkpoint names the epoch to run next
                    WriteCheckpoint(finished: false);
                    _epoch--;
                }
            }
            if (cancelled && Checkpointing) WriteCheckpoint(finished: false); // resumable from here
            if (_bestEpoch > 0 || _divergence is not null) Restore(_best, _tensors.Count); // best = the initial weights until an epoch completes
            if (!cancelled && Checkpointing) WriteCheckpoint(finished: true);
            return Report(cancelled);
        }

        /// <summary>One optimisation step; false when it diverged (then nothing was updated).</summary>
        bool TakeStep(TBatch batch, int[] indices)
        {
            _model.Reseed(Module.Mix(_seed, (ulong)_globalStep));
            _optimizer.LearningRate = _schedule.Rate(_o.LearningRate, _globalStep, _totalSteps, _epoch - 1);
            _task.Fill(batch, indices);
            _optimizer.ZeroGradients();
            _flow?.BeforeStep(_globalStep);
            float loss;
            try { loss = _task.ForwardBackward(batch); }
            catch { _flow?.Disarm(); throw; }
            double norm = _o.GradientClipNorm > 0 ? GradientClipper.ClipByGlobalNorm(_parameters, _o.GradientClipNorm) : GradientClipper.GlobalNorm(_parameters);
            _flow?.AfterStep(_epoch, _globalStep, loss, norm); // before the divergence test: an exploding batch is the one to see
            if (!float.IsFinite(loss) || !double.IsFinite(norm))
            {
                _divergence = $"Training diverged in epoch {_epoch}, batch {_step + 1}: loss {loss}, gradient norm {norm}. " +
                    (_bestEpoch > 0 ? $"Kept the weights of epoch {_bestEpoch} (the best so far)" : "No epoch had completed; kept the initial weights") +
                    "; try a lower learning rate or gradient clipping.";
                return false;
            }
            if (_o.GradientClipValue > 0) GradientClipper.ClipByValue(_parameters, _o.GradientClipValue);
            _optimizer.Step();
            if (_average is not null)
            {
                float decay = Math.Min(_o.WeightAveraging, (1f + _globalStep) / (10f + _globalStep));
                for (int i = 0; i < _parameters.Count; i++)
                    TensorPrimitives.Lerp(_parameters[i].Value.Data, _average[i], decay, _average[i]); // avg = d·avg + (1 − d)·w
            }
            if (_globalStep == 0) _initialLoss = loss;
            _globalStep++; _step++;
            _lossSum += (double)loss * indices.Length; _seen += indices.Length;
            _batchLosses.Add(loss);
            return true;
        }

        /// <summary>Validation, the epoch's summary and warning, best weights and early stopping; true when training should stop.</summary>
        bool EndEpoch(TimeSpan epochElapsed)
        {
            bool stop = false;
            if (_average is not null) { CopyParameters(_raw!); SetParameters(_average); } // validate (and keep) the average
            var validation = _task.Validate();
            double trainLoss = _lossSum / _seen;
            double score = validation?.Metric ?? -trainLoss;
            _epochs.Add(new EpochSummary(_epoch, trainLoss, validation?.Loss, validation?.Metric, epochElapsed));
            if (RisingLossWarning(_epoch, _batchLosses, _initialLoss) is string warning) _warnings.Add(warning);
            _o.Progress?.Report(Progress(_batchesPerEpoch, epochElapsed, validation?.Loss, validation?.Metric));
            if (score > _bestMetric)
            {
                _bestMetric = score; _bestEpoch = _epoch; _sinceBest = 0;
                for (int i = 0; i < _tensors.Count; i++) _tensors[i].Value.Data.CopyTo(_best[i], 0);
            }
            else if (_o.EarlyStoppingPatience > 0 && ++_sinceBest >= _o.EarlyStoppingPatience) stop = true;
            if (_average is not null) SetParameters(_raw!); // training goes on from the trained weights
            return stop;
        }

        TrainingProgress Progress(int batch, TimeSpan epochElapsed, double? validationLoss, double? metric)
        {
            double seconds = Math.Max(epochElapsed.TotalSeconds, 1e-9);
            double remainingBatches = _batchesPerEpoch - batch + (double)(_o.Epochs - _epoch) * _batchesPerEpoch;
            return new TrainingProgress(_epoch, _o.Epochs, batch, _batchesPerEpoch, _seen > 0 ? _lossSum / _seen : double.NaN, _seen / seconds,
                _elapsedBefore + _clock.Elapsed, TimeSpan.FromSeconds(seconds / Math.Max(batch, 1) * remainingBatches), validationLoss, metric)
            { GradientFlow = _flow?.Latest };
        }

        TrainingReport Report(bool cancelled) =>
            new(_epochs, _bestEpoch, cancelled, _divergence, _elapsedBefore + _clock.Elapsed, _warnings) { Steps = _globalStep, ResumedAtStep = _resumedAt, GradientFlow = _flow?.Report() };

        bool StepsDue() => _o.CheckpointEverySteps > 0 && _globalStep - _lastCheckpointStep >= _o.CheckpointEverySteps;
        bool MinutesDue() => _o.CheckpointEveryMinutes > 0 && _sinceCheckpoint.Elapsed.TotalMinutes >= _o.CheckpointEveryMinutes;

        float[][] Snapshot(int count) => [.. _tensors.Take(count).Select(kv => (float[])kv.Value.Data.Clone())];

        void Restore(float[][] from, int count)
        {
            for (int i = 0; i < count; i++) from[i].CopyTo(_tensors[i].Value.Data, 0);
            foreach (var p in _parameters) p.MarkChanged();
        }

        void CopyParameters(float[][] into) { for (int i = 0; i < _parameters.Count; i++) _parameters[i].Value.Data.CopyTo(into[i], 0); }
        void SetParameters(float[][] from) => Restore(from, _parameters.Count); // parameters come first in _tensors

        // ---- checkpoints ----

        void WriteCheckpoint(bool finished)
        {
            List<CheckpointTensor> Named(float[][]? values, int count) =>
                values is null ? [] : [.. Enumerable.Range(0, count).Select(i => new CheckpointTensor(_tensors[i].Key, _tensors[i].Value.Shape, values[i]))];
            var optimizer = new List<CheckpointTensor>();
            foreach (string buffer in _optimizer.StateNames)
                for (int i = 0; i < _parameters.Count; i++)
                    optimizer.Add(new CheckpointTensor($"{buffer}/{_namedParameters[i].Key}", _parameters[i].Value.Shape, _optimizer.State(buffer, i).ToArray()));
            new TrainingCheckpoint
            {
                Settings = _settings, Epoch = _epoch, Step = _step, GlobalStep = _globalStep, Finished = finished, Divergence = _divergence,
                BestEpoch = _bestEpoch, BestMetric = _bestMetric, EpochsSinceBest = _sinceBest, InitialLoss = _initialLoss,
                EpochLossSum = _lossSum, EpochExamples = _seen, EpochBatchLosses = [.. _batchLosses], EpochElapsed = _epochElapsedBefore,
                Elapsed = _elapsedBefore + _clock.Elapsed, Epochs = [.. _epochs], Warnings = [.. _warnings], OptimizerSteps = _optimizer.StepCount,
                Model = Named([.. _tensors.Select(kv => kv.Value.Data)], _tensors.Count), // live arrays: written before anything moves
                Best = Named(_best, _tensors.Count), Average = Named(_average, _parameters.Count), Optimizer = optimizer,
            }.Write(_o.CheckpointPath!);
            _lastCheckpointStep = _globalStep;
            _sinceCheckpoint.Restart();
        }

        /// <summary>Loads the checkpoint when there is one to resume; a finished one yields its report.</summary>
        bool TryResume(out TrainingReport? finished)
        {
            finished = null;
            string path = _o.CheckpointPath!;
            if (_o.Resume == CheckpointResume.Restart) return false;
            if (!File.Exists(path))
            {
                if (_o.Resume == CheckpointResume.Require) throw new FileNotFoundException($"There is no checkpoint to resume from at '{path}'.", path);
                return false;
            }
            var c = TrainingCheckpoint.Read(path);
            CheckSettings(c, path);
            CheckTensors(c.Model, _tensors.Count, "model", path);
            CheckTensors(c.Best, _tensors.Count, "best weights", path);
            if (_average is not null) CheckTensors(c.Average, _parameters.Count, "averaged weights", path);
            if (c.Epoch < 1 || c.Step < 0 || c.Step >= _batchesPerEpoch || c.GlobalStep < 0)
                throw new InvalidDataException($"The checkpoint '{path}' has impossible counters (epoch {c.Epoch}, step {c.Step} of {_batchesPerEpoch}).");

            _model.Load(c.Model.ToDictionary(t => t.Name, t => t.Values));
            for (int i = 0; i < _tensors.Count; i++) _best[i] = c.Best[i].Values;
            if (_average is not null) for (int i = 0; i < _parameters.Count; i++) c.Average[i].Values.CopyTo(_average[i], 0);
            var buffers = c.Optimizer.ToDictionary(t => t.Name, t => t.Values);
            foreach (string buffer in _optimizer.StateNames)
                for (int i = 0; i < _parameters.Count; i++)
                {
                    string name = $"{buffer}/{_namedParameters[i].Key}";
                    if (!buffers.TryGetValue(name, out var values) || values.Length != _parameters[i].Value.Length)
                        throw new InvalidDataException($"The checkpoint '{path}' lacks the optimiser state '{name}' of the right size.");
                    values.CopyTo(_optimizer.State(buffer, i));
                }
            _optimizer.RestoreStepCount(c.OptimizerSteps);
            _epoch = c.Epoch; _step = c.Step; _globalStep = c.GlobalStep; _divergence = c.Divergence;
            _bestEpoch = c.BestEpoch; _bestMetric = c.BestMetric; _sinceBest = c.EpochsSinceBest; _initialLoss = c.InitialLoss;
            _lossSum = c.EpochLossSum; _seen = c.EpochExamples; _batchLosses = [.. c.EpochBatchLosses];
            _epochElapsedBefore = c.EpochElapsed; _elapsedBefore = c.Elapsed;
            _epochs = [.. c.Epochs]; _warnings = [.. c.Warnings];
            _resumedAt = c.GlobalStep;
            if (c.Finished) finished = Report(cancelled: false);
            return c.Finished;
        }

        void CheckSettings(TrainingCheckpoint c, string path)
        {
            var differences = _settings.Keys.Union(c.Settings.Keys).Order(StringComparer.Ordinal)
                .Select(k => (Key: k, There: c.Settings.GetValueOrDefault(k, "(none)"), Here: _settings.GetValueOrDefault(k, "(none)")))
                .Where(d => d.There != d.Here).ToList();
            if (differences.Count > 0)
                throw new InvalidDataException($"The checkpoint '{path}' was written by a run with other settings (" +
                    string.Join("; ", differences.Take(6).Select(d => $"{d.Key}: {d.There} there, {d.Here} here")) +
                    $"). Delete it, choose another {nameof(TrainingOptions.CheckpointPath)}, or set {nameof(TrainingOptions.Resume)} = {nameof(CheckpointResume)}.{nameof(CheckpointResume.Restart)} to start afresh.");
        }

        void CheckTensors(IReadOnlyList<CheckpointTensor> saved, int count, string what, string path)
        {
            string Fail(string detail) => $"The checkpoint '{path}' was written for another model: {detail}.";
            if (saved.Count != count)
                throw new InvalidDataException(Fail($"its {what} have {saved.Count} tensors, this model has {count}"));
            for (int i = 0; i < count; i++)
            {
                var (name, tensor) = (_tensors[i].Key, _tensors[i].Value);
                if (saved[i].Name != name)
                    throw new InvalidDataException(Fail($"tensor {i} of its {what} is '{saved[i].Name}', this model's is '{name}'"));
                if (!saved[i].Shape.SequenceEqual(tensor.Shape) || saved[i].Values.Length != tensor.Length)
                    throw new InvalidDataException(Fail($"'{name}' has shape [{string.Join(", ", saved[i].Shape)}] there, [{string.Join(", ", tensor.Shape)}] here"));
            }
        }
    }
}
