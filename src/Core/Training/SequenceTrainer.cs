using System.Diagnostics;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Training;

/// <summary>What a <see cref="SequenceModel"/> predicts, which fixes its loss and validation metric.</summary>
public enum SequenceTask
{
    /// <summary>One logit; sigmoid + binary cross-entropy; labels 0 or 1; metric accuracy.</summary>
    BinaryClassification,
    /// <summary>K logits; softmax + cross-entropy; labels 0 … K−1; metric accuracy.</summary>
    MulticlassClassification,
    /// <summary>One output; mean squared error; metric negative MSE (higher is better).</summary>
    Regression,
}

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

/// <summary>Settings of <see cref="SequenceTrainer.Train"/>.</summary>
public sealed record SequenceTrainingOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Sequences per batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>The optimiser.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary>Initial step size.</summary>
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>Multiplies the learning rate after every epoch (1 = constant).</summary>
    public float LearningRateDecay { get; init; } = 1f;
    /// <summary>Momentum for SGD.</summary>
    public float Momentum { get; init; } = 0.9f;
    /// <summary>Nesterov momentum for SGD.</summary>
    public bool Nesterov { get; init; }
    /// <summary>Threads the kernels may use while training (0 = one per core).</summary>
    public int NumberOfThreads { get; init; }
    /// <summary>Weight decay λ (L2 for Adam and SGD, decoupled for AdamW).</summary>
    public float WeightDecay { get; init; }
    /// <summary>Clip gradients to this global L2 norm; 0 turns it off.</summary>
    public float GradientClipNorm { get; init; } = 1f;
    /// <summary>Clamp each gradient value to ±this; 0 turns it off.</summary>
    public float GradientClipValue { get; init; }
    /// <summary>Longest sequence used; longer ones are cut.</summary>
    public int MaxLength { get; init; } = 400;
    /// <summary>When cutting, keep the end of the sequence instead of its start.</summary>
    public bool KeepEnd { get; init; }
    /// <summary>
    /// Decay of an exponential moving average of the weights (Polyak averaging), updated after every step and
    /// used for validation and as the result; 0 turns it off. Around 0.998 smooths the epoch-to-epoch swings
    /// of a model that is still moving (the effective decay starts lower, as TensorFlow's moving average does).
    /// </summary>
    public float WeightAveraging { get; init; }
    /// <summary>Stop after this many epochs without a better validation metric (0 = never); the best weights are restored.</summary>
    public int EarlyStoppingPatience { get; init; } = 2;
    /// <summary>Seed of shuffling and dropout.</summary>
    public int Seed { get; init; }
    /// <summary>Receives progress during training: about twice a second, and once after every epoch (then with <c>Batch == Batches</c> and the validation figures).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Stops training; the best weights so far are kept.</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Must be at least 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Must be at least 1.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Must be positive and finite.");
        if (!(LearningRateDecay > 0 && LearningRateDecay <= 1)) throw new ArgumentOutOfRangeException(nameof(LearningRateDecay), LearningRateDecay, "Must be in (0, 1].");
        if (!(GradientClipNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "Must be non-negative.");
        if (!(GradientClipValue >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipValue), GradientClipValue, "Must be non-negative.");
        if (NumberOfThreads < 0) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, "Must be non-negative (0 = one per core).");
        if (MaxLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "Must be at least 1.");
        if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "Must be non-negative.");
        if (!(WeightAveraging >= 0 && WeightAveraging < 1)) throw new ArgumentOutOfRangeException(nameof(WeightAveraging), WeightAveraging, "Must be in [0, 1).");
    }
}

/// <summary>A progress report.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean training loss so far in this epoch.</param>
/// <param name="SequencesPerSecond">Training throughput in this epoch.</param>
/// <param name="Elapsed">Time since training started.</param>
/// <param name="Remaining">Estimated time left for the planned epochs.</param>
/// <param name="ValidationLoss">Validation loss at the end of an epoch, else null.</param>
/// <param name="ValidationMetric">Validation metric (accuracy, or −MSE) at the end of an epoch, else null.</param>
public sealed record TrainingProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double SequencesPerSecond,
    TimeSpan Elapsed, TimeSpan Remaining, double? ValidationLoss, double? ValidationMetric);

/// <summary>One epoch's figures.</summary>
public sealed record EpochSummary(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationMetric, TimeSpan Duration);

