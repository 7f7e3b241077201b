using System.Numerics;
using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers;

/// <summary>How a sequence of outputs becomes one vector.</summary>
public enum PoolingKind
{
    /// <summary>The final state (for a bidirectional network, both directions' final states).</summary>
    Last,
    /// <summary>Mean over the sequence's own steps.</summary>
    Mean,
    /// <summary>Maximum over the sequence's own steps, per feature.</summary>
    Max,
    /// <summary>[max; mean]: twice the features.</summary>
    MaxMean,
    /// <summary>
    /// Additive attention (Bahdanau et al. 2015; Yang et al. 2016): e_t = vᵀ tanh(W·y_t + b), α = softmax over
    /// the sequence's steps, output Σ α_t·y_t. The weights α of the last forward are exposed.
    /// </summary>
    Attention,
}

/// <summary>
/// Pools (T, B, F) sequence outputs over time into (B, <see cref="OutputSize"/>), each sequence over its own
/// length only. <see cref="PoolingKind.Last"/> is done by the model from the final states, not here.
/// </summary>
public sealed class SequencePooling : Module
{
    readonly Dense? _score;     // attention: u = tanh(W·y + b), (A, F)
    readonly Parameter? _v;     // attention: e = vᵀu, (A)
    int _t, _b, _reservedSteps, _reservedBatch;
    int[] _lengths = [];
    int[] _argmax = [];             // (B, F) Max: the step that won
    float[]? _u, _alpha, _du, _dAlpha; // attention caches: u (T, B, A), α (T, B); scratch

