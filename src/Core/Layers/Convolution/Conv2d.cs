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
/// <para>The batch is cut into chunks of whole images (at most <see cref="ChunkRows"/> patch rows each, so a
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
    [ThreadStatic] static float[]? t_gradientTiles;   // the direct weight gradient's accumulator tiles, per thread
    float[]? _dWeightParts;             // (chunks, F, K) per-chunk weight gradients, summed in chunk order
    // W in the layout each pass multiplies by, packed again only when W changes (its Version), not at every call: the
    // direct path's strips of W (forward) and W′ (dx), or W packed for the im2col products.
    float[]? _forwardStrips, _backwardStrips;
    long _forwardStripsVersion = -1, _backwardStripsVersion = -1;
    PackedMatrix? _forwardPacked, _backwardPacked;

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
    public unsafe void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int h, int w)
    {
        int p = OutputSize(h) * OutputSize(w);
        CheckLength(x.Length, n * h * w * InChannels, "x"); CheckLength(y.Length, n * p * OutChannels, "y");
        if (Direct) PackStrips(ref _forwardStrips, ref _forwardStripsVersion, transposed: false);
        else
        {
            _forwardPacked ??= new PackedMatrix(PatchLength, OutChannels);
            _forwardPacked.PackIfChanged(true, Weight.Value.Data, PatchLength, Weight.Version); // Wᵀ (K, F)
        }
        int perChunk = ImagesPerChunk(n, p);
        fixed (float* px = x) fixed (float* py = y)
            WorkerPool.Run((n + perChunk - 1) / perChunk, new Chunks(this, backward: false, px, py, null, n, h, w, perChunk, accumulate: false));
    }

    /// <summary>
    /// dW += dyᵀ·col; db += Σ dy; dx += col2im(dy·W) (skipped when <paramref name="dx"/> is empty: the input image).
    /// </summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n, int h, int w)
        => Backward(dx, dy, x, n, h, w, accumulate: true);

    /// <summary>As the public overload, writing dx instead of adding to it when not <paramref name="accumulate"/>.</summary>
    internal unsafe void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n, int h, int w, bool accumulate)
    {
        int p = OutputSize(h) * OutputSize(w), k = PatchLength, f = OutChannels;
        CheckLength(x.Length, n * h * w * InChannels, "x"); CheckLength(dy.Length, n * p * f, "dy");
        if (!dx.IsEmpty) CheckLength(dx.Length, x.Length, "dx");
        int perChunk = ImagesPerChunk(n, p), chunks = (n + perChunk - 1) / perChunk;
        var parts = Buffer.Ensure(ref _dWeightParts, chunks * f * k);
        if (!dx.IsEmpty && Direct) PackStrips(ref _backwardStrips, ref _backwardStripsVersion, transposed: true);
        else if (!dx.IsEmpty)
        {
            _backwardPacked ??= new PackedMatrix(f, k);
            _backwardPacked.PackIfChanged(false, Weight.Value.Data, k, Weight.Version); // W (F, K)
        }
        fixed (float* px = x) fixed (float* pdy = dy) fixed (float* pdx = dx) // an empty dx pins as null: no dx wanted
            WorkerPool.Run(chunks, new Chunks(this, backward: true, px, pdy, pdx, n, h, w, perChunk, accumulate));
        var dW = Weight.Gradient.Data;
        for (int c = 0; c < chunks; c++) TensorPrimitives.Add(dW, parts.AsSpan(c * f * k, f * k), dW);
        if (Bias is not null)
        {
            var db = Bias.Gradient.Data;
            for (int r = 0; r < n * p; r++) TensorPrimitives.Add(db, dy.Slice(r * f, f), db);
        }
    }

    // Images [i0, i1) of the forward pass.
    unsafe void ForwardChunk(float* px, float* py, int n, int h, int w, int i0, int i1)
    {
        int ho = OutputSize(h), wo = OutputSize(w), p = ho * wo, k = PatchLength, f = OutChannels, c = InChannels, rows = (i1 - i0) * p;
        var x = new ReadOnlySpan<float>(px, n * h * w * c);
        var y = new Span<float>(py + (long)i0 * p * f, rows * f);
        var bias = Bias?.Value.Data;
        if (Direct)
        {
            var padded = Pad(ref t_columns, x.Slice(i0 * h * w * c, (i1 - i0) * h * w * c), i1 - i0, h, w, c);
            if (bias is not null) for (int r = 0; r < rows; r++) bias.CopyTo(y.Slice(r * f, f)); // the product adds onto b
            Product(padded, c, _forwardStrips!, y, f, i1 - i0, h, w, accumulate: bias is not null);
            return;
        }
        ReadOnlySpan<float> col = Pointwise ? x.Slice(i0 * p * k, rows * k) : Im2Col(x, i0, i1, h, w, ho, wo);
        if (bias is null) Gemm.Multiply(false, rows, 1f, col, k, _forwardPacked!, 0f, y, f);
        else Gemm.MultiplyAddRow(rows, col, k, _forwardPacked!, bias, y, f);
    }

    // Images [i0, i1) of the backward pass: the chunk's weight gradient into its own part, and its dx (added to it, or
    // written) unless pdx is null.
    unsafe void BackwardChunk(float* px, float* pdy, float* pdx, int n, int h, int w, int i0, int i1, int chunk, bool accumulate)
    {
        int ho = OutputSize(h), wo = OutputSize(w), p = ho * wo, k = PatchLength, f = OutChannels, c = InChannels;
        int images = i1 - i0, rows = images * p;
        var x = new ReadOnlySpan<float>(px, n * h * w * c);
        var dy = new ReadOnlySpan<float>(pdy + (long)i0 * p * f, rows * f);
        var part = _dWeightParts.AsSpan(chunk * f * k, f * k);
        var dx = pdx is null ? default : new Span<float>(pdx, n * h * w * c);
        if (Direct)
        {
            part.Clear();
            var paddedX = Pad(ref t_columns, x.Slice(i0 * h * w * c, images * h * w * c), images, h, w, c);
            var paddedDy = Pad(ref t_paddedGradients, dy, images, h, w, f);
            Gradient(paddedX, paddedDy, part, images, h, w);
            if (!dx.IsEmpty) Product(paddedDy, f, _backwardStrips!, dx.Slice(i0 * h * w * c, images * h * w * c), c, images, h, w, accumulate);
            return;
        }
        ReadOnlySpan<float> col = Pointwise ? x.Slice(i0 * p * k, rows * k) : Im2Col(x, i0, i1, h, w, ho, wo);
        Gemm.Multiply(true, false, f, k, rows, 1f, dy, f, col, k, 0f, part, k);
        if (dx.IsEmpty) return;
        if (Pointwise)
            Gemm.Multiply(false, rows, 1f, dy, f, _backwardPacked!, accumulate ? 1f : 0f, dx.Slice(i0 * p * k, rows * k), k);
        else
        {
            var dcol = Buffer.Ensure(ref t_columns, rows * k);
            Gemm.Multiply(false, rows, 1f, dy, f, _backwardPacked!, 0f, dcol, k);
            if (!accumulate) dx.Slice(i0 * h * w * c, images * h * w * c).Clear(); // the chunk's own images
            Col2ImAdd(dx, dcol, i0, i1, h, w, ho, wo);
        }
    }

    // Images per chunk: about ChunkRows patch rows, in a multiple of four chunks where there are enough images, all of one
    // size but the last, so that two or four threads get even shares (ResNet-20's last stage, 49 positions, was cut
    // into 83 + 45 images, and one core waited for the other). The cut depends on the shapes alone, never on the
    // thread count, and so do the results.
    static int ImagesPerChunk(int n, int positions)
    {
        int perChunk = Math.Max(1, ChunkRows / positions), chunks = (n + perChunk - 1) / perChunk;
        chunks = Math.Min(n, (chunks + 3) / 4 * 4);
        return (n + chunks - 1) / chunks;
    }

    // Chunks of whole images of one pass, run on the worker pool, each chunk's multiplies on the thread that runs it:
    // a struct holding pointers (pool threads cannot take spans), so a pass allocates nothing. y is dy in the
    // backward pass; dx is null in the forward pass and in a backward pass that wants no dx.
    readonly unsafe struct Chunks(Conv2d layer, bool backward, float* x, float* y, float* dx, int n, int h, int w, int perChunk, bool accumulate) : IPoolWork
    {
        public void Run(int chunk)
        {
            int i0 = chunk * perChunk, i1 = Math.Min(n, i0 + perChunk);
            if (backward) layer.BackwardChunk(x, y, dx, n, h, w, i0, i1, chunk, accumulate);
            else layer.ForwardChunk(x, y, n, h, w, i0, i1);
        }
    }

    // W in strips of S output columns for PatchProduct: (F / S, K, S), zero past F. Transposed: W′ of the backward
    // pass, whose outputs are the C input channels: W′[c, (ky, kx, f)] = W[f, KH − 1 − ky, KW − 1 − kx, c].
    void PackStrips(ref float[]? buffer, ref long packedVersion, bool transposed)
    {
        if (packedVersion == Weight.Version) return;
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
        packedVersion = Weight.Version;
    }

    // n images of h × w × channels, zero-padded by Padding on every side, back to back, plus the kernels' slack.
    Span<float> Pad(ref float[]? buffer, ReadOnlySpan<float> images, int n, int h, int w, int channels)
    {
        int hp = h + 2 * Padding, wp = w + 2 * Padding, row = w * channels;
        int length = n * hp * wp * channels + ConvolutionKernels.Slack(KernelSize, channels);
        var padded = Buffer.Ensure(ref buffer, length).AsSpan(0, length);
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
        var tiles = Buffer.Ensure(ref t_gradientTiles, PatchGradient.TileFloats(KernelSize, InChannels, f));
        fixed (float* px = paddedX) fixed (float* pg = paddedDy) fixed (float* pp = part) fixed (float* pt = tiles)
            Lanes.Run(new PatchGradient
            {
                Source = px, Grads = pg + (long)(wp + 1) * Padding * f, Part = pp, Images = n, Channels = InChannels, Kernel = KernelSize,
                PaddedHeight = hp, PaddedWidth = wp, OutChannels = f, GradImage = (long)hp * wp * f, Tiles = pt,
            });
    }

    // col (rows of images i0 … i1−1, K): each row the KH·KW runs of Cin channels under one output position.
    Span<float> Im2Col(ReadOnlySpan<float> x, int i0, int i1, int h, int w, int ho, int wo)
    {
        int c = InChannels, k = PatchLength, ks = KernelSize;
        var col = Buffer.Ensure(ref t_columns, (i1 - i0) * ho * wo * k).AsSpan(0, (i1 - i0) * ho * wo * k);
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