/// <summary>What training did.</summary>
/// <param name="Epochs">Per-epoch figures.</param>
/// <param name="BestEpoch">The epoch whose weights were kept (0: none completed).</param>
/// <param name="Cancelled">True when the cancellation token stopped training.</param>
/// <param name="Divergence">Why training stopped on a non-finite loss or gradient, or null.</param>
/// <param name="Duration">Wall-clock time.</param>
/// <param name="Warnings">Signs of a bad run that did not stop it (e.g. a loss that ended an epoch higher than it started).</param>
public sealed record TrainingReport(IReadOnlyList<EpochSummary> Epochs, int BestEpoch, bool Cancelled, string? Divergence, TimeSpan Duration,
    IReadOnlyList<string> Warnings);

/// <summary>
/// Mini-batch training of a <see cref="SequenceModel"/>: length-bucketed batches (little padding) in a seeded
/// random order, the chosen optimiser, gradient clipping, a validation pass per epoch with early stopping and
/// best-weights restore, and divergence detection (a non-finite loss or gradient stops training and restores
/// the best weights so far).
/// </summary>
public static class SequenceTrainer
{
    /// <summary>Trains <paramref name="model"/> in place; returns per-epoch figures.</summary>
    public static TrainingReport Train(SequenceModel model, SequenceTask task, SequenceDataset train, SequenceDataset? validation, SequenceTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        CheckLabels(task, model.Config.Outputs, train, nameof(train));
        if (validation is not null) CheckLabels(task, model.Config.Outputs, validation, nameof(validation));

        var parameters = model.Parameters;
        Optimizer optimizer = options.Optimizer switch
        {
            OptimizerKind.Sgd => new Sgd(parameters, options.LearningRate, options.Momentum, options.Nesterov, options.WeightDecay),
            OptimizerKind.AdamW => Adam.AdamW(parameters, options.LearningRate, options.WeightDecay),
            _ => new Adam(parameters, options.LearningRate, weightDecay: options.WeightDecay),
        };
        var rng = new Random(options.Seed);
        var batch = new SequenceBatch();
        int outputs = model.Config.Outputs;
        var logits = new float[options.BatchSize * outputs];
        var dLogits = new float[logits.Length];
        var targets = new float[options.BatchSize];
        var probabilities = new float[logits.Length];
        var best = Snapshot(parameters);
        var averaged = options.WeightAveraging > 0 ? Snapshot(parameters) : null; // moving average of the weights
        var raw = averaged is not null ? Snapshot(parameters) : null;            // the trained weights while the average is evaluated
        long steps = 0;
        double bestMetric = double.NegativeInfinity;
        int bestEpoch = 0, sinceBest = 0;
        var epochs = new List<EpochSummary>();
        var clock = Stopwatch.StartNew();
        string? divergence = null;
        bool cancelled = false;

        for (int epoch = 1; epoch <= options.Epochs && divergence is null && !cancelled; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var batches = Batches(train, options.BatchSize, options.MaxLength, rng);
            double lossSum = 0; int seen = 0;
            var lastReport = Stopwatch.StartNew();
            for (int k = 0; k < batches.Count; k++)
            {
                if (options.CancellationToken.IsCancellationRequested) { cancelled = true; break; }
                var indices = batches[k];
                train.Fill(batch, indices, options.MaxLength, options.KeepEnd);
                int n = indices.Length;
                model.Forward(logits.AsSpan(0, n * outputs), batch, training: true);
                float loss = Loss(task, logits.AsSpan(0, n * outputs), train, indices, outputs, dLogits.AsSpan(0, n * outputs), targets, probabilities);
                optimizer.ZeroGradients();
                model.Backward(dLogits.AsSpan(0, n * outputs));
                double norm = options.GradientClipNorm > 0 ? GradientClipper.ClipByGlobalNorm(parameters, options.GradientClipNorm) : GradientClipper.GlobalNorm(parameters);
                if (!float.IsFinite(loss) || !double.IsFinite(norm))
                {
                    divergence = $"Training diverged in epoch {epoch}, batch {k + 1}: loss {loss}, gradient norm {norm}. " +
                        (bestEpoch > 0 ? $"Kept the weights of epoch {bestEpoch} (the best so far)" : "No epoch had completed; kept the initial weights") +
                        "; try a lower learning rate or gradient clipping.";
                    break;
                }
                if (options.GradientClipValue > 0) GradientClipper.ClipByValue(parameters, options.GradientClipValue);
                optimizer.Step();
                if (averaged is not null)
                {
                    float decay = Math.Min(options.WeightAveraging, (1f + steps) / (10f + steps));
                    for (int i = 0; i < parameters.Count; i++)
                        System.Numerics.Tensors.TensorPrimitives.Lerp(parameters[i].Value.Data, averaged[i], decay, averaged[i]); // avg = d·avg + (1 − d)·w
                }
                steps++;
                lossSum += (double)loss * n; seen += n;
                // The last batch is reported once, with the validation figures, after the epoch.
                if (options.Progress is not null && lastReport.Elapsed.TotalSeconds >= 0.5 && k < batches.Count - 1)
                {
                    lastReport.Restart();
                    options.Progress.Report(Progress(epoch, options.Epochs, k + 1, batches.Count, lossSum / seen, seen, epochClock, clock, null, null));
                }
            }
            if (divergence is not null || seen == 0) break;

            if (averaged is not null) { Copy(parameters, raw!); Restore(parameters, averaged); } // validate (and keep) the average
            double? validationLoss = null, metric = null;
            if (validation is not null && validation.Count > 0)
                (validationLoss, metric) = Evaluate(model, task, validation, options.BatchSize, options.MaxLength, options.KeepEnd);
            double score = metric ?? -lossSum / seen;
            epochs.Add(new EpochSummary(epoch, lossSum / seen, validationLoss, metric, epochClock.Elapsed));
            options.Progress?.Report(Progress(epoch, options.Epochs, batches.Count, batches.Count, lossSum / seen, seen, epochClock, clock, validationLoss, metric));
            if (score > bestMetric)
            {
                bestMetric = score; bestEpoch = epoch; sinceBest = 0;
                Copy(parameters, best);
            }
            else if (options.EarlyStoppingPatience > 0 && ++sinceBest >= options.EarlyStoppingPatience) break;
            if (averaged is not null) Restore(parameters, raw!); // training goes on from the trained weights
            optimizer.LearningRate *= options.LearningRateDecay;
        }
        if (bestEpoch > 0 || divergence is not null) Restore(parameters, best); // best = the initial weights until an epoch completes
        return new TrainingReport(epochs, bestEpoch, cancelled, divergence, clock.Elapsed, []);
    }

