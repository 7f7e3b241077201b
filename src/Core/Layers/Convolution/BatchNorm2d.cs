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
    readonly float[] _inverseStd, _scale; // (C) σ⁻¹ of the last forward; γσ⁻¹
    readonly double[] _sum, _sumSquares;  // (C) accumulators (double: M is 10⁵ rows)
    readonly float[] _chunk;              // (C) float partial sums of a few rows
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
        _inverseStd = new float[channels]; _scale = new float[channels]; _chunk = new float[channels];
        _sum = new double[channels]; _sumSquares = new double[channels];
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
            // Mean, then the variance about it (two passes: no cancellation); float partial sums of 64 rows, then double.
            ColumnSums(x, rows, null);
            for (int j = 0; j < c; j++) _scale[j] = (float)(_sum[j] / rows); // the mean, for the second pass
            ColumnSums(x, rows, _scale);
            float m = Momentum;
            for (int j = 0; j < c; j++)
            {
                double mean = _sum[j] / rows, variance = _sumSquares[j] / rows;
                _inverseStd[j] = (float)(1 / Math.Sqrt(variance + Epsilon));
                RunningMean.Data[j] = (float)((1 - m) * RunningMean.Data[j] + m * mean);
                RunningVariance.Data[j] = (float)((1 - m) * RunningVariance.Data[j] + m * variance * rows / (rows - 1));
            }
            for (int r = 0; r < rows; r++)
            {
                var xn = norm.Slice(r * c, c);
                TensorPrimitives.Subtract(x.Slice(r * c, c), _scale, xn);
                TensorPrimitives.Multiply(xn, _inverseStd, xn);
            }
        }
        else
        {
            for (int j = 0; j < c; j++) _inverseStd[j] = 1f / MathF.Sqrt(RunningVariance.Data[j] + Epsilon);
            for (int r = 0; r < rows; r++)
            {
                var xn = norm.Slice(r * c, c);
                TensorPrimitives.Subtract(x.Slice(r * c, c), RunningMean.Data, xn);
                TensorPrimitives.Multiply(xn, _inverseStd, xn);
            }
        }
        var gamma = Gamma.Value.Data; var beta = Beta.Value.Data;
        for (int r = 0; r < rows; r++) TensorPrimitives.FusedMultiplyAdd(norm.Slice(r * c, c), gamma, beta, y.Slice(r * c, c));
    }

    /// <summary>dγ += Σ dy·x̂; dβ += Σ dy; dx += the input gradient of the last forward's mode (see the remarks).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows)
    {
        int c = Channels;
        var norm = (_normalized ?? throw new InvalidOperationException("Backward called before Forward.")).AsSpan(0, rows * c);
        if (dy.Length != rows * c || dx.Length != rows * c) throw new ArgumentException($"Batch norm over {c} channels needs {rows * c} values in dx and dy.");
        // Σ dy (into _sum) and Σ dy·x̂ (into _sumSquares).
        Array.Clear(_sum); Array.Clear(_sumSquares);
        for (int start = 0; start < rows; start += 64)
        {
            int end = Math.Min(rows, start + 64);
            Array.Clear(_chunk);
            for (int r = start; r < end; r++) TensorPrimitives.Add(_chunk, dy.Slice(r * c, c), _chunk);
            for (int j = 0; j < c; j++) _sum[j] += _chunk[j];
            Array.Clear(_chunk);
            for (int r = start; r < end; r++) TensorPrimitives.FusedMultiplyAdd(dy.Slice(r * c, c), norm.Slice(r * c, c), _chunk, _chunk);
            for (int j = 0; j < c; j++) _sumSquares[j] += _chunk[j];
        }
        var gamma = Gamma.Value.Data; var dGamma = Gamma.Gradient.Data; var dBeta = Beta.Gradient.Data;
        for (int j = 0; j < c; j++)
        {
            dGamma[j] += (float)_sumSquares[j];
            dBeta[j] += (float)_sum[j];
            _scale[j] = gamma[j] * _inverseStd[j];
        }
        if (!_trainingForward)
        {
            for (int r = 0; r < rows; r++) TensorPrimitives.FusedMultiplyAdd(dy.Slice(r * c, c), _scale, dx.Slice(r * c, c), dx.Slice(r * c, c));
            return;
        }
        // dx += γσ⁻¹·dy − γσ⁻¹·mean(dy) − x̂·γσ⁻¹·mean(dy·x̂): per channel a scale, an offset and an x̂ coefficient.
        Span<float> offset = c <= 512 ? stackalloc float[c] : new float[c];
        Span<float> slope = c <= 512 ? stackalloc float[c] : new float[c];
        for (int j = 0; j < c; j++)
        {
            offset[j] = (float)(-_scale[j] * _sum[j] / rows);
            slope[j] = (float)(-_scale[j] * _sumSquares[j] / rows);
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dx.Slice(r * c, c);
            TensorPrimitives.FusedMultiplyAdd(dy.Slice(r * c, c), _scale, d, d);
            TensorPrimitives.FusedMultiplyAdd(norm.Slice(r * c, c), slope, d, d);
            TensorPrimitives.Add(d, offset, d);
        }
    }

    // Σ x per channel into _sum, or (given the mean) Σ (x − mean)² into _sumSquares.
    void ColumnSums(ReadOnlySpan<float> x, int rows, float[]? mean)
    {
        int c = Channels;
        var target = mean is null ? _sum : _sumSquares;
        Array.Clear(target);
        Span<float> centred = c <= 512 ? stackalloc float[c] : new float[c];
        for (int start = 0; start < rows; start += 64)
        {
            int end = Math.Min(rows, start + 64);
            Array.Clear(_chunk);
            for (int r = start; r < end; r++)
            {
                if (mean is null) TensorPrimitives.Add(_chunk, x.Slice(r * c, c), _chunk);
                else
                {
                    TensorPrimitives.Subtract(x.Slice(r * c, c), mean, centred);
                    TensorPrimitives.FusedMultiplyAdd(centred, centred, _chunk, _chunk);
                }
            }
            for (int j = 0; j < c; j++) target[j] += _chunk[j];
        }
    }
}
