using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Convolution;

/// <summary>
/// 2-D convolution (cross-correlation, as PyTorch's <c>nn.Conv2d</c>) with stride and zero padding. Images are
/// channels-last (NHWC), so one output position's patch is KH·KW runs of Cin contiguous values. A stride-1
/// convolution with "same" padding (a ResNet's 3×3 layers) runs direct kernels on a zero-padded copy of the images
/// (<see cref="PatchProduct"/>, <see cref="PatchGradient"/>); the others map onto the packed GEMM through im2col,
/// the whole batch one tall product.
/// </summary>
/// <remarks>
/// <para>Shape key: N images, H × W input, C input channels (Cin), F filters (Cout), Ho × Wo output,
/// P = Ho·Wo output positions, K = KH·KW·Cin patch length.
/// x (N, H, W, Cin); y (N, Ho, Wo, F); W (F, KH, KW, Cin) — PyTorch's (F, Cin, KH, KW) with Cin moved last;
/// b (F).</para>
/// <para>Equations: col[(n,oy,ox), (ky,kx,c)] = x[n, oy·s − p + ky, ox·s − p + kx, c] (0 outside);
/// y = col·Wᵀ + b. Backward: dW += dyᵀ·col; db += Σ dy; dcol = dy·W; dx += col2im(dcol). With stride 1 and
/// p = (KH − 1)/2, dx is itself a convolution: dx = conv(dy zero-padded by p, W′) with
/// W′[c, ky, kx, f] = W[f, KH − 1 − ky, KW − 1 − kx, c], which the direct path computes with the forward kernel.</para>
/// <para>The batch is cut into chunks of whole images (about <see cref="ChunkRows"/> patch rows each, so a
/// chunk's columns stay in cache); chunks run in parallel on the <see cref="WorkerPool"/>, each thread with its own
/// column buffer and every multiply on that thread. Weight gradients are summed per chunk and then over chunks in chunk order, so the
/// result does not depend on the thread count.</para>
/// </remarks>
public sealed class Conv2d : Module
{
    /// <summary>Target patch rows per chunk: a 4096 × K block (K ≤ 576 in a ResNet-20) stays within L2/L3.</summary>
    public const int ChunkRows = 4096;

    [ThreadStatic] static float[]? t_columns; // (rows of a chunk, K) im2col, then dcol; or the padded x; per thread
    [ThreadStatic] static float[]? t_paddedGradients; // the direct path's padded dy, per thread
    float[]? _dWeightParts;             // (chunks, F, K) per-chunk weight gradients, summed in chunk order
    float[]? _forwardStrips, _backwardStrips; // the direct path's W and W′ in the kernels' strips, packed per call