    /// <summary>Outputs (N, Outputs): probabilities (binary: σ(logit); multiclass: softmax) or regression values.</summary>
    public static float[] Predict(SequenceModel model, SequenceTask task, SequenceDataset data, int batchSize = 64, int maxLength = 400, bool keepEnd = false)
    {
        int outputs = model.Config.Outputs;
        var result = new float[data.Count * outputs];
        var batch = new SequenceBatch();
        var logits = new float[batchSize * outputs];
        foreach (var indices in Batches(data, batchSize, maxLength, rng: null))
        {
            data.Fill(batch, indices, maxLength, keepEnd);
            var rows = logits.AsSpan(0, indices.Length * outputs);
            model.Forward(rows, batch, training: false);
            for (int k = 0; k < indices.Length; k++)
                OutputsFromLogits(task, rows.Slice(k * outputs, outputs), result.AsSpan(indices[k] * outputs, outputs));
        }
        return result;
    }

    /// <summary>What a model's logits mean for its task: σ(logit) (binary), softmax (multiclass) or the value (regression).</summary>
    public static void OutputsFromLogits(SequenceTask task, ReadOnlySpan<float> logits, Span<float> outputs)
    {
        if (task == SequenceTask.BinaryClassification) outputs[0] = 1f / (1f + MathF.Exp(-logits[0]));
        else if (task == SequenceTask.MulticlassClassification) System.Numerics.Tensors.TensorPrimitives.SoftMax(logits, outputs);
        else logits.CopyTo(outputs);
    }

