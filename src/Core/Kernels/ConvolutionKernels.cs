using System.Runtime.CompilerServices;

namespace DeepSeq.Core.Kernels;

// The direct ("implicit GEMM") kernels of a stride-1 convolution with "same" padding, on zero-padded channels-last
// images of Hp × Wp positions and C channels. The im2col matrix is never built: output position q of the padded
// grid (q = oy·Wp + ox; the KW − 1 columns with ox ≥ Wo are computed and dropped) has, for kernel row ky, the
// patch run image[(q + ky·Wp)·C .. + KW·C), so the micro-kernel broadcasts straight from the image. For a narrow
// layer (16 filters) im2col and packing moved each value three times for 16 multiply-adds; here a value is read
// from cache once per use. The weight gradient runs Gemm's micro-kernel strip (6 rows × 2 vectors) on addresses in
// the images; the product has its own 6 × 2-vector tile, whose six rows are six patches a row of C apart, which the
// strip's one-pointer addressing cannot express. Both read a little past the last image (the callers leave
// <see cref="ConvolutionKernels.Slack"/> floats there).

/// <summary>Strip width and slack of the direct convolution kernels.</summary>
internal static class ConvolutionKernels
{
    /// <summary>Output columns one kernel strip computes: two vectors of the widest accelerated width.</summary>
    public static int Strip => 2 * Math.Max(1, Lanes.Bits / 32);

    /// <summary>Floats the kernels may read past the last padded image (never used in a result).</summary>
    public static int Slack(int kernel, int channels) => (6 + kernel) * channels + 2 * Strip;
}

