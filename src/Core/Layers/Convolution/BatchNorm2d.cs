using System.Numerics.Tensors;

namespace DeepSeq.Core.Layers.Convolution;

/// <summary>
/// Batch normalisation over the channels of channels-last images (Ioffe and Szegedy 2015; PyTorch's
/// <c>nn.BatchNorm2d</c>): in training each channel is normalised with the mean and biased variance of the batch
/// (over every image and position) and the running statistics move towards them; at inference the running
/// statistics are used. The running mean and variance are module state (<c>running_mean</c>, <c>running_var</c>),
/// so snapshots, weight averaging, checkpoints and the saved format keep them.
/// </summary>
/// <remarks>
/// Shape key: M rows (N images × H·W positions), C channels. x, y (M, C); γ = weight, β = bias (C).
/// Forward: x̂ = (x − μ)·σ⁻¹ with σ = √(var + ε); y = γ·x̂ + β. Running: r ← (1 − m)·r + m·batch, with the
/// unbiased variance (M/(M − 1)·var) as PyTorch. Backward (training mode):
/// dγ += Σ dy·x̂; dβ += Σ dy; dx += γσ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)). In inference mode dx += γσ⁻¹·dy.
/// </remarks>
public sealed class BatchNorm2d : Module
{
    float[]? _normalized;                 // (M, C) x̂ of the last forward; backward reads it
    readonly double[] _sum, _sumProducts; // (C) Σ x (or Σ dy) and Σ (x − μ)² (or Σ dy·x̂), in double: M is 10⁵ rows
    // Per-channel vectors tiled R = Tile / C times, so that the row loops run over R rows per call rather than
    // one row of C (often 16) values: σ⁻¹, the mean (or running mean), γσ⁻¹, and two scratch rows.
    readonly float[] _inverseStd, _mean, _scale, _offset, _accumulator;
    readonly int _tileRows;
    bool _trainingForward;