    /// <summary>Mean loss and metric (accuracy, or −MSE for regression) over a data set.</summary>
    public static (double Loss, double Metric) Evaluate(SequenceModel model, SequenceTask task, SequenceDataset data, int batchSize = 64, int maxLength = 400, bool keepEnd = false)
    {
        var p = Predict(model, task, data, batchSize, maxLength, keepEnd);
        int outputs = model.Config.Outputs;
        double loss = 0, correct = 0;
        for (int i = 0; i < data.Count; i++)
        {
            float y = data.Labels[i];
            switch (task)
            {
                case SequenceTask.BinaryClassification:
                    float q = Math.Clamp(p[i], 1e-7f, 1 - 1e-7f);
                    loss -= y * Math.Log(q) + (1 - y) * Math.Log(1 - q);
                    if ((p[i] >= 0.5f) == (y >= 0.5f)) correct++;
                    break;
                case SequenceTask.MulticlassClassification:
                    var row = p.AsSpan(i * outputs, outputs);
                    loss -= Math.Log(Math.Max(row[(int)y], 1e-7f));
                    if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == (int)y) correct++;
                    break;
                default:
                    loss += (p[i] - y) * (p[i] - y);
                    break;
            }
        }
        loss /= data.Count;
        return (loss, task == SequenceTask.Regression ? -loss : correct / data.Count);
    }

    static float Loss(SequenceTask task, ReadOnlySpan<float> logits, SequenceDataset data, int[] indices, int outputs, Span<float> dLogits,
        float[] targetBuffer, float[] probabilities)
    {
        int n = indices.Length;
        var targets = targetBuffer.AsSpan(0, n);
        for (int k = 0; k < n; k++) targets[k] = data.Labels[indices[k]];
        switch (task)
        {
            case SequenceTask.BinaryClassification: return Losses.BinaryCrossEntropyWithLogits(logits, targets, dLogits);
            case SequenceTask.Regression: return Losses.MeanSquaredError(logits, targets, dLogits);
            default:
                Span<int> labels = n <= 1024 ? stackalloc int[n] : new int[n];
                for (int k = 0; k < n; k++) labels[k] = (int)targets[k];
                return Losses.SoftmaxCrossEntropy(logits, labels, outputs, dLogits, probabilities.AsSpan(0, n * outputs));
        }
    }

    /// <summary>
    /// Batches of similar lengths: shuffle, cut into pools of 50 batches, sort each pool by length, split into
    /// batches, shuffle the batches — little padding, yet a different order every epoch. Without a generator,
    /// plain length order (for prediction).
    /// </summary>
    static List<int[]> Batches(SequenceDataset data, int batchSize, int maxLength, Random? rng)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        if (rng is not null) rng.Shuffle(order);
        int pool = rng is null ? order.Length : batchSize * 50;
        var batches = new List<int[]>();
        for (int start = 0; start < order.Length; start += pool)
        {
            var chunk = order.AsSpan(start, Math.Min(pool, order.Length - start)).ToArray();
            var keys = chunk.Select(i => Math.Min(data.Length(i), maxLength)).ToArray();
            Array.Sort(keys, chunk); // order within a pool does not matter: a batch's rows are sorted again by length
            for (int b = 0; b < chunk.Length; b += batchSize) batches.Add(chunk[b..Math.Min(b + batchSize, chunk.Length)]);
        }
        if (rng is not null) rng.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batches));
        return batches;
    }

    static void CheckLabels(SequenceTask task, int outputs, SequenceDataset data, string name)
    {
        for (int i = 0; i < data.Count; i++)
        {
            float y = data.Labels[i];
            bool ok = task switch
            {
                SequenceTask.BinaryClassification => y is 0f or 1f,
                SequenceTask.MulticlassClassification => y >= 0 && y < outputs && y == MathF.Floor(y),
                _ => float.IsFinite(y),
            };
            if (!ok)
                throw new ArgumentOutOfRangeException(name, y, task switch
                {
                    SequenceTask.BinaryClassification => $"Label of row {i} is {y}; binary labels must be 0 or 1.",
                    SequenceTask.MulticlassClassification => $"Label of row {i} is {y}; class labels must be integers in [0, {outputs}).",
                    _ => $"Label of row {i} is {y}; regression labels must be finite.",
                });
        }
    }

    static TrainingProgress Progress(int epoch, int epochs, int batch, int batches, double loss, int seen, Stopwatch epochClock, Stopwatch clock, double? vLoss, double? metric)
    {
        double perBatch = epochClock.Elapsed.TotalSeconds / batch;
        double remainingBatches = batches - batch + (double)(epochs - epoch) * batches;
        return new TrainingProgress(epoch, epochs, batch, batches, loss, seen / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9),
            clock.Elapsed, TimeSpan.FromSeconds(perBatch * remainingBatches), vLoss, metric);
    }

    static float[][] Snapshot(IReadOnlyList<Parameter> ps) => [.. ps.Select(p => (float[])p.Value.Data.Clone())];
    static void Copy(IReadOnlyList<Parameter> ps, float[][] into) { for (int i = 0; i < ps.Count; i++) ps[i].Value.Data.CopyTo(into[i], 0); }
    static void Restore(IReadOnlyList<Parameter> ps, float[][] from) { for (int i = 0; i < ps.Count; i++) { from[i].CopyTo(ps[i].Value.Data, 0); ps[i].MarkChanged(); } }
}
