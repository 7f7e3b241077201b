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

/// <summary>Settings of <see cref="SequenceTrainer.Train"/>: the generic <see cref="TrainingOptions"/> plus how sequences are cut.</summary>
public sealed record SequenceTrainingOptions : TrainingOptions
{
    /// <summary>Longest sequence used; longer ones are cut.</summary>
    public int MaxLength { get; init; } = 400;
    /// <summary>When cutting, keep the end of the sequence instead of its start.</summary>
    public bool KeepEnd { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (MaxLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "Must be at least 1.");
    }

    /// <inheritdoc/>
    protected override void AddTrajectorySettings(IDictionary<string, string> settings)
    {
        base.AddTrajectorySettings(settings);
        settings[nameof(MaxLength)] = MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[nameof(KeepEnd)] = KeepEnd.ToString();
    }
}

/// <summary>
/// Training of a <see cref="SequenceModel"/> for one of the <see cref="SequenceTask"/>s through the generic
/// <see cref="Trainer"/> (length-bucketed batches, optimiser, clipping, schedules, averaging, early stopping,
/// divergence detection, checkpoints), plus prediction and evaluation.
/// </summary>
public static class SequenceTrainer
{
    /// <summary>Trains <paramref name="model"/> in place; returns per-epoch figures.</summary>
    /// <exception cref="InvalidDataException">The checkpoint file is damaged, foreign, or was written for another model or other settings.</exception>
    public static TrainingReport Train(SequenceModel model, SequenceTask task, SequenceDataset train, SequenceDataset? validation, SequenceTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        CheckLabels(task, model.Config.Outputs, train, nameof(train));
        if (validation is not null) CheckLabels(task, model.Config.Outputs, validation, nameof(validation));
        return Trainer.Train(new Classifying(model, task, train, validation, options), options);
    }

    /// <summary>The <see cref="ITrainingTask{TBatch}"/> of a sequence model: cut sequences, the task's loss on its logits, accuracy or −MSE.</summary>
    sealed class Classifying(SequenceModel model, SequenceTask task, SequenceDataset train, SequenceDataset? validation, SequenceTrainingOptions options)
        : ITrainingTask<SequenceBatch>
    {
        readonly int _outputs = model.Config.Outputs;
        readonly float[] _logits = new float[options.BatchSize * model.Config.Outputs], _dLogits = new float[options.BatchSize * model.Config.Outputs],
            _targets = new float[options.BatchSize], _probabilities = new float[options.BatchSize * model.Config.Outputs];
        int[] _indices = [];

        public Module Model => model;
        public int Count => train.Count;
        public int Length(int index) => Math.Min(train.Length(index), options.MaxLength);
        public SequenceBatch CreateBatch()
        {
            int steps = 1;
            for (int i = 0; i < train.Count; i++) steps = Math.Max(steps, Length(i));
            model.Reserve(steps, options.BatchSize); // the largest batch shape, once
            return new();
        }

        public void Fill(SequenceBatch batch, int[] indices)
        {
            train.Fill(batch, indices, options.MaxLength, options.KeepEnd);
            _indices = indices;
        }

        public float ForwardBackward(SequenceBatch batch)
        {
            int n = batch.Count * _outputs;
            model.Forward(_logits.AsSpan(0, n), batch, training: true);
            float loss = Loss(task, _logits.AsSpan(0, n), train, _indices, _outputs, _dLogits.AsSpan(0, n), _targets, _probabilities);
            model.Backward(_dLogits.AsSpan(0, n));
            return loss;
        }

        public ValidationResult? Validate()
        {
            if (validation is null || validation.Count == 0) return null;
            var (loss, metric) = Evaluate(model, task, validation, options.BatchSize, options.MaxLength, options.KeepEnd);
            return new ValidationResult(loss, metric);
        }
    }

    /// <summary>Outputs (N, Outputs): probabilities (binary: σ(logit); multiclass: softmax) or regression values.</summary>
    public static float[] Predict(SequenceModel model, SequenceTask task, SequenceDataset data, int batchSize = 64, int maxLength = 400, bool keepEnd = false)
    {
        int outputs = model.Config.Outputs;
        var result = new float[data.Count * outputs];
        var batch = new SequenceBatch();
        var logits = new float[batchSize * outputs];
        foreach (var indices in Batches(data, batchSize, maxLength))
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

    /// <summary>Batches in length order (little padding), for prediction.</summary>
    static List<int[]> Batches(SequenceDataset data, int batchSize, int maxLength)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        var keys = order.Select(i => Math.Min(data.Length(i), maxLength)).ToArray();
        Array.Sort(keys, order); // order within a length does not matter: a batch's rows are sorted again by length
        var batches = new List<int[]>();
        for (int b = 0; b < order.Length; b += batchSize) batches.Add(order[b..Math.Min(b + batchSize, order.Length)]);
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
}
