using System.Numerics.Tensors;
using DeepSeq.Core;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;

namespace GradientFlow;

/// <summary>
/// One recurrent layer and a dense read-out applied to its outputs at the last K steps.
/// Shapes (time-major): x (T, B, F), y (T, B, H), logits (K, B, O).
/// </summary>
sealed class StepModel : Module
{
    readonly RecurrentNetwork _rnn;
    readonly Dense _head;
    float[] _y = [], _dy = [], _logits = [], _dLogits = [], _probabilities = [];
    int _steps, _batch;

    public StepModel(RecurrentCellSpec cell, int features, int hidden, int outputs, int readSteps)
    {
        ReadSteps = readSteps;
        _rnn = AddChild("recurrent", new RecurrentNetwork(cell, features, hidden));
        _head = AddChild("head", new Dense(hidden, outputs));
    }

    public RecurrentNetwork Recurrent => _rnn;
    public Dense Head => _head;
    public int ReadSteps { get; }

    /// <summary>Sizes every buffer for batches of up to <paramref name="steps"/> × <paramref name="batch"/>.</summary>
    public void Reserve(int steps, int batch)
    {
        int h = _rnn.HiddenSize, kb = ReadSteps * batch, o = _head.OutputSize;
        _y = new float[steps * batch * h];        // (T, B, H)
        _dy = new float[steps * batch * h];       // (T, B, H), zero outside the read steps
        _logits = new float[kb * o];              // (K, B, O)
        _dLogits = new float[kb * o];
        _probabilities = new float[kb * o];
        _rnn.Reserve(steps, batch);
        (_steps, _batch) = (steps, batch);
    }

    /// <summary>Logits (K, B, O) of the last K steps of x (T, B, F): every sequence has T steps.</summary>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<float> x, int steps, int batch, bool training)
    {
        if (steps > _steps || batch > _batch) Reserve(Math.Max(steps, _steps), Math.Max(batch, _batch));
        int h = _rnn.HiddenSize, kb = ReadSteps * batch, o = _head.OutputSize;
        Span<int> lengths = batch <= 512 ? stackalloc int[batch] : new int[batch];
        lengths.Fill(steps);
        var y = _y.AsSpan(0, steps * batch * h);
        _rnn.Forward(y, default, default, x, default, default, lengths, steps, batch, training);
        var logits = _logits.AsSpan(0, kb * o);
        _head.Forward(logits, y[((steps - ReadSteps) * batch * h)..], kb);
        return logits;
    }

    /// <summary>Mean loss of the last forward against targets (K, B) and its backward pass (gradients added into the parameters).</summary>
    public float Loss(ReadOnlySpan<float> targets, int steps, int batch, bool classification, bool backward, out int correct)
    {
        int h = _rnn.HiddenSize, kb = ReadSteps * batch, o = _head.OutputSize;
        var logits = _logits.AsSpan(0, kb * o);
        var dLogits = _dLogits.AsSpan(0, kb * o);
        float loss;
        correct = 0;
        if (classification)
        {
            Span<int> labels = kb <= 2048 ? stackalloc int[kb] : new int[kb];
            for (int i = 0; i < kb; i++) labels[i] = (int)targets[i];
            loss = Losses.SoftmaxCrossEntropy(logits, labels, o, dLogits, _probabilities.AsSpan(0, kb * o));
            for (int i = 0; i < kb; i++) if (TensorPrimitives.IndexOfMax(logits.Slice(i * o, o)) == labels[i]) correct++;
        }
        else loss = Losses.MeanSquaredError(logits, targets[..kb], dLogits);
        if (!backward) return loss;
        var dy = _dy.AsSpan(0, steps * batch * h);
        dy.Clear();
        var y = _y.AsSpan(0, steps * batch * h);
        int read = (steps - ReadSteps) * batch * h;
        _head.Backward(dy[read..], dLogits, y[read..], kb);
        _rnn.Backward(default, default, default, dy, default, default);
        return loss;
    }
}

/// <summary>A batch: x (T, B, F) time-major and targets (K, B).</summary>
sealed class StepBatch(int steps, int batch, int features, int readSteps)
{
    public readonly float[] X = new float[steps * batch * features];
    public readonly float[] Y = new float[readSteps * batch];
    public int Count;
}