    /// <summary>Creates the layer with γ = 1, β = 0, running mean 0 and running variance 1.</summary>
    public BatchNorm2d(int channels, float momentum = 0.1f, float epsilon = 1e-5f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Must be in [0, 1].");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Must be positive.");
        Channels = channels; Momentum = momentum; Epsilon = epsilon;
        Gamma = AddParameter("weight", channels);
        Beta = AddParameter("bias", channels);
        Array.Fill(Gamma.Value.Data, 1f);
        RunningMean = AddState("running_mean", channels);
        RunningVariance = AddState("running_var", channels);
        Array.Fill(RunningVariance.Data, 1f);
        _tileRows = Math.Max(1, 512 / channels);
        int tile = _tileRows * channels;
        _inverseStd = new float[tile]; _mean = new float[tile]; _scale = new float[tile]; _offset = new float[tile]; _accumulator = new float[tile];
        _sum = new double[channels]; _sumProducts = new double[channels];
    }

    /// <summary>Channels C.</summary>
    public int Channels { get; }
    /// <summary>Weight of the batch statistics in the running update (PyTorch default 0.1).</summary>
    public float Momentum { get; }
    /// <summary>Added to the variance before the square root.</summary>
    public float Epsilon { get; }
    /// <summary>γ, (C).</summary>
    public Parameter Gamma { get; }
    /// <summary>β, (C).</summary>
    public Parameter Beta { get; }
    /// <summary>Running mean, (C); state.</summary>
    public Tensor RunningMean { get; }
    /// <summary>Running (unbiased) variance, (C); state.</summary>
    public Tensor RunningVariance { get; }

    /// <summary>y = γ·x̂ + β over <paramref name="rows"/> rows of C channels; batch statistics when <paramref name="training"/>. y may alias x.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, bool training)
    {
        int c = Channels;
        if (x.Length != rows * c || y.Length != rows * c) throw new ArgumentException($"Batch norm over {c} channels needs {rows * c} values in x and y, got {x.Length} and {y.Length}.");
        if (training && rows < 2) throw new ArgumentException("Batch normalisation in training needs at least 2 values per channel.", nameof(rows));
        var norm = Buffer.Ensure(ref _normalized, rows * c).AsSpan(0, rows * c);
        _trainingForward = training;
        if (training)
        {
            // The mean, then the variance about it (two passes: no cancellation).
            ColumnSums(_sum, x, default, rows);
            for (int j = 0; j < c; j++) _mean[j] = (float)(_sum[j] / rows);
            Tile(_mean);
            ColumnSums(_sumProducts, x, _mean, rows);
            float m = Momentum;
            for (int j = 0; j < c; j++)
            {
                double mean = _sum[j] / rows, variance = _sumProducts[j] / rows;
                _inverseStd[j] = (float)(1 / Math.Sqrt(variance + Epsilon));
                RunningMean.Data[j] = (float)((1 - m) * RunningMean.Data[j] + m * mean);
                RunningVariance.Data[j] = (float)((1 - m) * RunningVariance.Data[j] + m * variance * rows / (rows - 1));
            }
        }
        else
        {
            for (int j = 0; j < c; j++) _inverseStd[j] = 1f / MathF.Sqrt(RunningVariance.Data[j] + Epsilon);
            RunningMean.Data.CopyTo(_mean, 0);
            Tile(_mean);
        }
        Tile(_inverseStd);
        Gamma.Value.Data.CopyTo(_scale, 0); Tile(_scale);
        Beta.Value.Data.CopyTo(_offset, 0); Tile(_offset);
        for (int start = 0; start < rows * c; start += _mean.Length)
        {
            int len = Math.Min(_mean.Length, rows * c - start);
            var xn = norm.Slice(start, len);
            TensorPrimitives.Subtract(x.Slice(start, len), _mean.AsSpan(0, len), xn);
            TensorPrimitives.Multiply(xn, _inverseStd.AsSpan(0, len), xn);
            TensorPrimitives.FusedMultiplyAdd(xn, _scale.AsSpan(0, len), _offset.AsSpan(0, len), y.Slice(start, len));
        }
    }

    /// <summary>dγ += Σ dy·x̂; dβ += Σ dy; dx += the input gradient of the last forward's mode (see the remarks).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows)
    {
        int c = Channels;
        var norm = (_normalized ?? throw new InvalidOperationException("Backward called before Forward.")).AsSpan(0, rows * c);
        if (dy.Length != rows * c || dx.Length != rows * c) throw new ArgumentException($"Batch norm over {c} channels needs {rows * c} values in dx and dy.");
        ColumnSums(_sum, dy, default, rows);             // Σ dy
        ColumnSums(_sumProducts, dy, default, rows, norm); // Σ dy·x̂
        var gamma = Gamma.Value.Data; var dGamma = Gamma.Gradient.Data; var dBeta = Beta.Gradient.Data;
        for (int j = 0; j < c; j++)
        {
            dGamma[j] += (float)_sumProducts[j];
            dBeta[j] += (float)_sum[j];
            _scale[j] = gamma[j] * _inverseStd[j];
            // dx += γσ⁻¹·dy − γσ⁻¹·mean(dy) − x̂·γσ⁻¹·mean(dy·x̂): a scale, an offset and an x̂ coefficient per channel.
            _offset[j] = _trainingForward ? (float)(-_scale[j] * _sum[j] / rows) : 0f;
            _mean[j] = _trainingForward ? (float)(-_scale[j] * _sumProducts[j] / rows) : 0f; // reused as the x̂ coefficient
        }
        Tile(_scale); Tile(_offset); Tile(_mean);
        for (int start = 0; start < rows * c; start += _scale.Length)
        {
            int len = Math.Min(_scale.Length, rows * c - start);
            var d = dx.Slice(start, len);
            TensorPrimitives.FusedMultiplyAdd(dy.Slice(start, len), _scale.AsSpan(0, len), d, d);
            if (!_trainingForward) continue;
            TensorPrimitives.FusedMultiplyAdd(norm.Slice(start, len), _mean.AsSpan(0, len), d, d);
            TensorPrimitives.Add(d, _offset.AsSpan(0, len), d);
        }
    }

    // Repeats the first C values of a per-channel vector over its R rows.
    void Tile(float[] v)
    {
        for (int r = 1; r < _tileRows; r++) Array.Copy(v, 0, v, r * Channels, Channels);
    }

    // target[j] = Σ over rows of x (minus the tiled mean, squared, when given; times other, when given), per channel.
    // Float partial sums over 64 tiles, then double.
    void ColumnSums(double[] target, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, int rows, ReadOnlySpan<float> other = default)
    {
        int c = Channels, tile = _accumulator.Length, total = rows * c;
        Array.Clear(target);
        Span<float> centred = stackalloc float[tile];
        for (int block = 0; block < total; block += 64 * tile)
        {
            Array.Clear(_accumulator);
            for (int start = block; start < Math.Min(total, block + 64 * tile); start += tile)
            {
                int len = Math.Min(tile, total - start);
                var acc = _accumulator.AsSpan(0, len);
                var xs = x.Slice(start, len);
                if (!mean.IsEmpty)
                {
                    var z = centred[..len];
                    TensorPrimitives.Subtract(xs, mean[..len], z);
                    TensorPrimitives.FusedMultiplyAdd(z, z, acc, acc);
                }
                else if (!other.IsEmpty) TensorPrimitives.FusedMultiplyAdd(xs, other.Slice(start, len), acc, acc);
                else TensorPrimitives.Add(acc, xs, acc);
            }
            for (int i = 0; i < tile; i++) target[i % c] += _accumulator[i];
        }
    }
}