/// <summary>
/// Output (+)= conv(Source): for each image, Output[oy, ox, col] = Σ_ky Σ_j Source[((oy + ky)·Wp + ox)·C + j] ·
/// Weights[col / S][ky·KW·C + j][col % S], j over a kernel row's KW·C values; Weights are packed in strips of
/// S = <see cref="ConvolutionKernels.Strip"/> output columns (K × S each, zero past the last column).
/// </summary>
internal unsafe struct PatchProduct : IVecKernel
{
    public float* Source, Weights, Output;
    public int Images, Channels, Kernel, PaddedHeight, PaddedWidth, OutChannels;
    /// <summary>Add into Output (a gradient) instead of overwriting it.</summary>
    public bool Accumulate;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int c = Channels, ks = Kernel, wp = PaddedWidth, f = OutChannels, w = TO.Count, s = 2 * w;
        int ho = PaddedHeight - ks + 1, wo = wp - ks + 1, run = ks * c, k = ks * run, grid = ho * wp;
        long imageIn = (long)PaddedHeight * wp * c, imageOut = (long)ho * wo * f;
        bool accumulate = Accumulate;
        if (f <= w && run >= 2)
        {
            Narrow<TV, TO>();
            return;
        }
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, dst = Output + img * imageOut;
            for (int q0 = 0; q0 < grid; q0 += 6)
                for (int col = 0; col < f; col += s)
                {
                    float* strip = Weights + (long)(col / s) * k * s;
                    TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                       c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
                    for (int ky = 0; ky < ks; ky++)
                    {
                        float* a0 = src + (long)(q0 + ky * wp) * c, a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
                        float* b = strip + (long)ky * run * s;
                        for (int j = 0; j < run; j++, b += s)
                        {
                            var b0 = TO.Load(b);
                            var b1 = TO.Load(b + w);
                            var x = TO.Broadcast(a0 + j); c00 = TO.MultiplyAdd(x, b0, c00); c01 = TO.MultiplyAdd(x, b1, c01);
                            x = TO.Broadcast(a1 + j); c10 = TO.MultiplyAdd(x, b0, c10); c11 = TO.MultiplyAdd(x, b1, c11);
                            x = TO.Broadcast(a2 + j); c20 = TO.MultiplyAdd(x, b0, c20); c21 = TO.MultiplyAdd(x, b1, c21);
                            x = TO.Broadcast(a3 + j); c30 = TO.MultiplyAdd(x, b0, c30); c31 = TO.MultiplyAdd(x, b1, c31);
                            x = TO.Broadcast(a4 + j); c40 = TO.MultiplyAdd(x, b0, c40); c41 = TO.MultiplyAdd(x, b1, c41);
                            x = TO.Broadcast(a5 + j); c50 = TO.MultiplyAdd(x, b0, c50); c51 = TO.MultiplyAdd(x, b1, c51);
                        }
                    }
                    int n = Math.Min(s, f - col);
                    Put<TV, TO>(dst, q0 + 0, grid, wp, wo, f, col, n, c00, c01, accumulate);
                    Put<TV, TO>(dst, q0 + 1, grid, wp, wo, f, col, n, c10, c11, accumulate);
                    Put<TV, TO>(dst, q0 + 2, grid, wp, wo, f, col, n, c20, c21, accumulate);
                    Put<TV, TO>(dst, q0 + 3, grid, wp, wo, f, col, n, c30, c31, accumulate);
                    Put<TV, TO>(dst, q0 + 4, grid, wp, wo, f, col, n, c40, c41, accumulate);
                    Put<TV, TO>(dst, q0 + 5, grid, wp, wo, f, col, n, c50, c51, accumulate);
                }
        }
    }

    // At most one vector of outputs (16 filters on 512-bit): a 6 × 2-vector tile would leave half its multiply-adds on
    // padding, so each kernel row's run is cut in two halves instead, summed in two accumulators per position, and added
    // at the end: 12 accumulators, all of them useful.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    readonly void Narrow<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int c = Channels, ks = Kernel, wp = PaddedWidth, f = OutChannels, s = 2 * TO.Count;
        int ho = PaddedHeight - ks + 1, wo = wp - ks + 1, run = ks * c, half = run / 2, grid = ho * wp;
        long imageIn = (long)PaddedHeight * wp * c, imageOut = (long)ho * wo * f;
        bool accumulate = Accumulate;
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, dst = Output + img * imageOut;
            for (int q0 = 0; q0 < grid; q0 += 6)
            {
                TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                   c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
                for (int ky = 0; ky < ks; ky++)
                {
                    float* a0 = src + (long)(q0 + ky * wp) * c, a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
                    float* b = Weights + (long)ky * run * s, bh = b + (long)half * s;
                    for (int j = 0, jh = half; j < half; j++, jh++, b += s, bh += s)
                    {
                        var b0 = TO.Load(b);
                        var b1 = TO.Load(bh);
                        c00 = TO.MultiplyAdd(TO.Broadcast(a0 + j), b0, c00); c01 = TO.MultiplyAdd(TO.Broadcast(a0 + jh), b1, c01);
                        c10 = TO.MultiplyAdd(TO.Broadcast(a1 + j), b0, c10); c11 = TO.MultiplyAdd(TO.Broadcast(a1 + jh), b1, c11);
                        c20 = TO.MultiplyAdd(TO.Broadcast(a2 + j), b0, c20); c21 = TO.MultiplyAdd(TO.Broadcast(a2 + jh), b1, c21);
                        c30 = TO.MultiplyAdd(TO.Broadcast(a3 + j), b0, c30); c31 = TO.MultiplyAdd(TO.Broadcast(a3 + jh), b1, c31);
                        c40 = TO.MultiplyAdd(TO.Broadcast(a4 + j), b0, c40); c41 = TO.MultiplyAdd(TO.Broadcast(a4 + jh), b1, c41);
                        c50 = TO.MultiplyAdd(TO.Broadcast(a5 + j), b0, c50); c51 = TO.MultiplyAdd(TO.Broadcast(a5 + jh), b1, c51);
                    }
                    if (run > 2 * half) // an odd run: its last value goes to the second half's sums
                    {
                        int j = run - 1;
                        var b1 = TO.Load(bh);
                        c01 = TO.MultiplyAdd(TO.Broadcast(a0 + j), b1, c01); c11 = TO.MultiplyAdd(TO.Broadcast(a1 + j), b1, c11);
                        c21 = TO.MultiplyAdd(TO.Broadcast(a2 + j), b1, c21); c31 = TO.MultiplyAdd(TO.Broadcast(a3 + j), b1, c31);
                        c41 = TO.MultiplyAdd(TO.Broadcast(a4 + j), b1, c41); c51 = TO.MultiplyAdd(TO.Broadcast(a5 + j), b1, c51);
                    }
                }
                Put<TV, TO>(dst, q0 + 0, grid, wp, wo, f, 0, f, TO.Add(c00, c01), default, accumulate);
                Put<TV, TO>(dst, q0 + 1, grid, wp, wo, f, 0, f, TO.Add(c10, c11), default, accumulate);
                Put<TV, TO>(dst, q0 + 2, grid, wp, wo, f, 0, f, TO.Add(c20, c21), default, accumulate);
                Put<TV, TO>(dst, q0 + 3, grid, wp, wo, f, 0, f, TO.Add(c30, c31), default, accumulate);
                Put<TV, TO>(dst, q0 + 4, grid, wp, wo, f, 0, f, TO.Add(c40, c41), default, accumulate);
                Put<TV, TO>(dst, q0 + 5, grid, wp, wo, f, 0, f, TO.Add(c50, c51), default, accumulate);
            }
        }
    }

    // Writes (or adds) the n ≤ 2W columns of grid position q, unless q is a dropped column or past the grid.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put<TV, TO>(float* dst, int q, int grid, int wp, int wo, int f, int col, int n, TV lo, TV hi, bool accumulate)
        where TV : unmanaged where TO : ISimd<TV>
    {
        if (q >= grid) return;
        int oy = q / wp, ox = q - oy * wp;
        if (ox >= wo) return;
        float* p = dst + ((long)oy * wo + ox) * f + col;
        int w = TO.Count, n0 = Math.Min(w, n), n1 = n - n0;
        var l = new Vec<TV, TO>(lo);
        var h = new Vec<TV, TO>(hi);
        if (accumulate)
        {
            l += Lanes.Load<TV, TO>(p, n0);
            if (n1 > 0) h += Lanes.Load<TV, TO>(p + w, n1);
        }
        Lanes.Store(p, l, n0);
        if (n1 > 0) Lanes.Store(p + w, h, n1);
    }
}