/// <summary>
/// Trains a <see cref="StepModel"/> on examples of one length through the generic trainer; validation after every
/// epoch, and a cancellation when the validation figures solve the task (no need to go on).
/// </summary>
sealed class StepTask : ITrainingTask<StepBatch>
{
    readonly StepModel _model;
    readonly LongRangeTask _task;
    readonly float[] _x, _y, _vx, _vy;
    readonly int _length, _batchSize, _count, _validationCount;
    readonly StepBatch _validationBatch;
    readonly CancellationTokenSource _solved;

    public StepTask(StepModel model, LongRangeTask task, int length, int count, int validationCount, int batchSize, int seed, CancellationTokenSource solved)
    {
        _model = model; _task = task; _length = length; _batchSize = batchSize; _count = count; _validationCount = validationCount; _solved = solved;
        (_x, _y) = task.Generate(count, length, seed);
        (_vx, _vy) = task.Generate(validationCount, length, seed + 7919);
        _validationBatch = new StepBatch(length, 256, task.Features, task.ReadSteps);
        model.Reserve(length, Math.Max(batchSize, 256));
    }

    public Module Model => _model;
    public int Count => _count;
    /// <summary>Validation figures after every epoch: (step count so far, loss, metric).</summary>
    public List<(int Epoch, double Loss, double Metric)> Curve { get; } = [];
    public StepBatch CreateBatch() => new(_length, _batchSize, _task.Features, _task.ReadSteps);

    public void Fill(StepBatch batch, int[] indices) => Fill(batch, indices, _x, _y);

    void Fill(StepBatch batch, ReadOnlySpan<int> indices, float[] x, float[] y)
    {
        int n = indices.Length, f = _task.Features, k = _task.ReadSteps;
        batch.Count = n;
        for (int b = 0; b < n; b++)
        {
            int i = indices[b];
            for (int t = 0; t < _length; t++) x.AsSpan((i * _length + t) * f, f).CopyTo(batch.X.AsSpan((t * n + b) * f, f));
            for (int j = 0; j < k; j++) batch.Y[j * n + b] = y[i * k + j];
        }
    }

    public float ForwardBackward(StepBatch batch)
    {
        int n = batch.Count;
        _model.Forward(batch.X.AsSpan(0, _length * n * _task.Features), _length, n, training: true);
        return _model.Loss(batch.Y.AsSpan(0, _task.ReadSteps * n), _length, n, _task.Classification, backward: true, out _);
    }

    public ValidationResult? Validate()
    {
        var (loss, metric) = Evaluate(_vx, _vy, _validationCount);
        Curve.Add((Curve.Count + 1, loss, metric));
        if (_task.Solved(loss, metric)) _solved.Cancel(); // stops the trainer before its next step; the best weights are kept
        return new ValidationResult(loss, metric);
    }

    /// <summary>Mean loss and metric (accuracy, or −MSE) over examples x, y.</summary>
    public (double Loss, double Metric) Evaluate(float[] x, float[] y, int count)
    {
        double loss = 0, correct = 0;
        int[] indices = new int[256];
        for (int start = 0; start < count; start += 256)
        {
            int n = Math.Min(256, count - start);
            for (int i = 0; i < n; i++) indices[i] = start + i;
            Fill(_validationBatch, indices.AsSpan(0, n), x, y);
            _model.Forward(_validationBatch.X.AsSpan(0, _length * n * _task.Features), _length, n, training: false);
            loss += n * (double)_model.Loss(_validationBatch.Y.AsSpan(0, _task.ReadSteps * n), _length, n, _task.Classification, backward: false, out int c);
            correct += c;
        }
        loss /= count;
        return (loss, _task.Classification ? correct / ((double)count * _task.ReadSteps) : -loss);
    }

    /// <summary>The test split's figures, from examples of a seed never used for training or validation.</summary>
    public (double Loss, double Metric) Test(int count, int seed)
    {
        var (x, y) = _task.Generate(count, _length, seed);
        return Evaluate(x, y, count);
    }
}