    /// <summary>Creates the layer with zero weights (initialise with <see cref="Training.Initializers.HeNormal"/>).</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool useBias = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        if (padding >= kernelSize) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"Padding must be smaller than the kernel ({kernelSize}).");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize; Stride = stride; Padding = padding;
        Weight = AddParameter("weight", outChannels, kernelSize, kernelSize, inChannels);
        Bias = useBias ? AddParameter("bias", outChannels) : null;
    }

    /// <summary>Input channels Cin.</summary>
    public int InChannels { get; }
    /// <summary>Output channels (filters) F.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel height and width.</summary>
    public int KernelSize { get; }
    /// <summary>Step between output positions.</summary>
    public int Stride { get; }
    /// <summary>Zeros added on every side.</summary>
    public int Padding { get; }
    /// <summary>W, (F, KH, KW, Cin).</summary>
    public Parameter Weight { get; }
    /// <summary>b, (F), or null without bias (the usual choice before batch normalisation).</summary>
    public Parameter? Bias { get; }

    /// <summary>Patch length K = KH·KW·Cin: the fan-in of each filter.</summary>
    public int PatchLength => KernelSize * KernelSize * InChannels;

    /// <summary>Output height (or width) for an input height (or width) <paramref name="size"/>.</summary>
    public int OutputSize(int size)
    {
        int o = (size + 2 * Padding - KernelSize) / Stride + 1;
        if (size + 2 * Padding < KernelSize) throw new ArgumentException($"An input of size {size} with padding {Padding} is smaller than the {KernelSize}×{KernelSize} kernel.");
        return o;
    }

    // A 1×1 kernel at stride 1 without padding reads x itself as its columns.
    bool Pointwise => KernelSize == 1 && Stride == 1 && Padding == 0;

    // Stride 1 and "same" padding: the direct kernels, on zero-padded images, with the output the input's size.
    bool Direct => Stride == 1 && KernelSize > 1 && 2 * Padding == KernelSize - 1;

    /// <summary>y = conv(x) + b for <paramref name="n"/> images of <paramref name="h"/> × <paramref name="w"/>.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int h, int w)
    {
        int ho = OutputSize(h), wo = OutputSize(w), p = ho * wo, k = PatchLength, f = OutChannels;
        CheckLength(x.Length, n * h * w * InChannels, "x"); CheckLength(y.Length, n * p * f, "y");
        var weight = Weight.Value.Data;
        var bias = Bias?.Value.Data;
        var strips = Direct ? PackStrips(ref _forwardStrips, transposed: false) : null;
        ForEachChunk(n, p, x, y, (xs, ys, i0, i1) =>
        {
            var xa = xs.Span; var ya = ys.Span;
            int rows = (i1 - i0) * p;
            var yc = ya.Slice(i0 * p * f, rows * f);
            if (strips is not null)
            {
                var padded = Pad(ref t_columns, xa.Slice(i0 * h * w * InChannels, (i1 - i0) * h * w * InChannels), i1 - i0, h, w, InChannels);
                Product(padded, InChannels, strips, yc, f, i1 - i0, h, w, accumulate: false);
            }
            else
            {
                ReadOnlySpan<float> col = Pointwise ? xa.Slice(i0 * p * k, rows * k) : Im2Col(xa, i0, i1, h, w, ho, wo);
                Gemm.Multiply(false, true, rows, f, k, 1f, col, k, weight, k, 0f, yc, f);
            }
            if (bias is not null)
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(yc.Slice(r * f, f), bias, yc.Slice(r * f, f));
        });
    }

    /// <summary>
    /// dW += dyᵀ·col; db += Σ dy; dx += col2im(dy·W) (skipped when <paramref name="dx"/> is empty: the input image).
    /// </summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n, int h, int w)
    {
        int ho = OutputSize(h), wo = OutputSize(w), p = ho * wo, k = PatchLength, f = OutChannels;
        CheckLength(x.Length, n * h * w * InChannels, "x"); CheckLength(dy.Length, n * p * f, "dy");
        if (!dx.IsEmpty) CheckLength(dx.Length, x.Length, "dx");
        int perChunk = ImagesPerChunk(p), chunks = (n + perChunk - 1) / perChunk;
        var parts = Buffer.Ensure(ref _dWeightParts, chunks * f * k);
        var weight = Weight.Value.Data;
        bool wantDx = !dx.IsEmpty;
        var strips = Direct && wantDx ? PackStrips(ref _backwardStrips, transposed: true) : null;
        unsafe
        {
            fixed (float* pdy = dy)
            fixed (float* pdx = dx)
            {
                nint idy = (nint)pdy, idx = (nint)pdx;
                int dyLength = dy.Length, dxLength = dx.Length;
                ForEachChunk(n, p, x, default, (xs, _, i0, i1) =>
                {
                    var xa = xs.Span;
                    var dya = new ReadOnlySpan<float>((float*)idy, dyLength);
                    int rows = (i1 - i0) * p, chunk = i0 / perChunk;
                    if (Direct)
                    {
                        int images = i1 - i0, c = InChannels;
                        var part = parts.AsSpan(chunk * f * k, f * k);
                        part.Clear();
                        var paddedX = Pad(ref t_columns, xa.Slice(i0 * h * w * c, images * h * w * c), images, h, w, c);
                        var paddedDy = Pad(ref t_paddedGradients, dya.Slice(i0 * p * f, rows * f), images, h, w, f);
                        Gradient(paddedX, paddedDy, part, images, h, w);
                        if (wantDx)
                            Product(paddedDy, f, strips!, new Span<float>((float*)idx, dxLength).Slice(i0 * h * w * c, images * h * w * c), c, images, h, w, accumulate: true);
                        return;
                    }
                    ReadOnlySpan<float> col = Pointwise ? xa.Slice(i0 * p * k, rows * k) : Im2Col(xa, i0, i1, h, w, ho, wo);
                    var dyc = dya.Slice(i0 * p * f, rows * f);
                    Gemm.Multiply(true, false, f, k, rows, 1f, dyc, f, col, k, 0f, parts.AsSpan(chunk * f * k, f * k), k);
                    if (!wantDx) return;
                    var dxa = new Span<float>((float*)idx, dxLength);
                    if (Pointwise)
                        Gemm.Multiply(false, false, rows, k, f, 1f, dyc, f, weight, k, 1f, dxa.Slice(i0 * p * k, rows * k), k);
                    else
                    {
                        var dcol = Columns(rows * k);
                        Gemm.Multiply(false, false, rows, k, f, 1f, dyc, f, weight, k, 0f, dcol, k);
                        Col2ImAdd(dxa, dcol, i0, i1, h, w, ho, wo);
                    }
                });
            }
        }
        var dW = Weight.Gradient.Data;
        for (int c = 0; c < chunks; c++) TensorPrimitives.Add(dW, parts.AsSpan(c * f * k, f * k), dW);
        if (Bias is not null)
        {
            var db = Bias.Gradient.Data;
            for (int r = 0; r < n * p; r++) TensorPrimitives.Add(db, dy.Slice(r * f, f), db);
        }
    }

    delegate void ChunkWork(ReadOnlyMemoryOf xs, MemoryOf ys, int i0, int i1);

    // Span-carrying handles: the chunks run on pool threads, which cannot capture spans.
    readonly unsafe struct ReadOnlyMemoryOf(float* p, int length)
    {
        public ReadOnlySpan<float> Span => new(p, length);
    }

    readonly unsafe struct MemoryOf(float* p, int length)
    {
        public Span<float> Span => new(p, length);
    }

    static int ImagesPerChunk(int positions) => Math.Max(1, ChunkRows / positions);

    // Runs work over chunks of whole images on the worker pool, each chunk's multiplies on the thread that runs it.
    static unsafe void ForEachChunk(int n, int positions, ReadOnlySpan<float> x, Span<float> y, ChunkWork work)
    {
        int perChunk = ImagesPerChunk(positions), chunks = (n + perChunk - 1) / perChunk;
        fixed (float* px = x)
        fixed (float* py = y)
        {
            var job = new Chunks(work, new ReadOnlyMemoryOf(px, x.Length), new MemoryOf(py, y.Length), n, perChunk);
            if (Gemm.Threads == 1 || chunks == 1) for (int c = 0; c < chunks; c++) job.Run(c); // one chunk: its multiplies may split
            else WorkerPool.Run(chunks, job);
        }
    }

    readonly struct Chunks(ChunkWork work, ReadOnlyMemoryOf xs, MemoryOf ys, int n, int perChunk) : IPoolWork
    {
        public void Run(int chunk) => work(xs, ys, chunk * perChunk, Math.Min(n, (chunk + 1) * perChunk));
    }

    static float[] Columns(int length)
    {
        var buffer = t_columns;
        if (buffer is null || buffer.Length < length) t_columns = buffer = new float[length];
        return buffer;
    }

    // W in strips of S output columns for PatchProduct: (F / S, K, S), zero past F. Transposed: W′ of the backward
    // pass, whose outputs are the C input channels: W′[c, (ky, kx, f)] = W[f, KH − 1 − ky, KW − 1 − kx, c].
    float[] PackStrips(ref float[]? buffer, bool transposed)
    {
        int s = ConvolutionKernels.Strip, ks = KernelSize, c = InChannels, f = OutChannels, k = ks * ks * (transposed ? f : c);
        int outputs = transposed ? c : f, stripCount = (outputs + s - 1) / s;
        var packed = Buffer.Ensure(ref buffer, stripCount * k * s);
        var wt = Weight.Value.Data;
        for (int o = 0; o < stripCount * s; o++)
            for (int r = 0; r < k; r++)
            {
                float v = 0f;
                if (o < outputs && !transposed) v = wt[o * k + r];
                else if (o < outputs)
                {
                    int ky = r / (ks * f), kx = r / f % ks, fi = r % f; // r runs over (ky, kx, f) of W′
                    v = wt[((fi * ks + ks - 1 - ky) * ks + ks - 1 - kx) * c + o];
                }
                packed[(o / s * k + r) * s + o % s] = v;
            }
        return packed;
    }

    // n images of h × w × channels, zero-padded by Padding on every side, back to back, plus the kernels' slack.
    Span<float> Pad(ref float[]? buffer, ReadOnlySpan<float> images, int n, int h, int w, int channels)
    {
        int hp = h + 2 * Padding, wp = w + 2 * Padding, row = w * channels;
        int length = n * hp * wp * channels + ConvolutionKernels.Slack(KernelSize, channels);
        if (buffer is null || buffer.Length < length) buffer = new float[length];
        var padded = buffer.AsSpan(0, length);
        int border = Padding * channels, rows = Padding * wp * channels; // the zeros: whole rows above and below, Padding positions either side
        for (int img = 0; img < n; img++)
        {
            var image = padded.Slice(img * hp * wp * channels, hp * wp * channels);
            image[..rows].Clear();
            image[^rows..].Clear();
            for (int y = 0; y < h; y++)
            {
                var line = image.Slice((y + Padding) * wp * channels, wp * channels);
                line[..border].Clear();
                images.Slice((img * h + y) * row, row).CopyTo(line[border..]);
                line[(border + row)..].Clear();
            }
        }
        padded[(n * hp * wp * channels)..].Clear();
        return padded;
    }

    // output (+)= conv(padded source, strips): the forward (source x, channels C) or dx (source dy, channels F).
    unsafe void Product(Span<float> source, int channels, float[] strips, Span<float> output, int outChannels, int n, int h, int w, bool accumulate)
    {
        fixed (float* ps = source) fixed (float* pw = strips) fixed (float* po = output)
            Lanes.Run(new PatchProduct
            {
                Source = ps, Weights = pw, Output = po, Images = n, Channels = channels, Kernel = KernelSize,
                PaddedHeight = h + 2 * Padding, PaddedWidth = w + 2 * Padding, OutChannels = outChannels, Accumulate = accumulate,
            });
    }

    // part (F, K) += dyᵀ·im2col(x) from the padded x and padded dy of n images.
    unsafe void Gradient(Span<float> paddedX, Span<float> paddedDy, Span<float> part, int n, int h, int w)
    {
        int hp = h + 2 * Padding, wp = w + 2 * Padding, f = OutChannels;
        fixed (float* px = paddedX) fixed (float* pg = paddedDy) fixed (float* pp = part)
            Lanes.Run(new PatchGradient
            {
                Source = px, Grads = pg + (long)(wp + 1) * Padding * f, Part = pp, Images = n, Channels = InChannels, Kernel = KernelSize,
                PaddedHeight = hp, PaddedWidth = wp, OutChannels = f, GradImage = (long)hp * wp * f,
            });
    }

    // col (rows of images i0 … i1−1, K): each row the KH·KW runs of Cin channels under one output position.
    Span<float> Im2Col(ReadOnlySpan<float> x, int i0, int i1, int h, int w, int ho, int wo)
    {
        int c = InChannels, k = PatchLength, ks = KernelSize;
        var col = Columns((i1 - i0) * ho * wo * k).AsSpan(0, (i1 - i0) * ho * wo * k);
        int row = 0;
        for (int img = i0; img < i1; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++, row++)
                {
                    var dst = col.Slice(row * k, k);
                    for (int ky = 0; ky < ks; ky++)
                    {
                        int iy = oy * Stride - Padding + ky;
                        var run = dst.Slice(ky * ks * c, ks * c);
                        if ((uint)iy >= (uint)h) { run.Clear(); continue; }
                        int ix0 = ox * Stride - Padding;
                        if (ix0 >= 0 && ix0 + ks <= w) // the whole kernel row inside: one contiguous run of KW·Cin
                        {
                            x.Slice(((img * h + iy) * w + ix0) * c, ks * c).CopyTo(run);
                            continue;
                        }
                        for (int kx = 0; kx < ks; kx++)
                        {
                            int ix = ox * Stride - Padding + kx;
                            if ((uint)ix >= (uint)w) run.Slice(kx * c, c).Clear();
                            else x.Slice(((img * h + iy) * w + ix) * c, c).CopyTo(run.Slice(kx * c, c));
                        }
                    }
                }
        return col;
    }

    // dx += col2im(dcol): each patch value adds back into the input position it was copied from.
    void Col2ImAdd(Span<float> dx, ReadOnlySpan<float> dcol, int i0, int i1, int h, int w, int ho, int wo)
    {
        int c = InChannels, k = PatchLength, ks = KernelSize, row = 0;
        for (int img = i0; img < i1; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++, row++)
                    for (int ky = 0; ky < ks; ky++)
                    {
                        int iy = oy * Stride - Padding + ky;
                        if ((uint)iy >= (uint)h) continue;
                        int ix0 = ox * Stride - Padding;
                        if (ix0 >= 0 && ix0 + ks <= w)
                        {
                            AddRun(dx.Slice(((img * h + iy) * w + ix0) * c, ks * c), dcol.Slice(row * k + ky * ks * c, ks * c));
                            continue;
                        }
                        for (int kx = 0; kx < ks; kx++)
                        {
                            int ix = ox * Stride - Padding + kx;
                            if ((uint)ix >= (uint)w) continue;
                            AddRun(dx.Slice(((img * h + iy) * w + ix) * c, c), dcol.Slice(row * k + (ky * ks + kx) * c, c));
                        }
                    }
    }

    // target += source over one position's channels, inline: the runs are short (16 channels at a ResNet's first
    // stage), where TensorPrimitives' per-call dispatch costs more than the adds.
    static void AddRun(Span<float> target, ReadOnlySpan<float> source)
    {
        ref float t = ref MemoryMarshal.GetReference(target);
        ref float s = ref MemoryMarshal.GetReference(source);
        int i = 0, n = Math.Min(target.Length, source.Length), lanes = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i <= n - lanes; i += lanes)
                (Vector.LoadUnsafe(ref t, (nuint)i) + Vector.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref t, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref t, i) += Unsafe.Add(ref s, i);
    }

    static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} has {actual} values; this convolution needs {expected}.", name);
    }
}