/// <summary>
/// Part[col][ky·KW·C + j] += Σ_images Σ_q Source[(q + ky·Wp)·C + j] · Grads[q·F + col]: the weight gradient
/// dW = dyᵀ·im2col(x) in W's (F, KH, KW, C) layout, where Grads is dy laid on the padded grid (zero at the dropped
/// columns — the padded dy, offset by one row and one column, is exactly that) and Part is added to, not overwritten.
/// </summary>
/// <remarks>
/// Every (ky, 6 values of a kernel row, 2-vector column strip) tile of dW reads the whole image, so the positions are
/// taken a block at a time, sized for the block's images and gradients to stay in L1 while all tiles pass over it
/// (streaming each tile over the whole image from L2 left the kernel waiting on L2 half the time); the tiles'
/// accumulators live in <see cref="Tiles"/> (<see cref="TileFloats"/>) between blocks.
/// </remarks>
internal unsafe struct PatchGradient : IVecKernel
{
    public float* Source, Grads, Part;
    public int Images, Channels, Kernel, PaddedHeight, PaddedWidth, OutChannels;
    /// <summary>Floats from one image's Grads to the next.</summary>
    public long GradImage;
    /// <summary>Scratch of <see cref="TileFloats"/> floats.</summary>
    public float* Tiles;

    /// <summary>Scratch floats the kernel needs: one 6 × 2-vector tile per (ky, 6 patch values, column strip).</summary>
    public static int TileFloats(int kernel, int channels, int outChannels)
    {
        int s = ConvolutionKernels.Strip;
        return kernel * ((kernel * channels + 5) / 6) * ((outChannels + s - 1) / s) * 6 * s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int c = Channels, ks = Kernel, wp = PaddedWidth, f = OutChannels, w = TO.Count, s = 2 * w;
        int ho = PaddedHeight - ks + 1, run = ks * c, k = ks * run, grid = ho * wp;
        int groups = (run + 5) / 6, strips = (f + s - 1) / s, tileSize = 6 * s;
        long imageIn = (long)PaddedHeight * wp * c;
        // Positions per block: its source rows (the block and KH − 1 rows of the grid below it) and its gradient rows
        // in about 24 KB of the 32 KB L1.
        int block = Math.Clamp((6144 - (ks - 1) * wp * c) / (c + f), 6, grid);
        float* tiles = Tiles;
        new Span<float>(tiles, ks * groups * strips * tileSize).Clear();
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, grads = Grads + img * GradImage;
            for (int q0 = 0; q0 < grid; q0 += block)
            {
                int kc = Math.Min(block, grid - q0);
                float* tile = tiles;
                for (int ky = 0; ky < ks; ky++)
                    for (int j0 = 0; j0 < run; j0 += 6)
                        for (int col = 0; col < f; col += s, tile += tileSize)
                            Gemm.Strip<TV, TO, Rows6, PackedRows>(kc, src + (long)(q0 + ky * wp) * c + j0, c, 1, grads + (long)q0 * f + col, f, tile, s);
            }
        }
        float* t = tiles;
        for (int ky = 0; ky < ks; ky++)
            for (int j0 = 0; j0 < run; j0 += 6)
                for (int col = 0; col < f; col += s, t += tileSize)
                {
                    int rows = Math.Min(6, run - j0), cols = Math.Min(s, f - col);
                    for (int o = 0; o < cols; o++)
                    {
                        float* dst = Part + (long)(col + o) * k + ky * run + j0;
                        for (int r = 0; r < rows; r++) dst[r] += t[r * s + o];
                    }
                }
    }
}
