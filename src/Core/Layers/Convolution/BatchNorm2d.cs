using System.Numerics;
using DeepSeq.Core.Kernels;

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
public sealed unsafe class BatchNorm2d : Module
{
    // Rows of C values summed in float before a block's sums go into the double totals (ColumnSums).
    const int BlockTiles = 64;

    float[]? _normalized;                 // (M, C) x̂ of the last forward; backward reads it
    float[]? _blockSums;                  // (blocks, R·C) each block's float sums, added into the totals in block order
    readonly double[] _sum, _sumProducts; // (C) Σ x (or Σ dy) and Σ (x − μ)² (or Σ dy·x̂), in double: M is 10⁵ rows
    // Per-channel vectors tiled R = Tile / C times, so that the row loops run over R rows per call rather than
    // one row of C (often 16) values: σ⁻¹, the mean (or running mean), γ and β; backward reuses the last three for
    // γσ⁻¹, the x̂ coefficient and the offset.
    readonly float[] _inverseStd, _mean, _scale, _offset;
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
        _inverseStd = new float[tile]; _mean = new float[tile]; _scale = new float[tile]; _offset = new float[tile];
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
        fixed (float* px = x, py = y, pn = norm, pm = _mean, ps = _inverseStd, pg = _scale, pb = _offset)
            ParallelRange.Run(rows * c, _mean.Length, new Normalize(px, py, pn, pm, ps, pg, pb, _mean.Length));
    }

    // x̂ = (x − μ)·σ⁻¹, y = γ·x̂ + β on a range that starts at a whole tile (the per-channel vectors are tiled), in one
    // pass over each tile of 512 values, where three TensorPrimitives calls per tile made three.
    readonly struct Normalize(float* x, float* y, float* norm, float* mean, float* inverseStd, float* scale, float* offset, int tile) : IRangeWork
    {
        public void Run(int start, int length)
        {
            for (int at = start, end = start + length; at < end; at += tile)
            {
                int len = Math.Min(tile, end - at), i = 0;
                float* px = x + at, py = y + at, pn = norm + at;
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var xn = (Vector.Load(px + i) - Vector.Load(mean + i)) * Vector.Load(inverseStd + i);
                    Vector.Store(xn, pn + i);
                    Vector.Store(Vector.MultiplyAddEstimate(xn, Vector.Load(scale + i), Vector.Load(offset + i)), py + i);
                }
                for (; i < len; i++)
                {
                    float xn = (px[i] - mean[i]) * inverseStd[i];
                    pn[i] = xn;
                    py[i] = MathF.FusedMultiplyAdd(xn, scale[i], offset[i]);
                }
            }
        }
    }

    /// <summary>dγ += Σ dy·x̂; dβ += Σ dy; dx += the input gradient of the last forward's mode (see the remarks).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows) => Backward(dx, dy, rows, accumulate: true);

    /// <summary>As <see cref="Backward(Span{float}, ReadOnlySpan{float}, int)"/>, writing dx instead of adding to it when not <paramref name="accumulate"/>.</summary>
    internal void Backward(Span<float> dx, ReadOnlySpan<float> dy, int rows, bool accumulate)
    {
        int c = Channels;
        var norm = (_normalized ?? throw new InvalidOperationException("Backward called before Forward.")).AsSpan(0, rows * c);
        if (dy.Length != rows * c || dx.Length != rows * c) throw new ArgumentException($"Batch norm over {c} channels needs {rows * c} values in dx and dy.");
        ColumnSums(_sum, dy, default, rows, norm, _sumProducts); // Σ dy and Σ dy·x̂, in one pass
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
        fixed (float* pdx = dx, pdy = dy, pn = norm, pg = _scale, pb = _offset, pm = _mean)
            ParallelRange.Run(rows * c, _scale.Length, new InputGradient(pdx, pdy, pn, pg, pb, pm, _scale.Length, _trainingForward, accumulate));
    }

    // dx (+)= γσ⁻¹·dy (+ x̂·coefficient + offset in training mode) on a range that starts at a whole tile, in one pass.
    readonly struct InputGradient(float* dx, float* dy, float* norm, float* scale, float* offset, float* coefficient, int tile, bool training, bool accumulate) : IRangeWork
    {
        public void Run(int start, int length)
        {
            for (int at = start, end = start + length; at < end; at += tile)
            {
                int len = Math.Min(tile, end - at), i = 0;
                float* pd = dx + at, pg = dy + at, pn = norm + at;
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var d = Vector.MultiplyAddEstimate(Vector.Load(pg + i), Vector.Load(scale + i), accumulate ? Vector.Load(pd + i) : Vector<float>.Zero);
                    if (training) d = Vector.MultiplyAddEstimate(Vector.Load(pn + i), Vector.Load(coefficient + i), d) + Vector.Load(offset + i);
                    Vector.Store(d, pd + i);
                }
                for (; i < len; i++)
                {
                    float d = MathF.FusedMultiplyAdd(pg[i], scale[i], accumulate ? pd[i] : 0f);
                    if (training) d = MathF.FusedMultiplyAdd(pn[i], coefficient[i], d) + offset[i];
                    pd[i] = d;
                }
            }
        }
    }

    // Repeats the first C values of a per-channel vector over its R rows.
    void Tile(float[] v)
    {
        for (int r = 1; r < _tileRows; r++) Array.Copy(v, 0, v, r * Channels, Channels);
    }

    // target[j] = Σ over rows of x, per channel; or of (x − mean)² when the tiled mean is given; or, when other is given,
    // target = Σ x and products = Σ x·other in one pass. Float partial sums over blocks of 64 tiles, computed side by
    // side, then added into the double totals in block order.
    void ColumnSums(double[] target, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, int rows, ReadOnlySpan<float> other = default, double[]? products = null)
    {
        int c = Channels, tile = _mean.Length, total = rows * c, block = BlockTiles * tile, blocks = (total + block - 1) / block;
        var sums = Buffer.Ensure(ref _blockSums, 2 * blocks * tile);
        fixed (float* px = x, pm = mean, po = other, ps = sums)
            ParallelRange.Run(total, block, new BlockSums(px, mean.IsEmpty ? null : pm, other.IsEmpty ? null : po, ps, ps + blocks * tile, tile, block));
        Add(target, sums);
        if (products is not null) Add(products, sums.AsSpan(blocks * tile));

        void Add(double[] totals, ReadOnlySpan<float> blockSums)
        {
            Array.Clear(totals);
            for (int b = 0; b < blocks; b++)
                for (int i = 0; i < tile; i++) totals[i % c] += blockSums[b * tile + i];
        }
    }

    // sums[block][i] = Σ over the block's tiles of its i-th values x, or (x − mean)²; with other, also
    // products[block][i] = Σ x · other.
    readonly struct BlockSums(float* x, float* mean, float* other, float* sums, float* products, int tile, int block) : IRangeWork
    {
        public void Run(int start, int length)
        {
            for (int b0 = start, end = start + length; b0 < end; b0 += block)
            {
                float* acc = sums + b0 / block * tile, accOther = products + b0 / block * tile;
                new Span<float>(acc, tile).Clear();
                if (other != null) new Span<float>(accOther, tile).Clear();
                for (int at = b0; at < Math.Min(end, b0 + block); at += tile)
                {
                    int len = Math.Min(tile, end - at), i = 0;
                    float* px = x + at;
                    if (mean != null)
                    {
                        for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                        {
                            var z = Vector.Load(px + i) - Vector.Load(mean + i);
                            Vector.Store(Vector.MultiplyAddEstimate(z, z, Vector.Load(acc + i)), acc + i);
                        }
                        for (; i < len; i++) { float z = px[i] - mean[i]; acc[i] = MathF.FusedMultiplyAdd(z, z, acc[i]); }
                    }
                    else if (other != null)
                    {
                        float* po = other + at;
                        for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                        {
                            var v = Vector.Load(px + i);
                            Vector.Store(Vector.Load(acc + i) + v, acc + i);
                            Vector.Store(Vector.MultiplyAddEstimate(v, Vector.Load(po + i), Vector.Load(accOther + i)), accOther + i);
                        }
                        for (; i < len; i++) { acc[i] += px[i]; accOther[i] = MathF.FusedMultiplyAdd(px[i], po[i], accOther[i]); }
                    }
                    else
                    {
                        for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                            Vector.Store(Vector.Load(acc + i) + Vector.Load(px + i), acc + i);
                        for (; i < len; i++) acc[i] += px[i];
                    }
                }
            }
        }
    }
}