    /// <summary>Creates pooling of the given kind over <paramref name="features"/> values per step.</summary>
    public SequencePooling(PoolingKind kind, int features, int attentionSize = 64)
    {
        if (kind == PoolingKind.Last) throw new ArgumentException("Last pooling reads the final states; the model handles it.", nameof(kind));
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        Kind = kind; Features = features;
        if (kind == PoolingKind.Attention)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(attentionSize, 1);
            _score = AddChild("projection", new Dense(features, attentionSize));
            _v = AddParameter("vector", attentionSize);
        }
    }

    /// <summary>The pooling kind.</summary>
    public PoolingKind Kind { get; }
    /// <summary>Features per step (F).</summary>
    public int Features { get; }
    /// <summary>Features per pooled vector: 2F for MaxMean, F otherwise.</summary>
    public int OutputSize => Kind == PoolingKind.MaxMean ? 2 * Features : Features;
    /// <summary>The attention projection (W, b), or null.</summary>
    public Dense? AttentionProjection => _score;
    /// <summary>The attention vector v, or null.</summary>
    public Parameter? AttentionVector => _v;

    /// <summary>Attention weights α of the last forward, (T, B), zero past each sequence's end; empty for other kinds.</summary>
    public ReadOnlySpan<float> AttentionWeights => Kind == PoolingKind.Attention && _alpha is not null ? _alpha.AsSpan(0, _t * _b) : default;

    /// <summary>Sizes the caches for batches of up to <paramref name="steps"/> × <paramref name="batch"/> (<see cref="Forward"/> grows them for a larger shape).</summary>
    public void Reserve(int steps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && batch == _reservedBatch) return;
        _lengths = new int[batch];
        if (Kind is PoolingKind.Max or PoolingKind.MaxMean) _argmax = new int[batch * Features];
        if (Kind == PoolingKind.Attention)
        {
            int rows = steps * batch, a = _score!.OutputSize;
            _u = new float[rows * a]; _du = new float[rows * a]; _alpha = new float[rows]; _dAlpha = new float[rows];
        }
        _reservedSteps = steps; _reservedBatch = batch;
    }

    /// <summary>pooled (B, OutputSize) from y (T, B, F).</summary>
    public void Forward(Span<float> pooled, ReadOnlySpan<float> y, int steps, int batch, ReadOnlySpan<int> lengths)
    {
        int f = Features;
        Reserve(steps, batch);
        _t = steps; _b = batch;
        lengths.CopyTo(_lengths);
        int width = OutputSize;
        pooled[..(batch * width)].Clear();
        if (Kind is PoolingKind.Max or PoolingKind.MaxMean)
        {
            // The first step holding the largest value, a vector of features at a time over all steps.
            int w = Vector<float>.Count;
            for (int b = 0; b < batch; b++)
            {
                var dst = pooled.Slice(b * width, f);
                var argmax = _argmax.AsSpan(b * f, f);
                int j = 0;
                for (; j <= f - w; j += w)
                {
                    var best = new Vector<float>(y.Slice(b * f + j, w));
                    var at = Vector<int>.Zero;
                    for (int t = 1; t < lengths[b]; t++)
                    {
                        var value = new Vector<float>(y.Slice((t * batch + b) * f + j, w));
                        var greater = Vector.GreaterThan(value, best);
                        best = Vector.ConditionalSelect(greater, value, best);
                        at = Vector.ConditionalSelect(greater, new Vector<int>(t), at);
                    }
                    best.CopyTo(dst.Slice(j, w));
                    at.CopyTo(argmax.Slice(j, w));
                }
                for (; j < f; j++)
                {
                    float best = y[b * f + j];
                    int at = 0;
                    for (int t = 1; t < lengths[b]; t++)
                        if (y[(t * batch + b) * f + j] > best) { best = y[(t * batch + b) * f + j]; at = t; }
                    dst[j] = best; argmax[j] = at;
                }
            }
        }
        if (Kind is PoolingKind.Mean or PoolingKind.MaxMean)
        {
            int offset = Kind == PoolingKind.MaxMean ? f : 0;
            for (int b = 0; b < batch; b++)
            {
                var dst = pooled.Slice(b * width + offset, f);
                for (int t = 0; t < lengths[b]; t++) TensorPrimitives.Add(dst, y.Slice((t * batch + b) * f, f), dst);
            }
            DivideByLengths(pooled[offset..], width, f, lengths[..batch]);
        }
        if (Kind == PoolingKind.Attention) AttentionForward(pooled, y, steps, batch, lengths);
    }

    /// <summary>
    /// Step t's outputs h (the rows still running, row-major) into each row's running maximum and sum (either empty when
    /// not wanted); step 0 starts them. Max and Mean pooling taken step by step, as a recurrence produces its outputs.
    /// </summary>
    internal static void AddStep(Span<float> max, Span<float> sum, ReadOnlySpan<float> h, int t)
    {
        if (t == 0)
        {
            if (!max.IsEmpty) h.CopyTo(max);
            if (!sum.IsEmpty) h.CopyTo(sum);
            return;
        }
        if (!max.IsEmpty) TensorPrimitives.Max(max[..h.Length], h, max);
        if (!sum.IsEmpty) TensorPrimitives.Add(sum[..h.Length], h, sum);
    }

    /// <summary>The mean from the sum: row b's <paramref name="width"/> sums (<paramref name="stride"/> apart) times 1 / its length.</summary>
    internal static void DivideByLengths(Span<float> sums, int stride, int width, ReadOnlySpan<int> lengths)
    {
        for (int b = 0; b < lengths.Length; b++) TensorPrimitives.Multiply(sums.Slice(b * stride, width), 1f / lengths[b], sums.Slice(b * stride, width));
    }

    void AttentionForward(Span<float> pooled, ReadOnlySpan<float> y, int steps, int batch, ReadOnlySpan<int> lengths)
    {
        int f = Features, a = _score!.OutputSize, rows = steps * batch;
        var u = _u.AsSpan(0, rows * a);
        var alpha = _alpha.AsSpan(0, rows);
        _score.Forward(u, y[..(rows * f)], rows);                  // W·y + b for every step at once
        TensorPrimitives.Tanh(u, u);
        var v = _v!.Value.Data;
        for (int b = 0; b < batch; b++)
        {
            // Masked softmax over the sequence's own steps; padding gets weight 0.
            float max = float.NegativeInfinity;
            for (int t = 0; t < lengths[b]; t++)
            {
                float e = TensorPrimitives.Dot(u.Slice((t * batch + b) * a, a), v);
                alpha[t * batch + b] = e;
                max = MathF.Max(max, e);
            }
            float sum = 0;
            for (int t = 0; t < lengths[b]; t++) sum += alpha[t * batch + b] = MathF.Exp(alpha[t * batch + b] - max);
            for (int t = 0; t < steps; t++) alpha[t * batch + b] = t < lengths[b] ? alpha[t * batch + b] / sum : 0f;
            var dst = pooled.Slice(b * f, f);
            for (int t = 0; t < lengths[b]; t++)
                TensorPrimitives.FusedMultiplyAdd(y.Slice((t * batch + b) * f, f), alpha[t * batch + b], dst, dst);
        }
    }

    /// <summary>dy += ∂L/∂y given dPooled (B, OutputSize) and the y of the last forward; adds attention parameter gradients.</summary>
    public void Backward(Span<float> dy, ReadOnlySpan<float> dPooled, ReadOnlySpan<float> y)
    {
        int f = Features, steps = _t, batch = _b, width = OutputSize;
        if (Kind is PoolingKind.Max or PoolingKind.MaxMean)
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < f; j++) dy[(_argmax![b * f + j] * batch + b) * f + j] += dPooled[b * width + j];
        if (Kind is PoolingKind.Mean or PoolingKind.MaxMean)
        {
            int offset = Kind == PoolingKind.MaxMean ? f : 0;
            for (int b = 0; b < batch; b++)
            {
                var g = dPooled.Slice(b * width + offset, f);
                float scale = 1f / _lengths[b];
                for (int t = 0; t < _lengths[b]; t++)
                {
                    var d = dy.Slice((t * batch + b) * f, f);
                    TensorPrimitives.FusedMultiplyAdd(g, scale, d, d);
                }
            }
        }
        if (Kind == PoolingKind.Attention) AttentionBackward(dy, dPooled, y);
    }

    void AttentionBackward(Span<float> dy, ReadOnlySpan<float> dPooled, ReadOnlySpan<float> y)
    {
        int f = Features, a = _score!.OutputSize, steps = _t, batch = _b, rows = steps * batch;
        var u = _u.AsSpan(0, rows * a);
        var alpha = _alpha.AsSpan(0, rows);
        var du = _du.AsSpan(0, rows * a);
        var dAlpha = _dAlpha.AsSpan(0, rows);
        du.Clear();
        var v = _v!.Value.Data; var dv = _v.Gradient.Data;
        for (int b = 0; b < batch; b++)
        {
            var g = dPooled.Slice(b * f, f);
            float weighted = 0;
            for (int t = 0; t < _lengths[b]; t++)
            {
                int r = t * batch + b;
                dAlpha[r] = TensorPrimitives.Dot(g, y.Slice(r * f, f));  // pooled = Σ α_t y_t
                weighted += alpha[r] * dAlpha[r];
                var d = dy.Slice(r * f, f);
                TensorPrimitives.FusedMultiplyAdd(g, alpha[r], d, d);
            }
            for (int t = 0; t < _lengths[b]; t++)
            {
                int r = t * batch + b;
                float de = alpha[r] * (dAlpha[r] - weighted);              // softmax backward
                var ur = u.Slice(r * a, a);
                TensorPrimitives.FusedMultiplyAdd(ur, de, dv, dv);          // e = vᵀu
                var dur = du.Slice(r * a, a);
                for (int k = 0; k < a; k++) dur[k] = de * v[k] * (1f - ur[k] * ur[k]); // u = tanh(·)
            }
        }
        _score.Backward(dy[..(rows * f)], du, y[..(rows * f)], rows);       // padding rows have du = 0
    }
}
