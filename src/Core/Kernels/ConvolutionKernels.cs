using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepSeq.Core.Kernels;

// The direct ("implicit GEMM") kernels of a stride-1 convolution with "same" padding, on zero-padded channels-last
// images of Hp × Wp positions and C channels. The im2col matrix is never built: output position (oy, ox), at
// q = oy·Wp + ox of the padded grid, has for kernel row ky the patch run image[(q + ky·Wp)·C .. + KW·C), so the
// micro-kernel broadcasts straight from the image. For a narrow
// layer (16 filters) im2col and packing moved each value three times for 16 multiply-adds; here a value is read
// from cache once per use. The product's tile is six patches (a row of C apart) × two vectors of filters; the weight
// gradient's is a few filters × three vectors of a kernel row's values. Both read a little past the last image (the
// callers leave <see cref="ConvolutionKernels.Slack"/> floats there).

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
        int ho = PaddedHeight - ks + 1, wo = wp - ks + 1, run = ks * c, k = ks * run, positions = ho * wo;
        long imageIn = (long)PaddedHeight * wp * c, imageOut = (long)ho * wo * f;
        bool accumulate = Accumulate;
        if (f <= w && ks == 3 && wo >= RowTile)
        {
            NarrowRows<TV, TO>();
            return;
        }
        if (f <= w && run >= 2)
        {
            Narrow<TV, TO>();
            return;
        }
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, dst = Output + img * imageOut;
            for (int p0 = 0; p0 < positions; p0 += 6)
            {
                long o0 = Origin(p0, positions, wo, wp, c), o1 = Origin(p0 + 1, positions, wo, wp, c), o2 = Origin(p0 + 2, positions, wo, wp, c),
                     o3 = Origin(p0 + 3, positions, wo, wp, c), o4 = Origin(p0 + 4, positions, wo, wp, c), o5 = Origin(p0 + 5, positions, wo, wp, c);
                for (int col = 0; col < f; col += s)
                {
                    float* strip = Weights + (long)(col / s) * k * s;
                    TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                       c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
                    for (int ky = 0; ky < ks; ky++)
                    {
                        float* row = src + (long)ky * wp * c, a0 = row + o0, a1 = row + o1, a2 = row + o2, a3 = row + o3, a4 = row + o4, a5 = row + o5;
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
                    Put<TV, TO>(dst, p0 + 0, positions, f, col, n, c00, c01, accumulate);
                    Put<TV, TO>(dst, p0 + 1, positions, f, col, n, c10, c11, accumulate);
                    Put<TV, TO>(dst, p0 + 2, positions, f, col, n, c20, c21, accumulate);
                    Put<TV, TO>(dst, p0 + 3, positions, f, col, n, c30, c31, accumulate);
                    Put<TV, TO>(dst, p0 + 4, positions, f, col, n, c40, c41, accumulate);
                    Put<TV, TO>(dst, p0 + 5, positions, f, col, n, c50, c51, accumulate);
                }
            }
        }
    }

    // Output positions of a row tile of NarrowRows (its 12 accumulators are written out).
    const int RowTile = 12;

    // 3 × 3 kernels, at most one vector of outputs, output rows of 12 or more positions: each input value broadcast once
    // feeds the three outputs of its row that read it (one per kernel column), so a tile of 12 positions of one output
    // row takes 14 broadcasts and 3 loads of weights for 36 multiply-adds per channel and kernel row, where a tile of
    // patches takes a broadcast per multiply-add. A row's last tile starts 12 positions before its end and writes only
    // the positions the tile before it did not.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    readonly void NarrowRows<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int c = Channels, wp = PaddedWidth, f = OutChannels, s = 2 * TO.Count;
        int ho = PaddedHeight - 2, wo = wp - 2, run = 3 * c;
        long imageIn = (long)PaddedHeight * wp * c, imageOut = (long)ho * wo * f;
        bool accumulate = Accumulate;
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, dst = Output + img * imageOut;
            for (int oy = 0; oy < ho; oy++)
            {
                for (int done = 0; done < wo;)
                {
                    int ox0 = Math.Min(done, wo - RowTile);
                    TV c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default, c8 = default, c9 = default, cA = default, cB = default;
                    for (int ky = 0; ky < 3; ky++)
                    {
                        float* input = src + ((long)(oy + ky) * wp + ox0) * c, wk = Weights + (long)ky * run * s;
                        for (int ch = 0; ch < c; ch++)
                        {
                            float* a = input + ch;
                            var w0 = TO.Load(wk + (long)ch * s);
                            var w1 = TO.Load(wk + (long)(c + ch) * s);
                            var w2 = TO.Load(wk + (long)(2 * c + ch) * s);
                            TV x;
                            x = TO.Broadcast(a + 0 * c); c0 = TO.MultiplyAdd(x, w0, c0);
                            x = TO.Broadcast(a + 1 * c); c1 = TO.MultiplyAdd(x, w0, c1); c0 = TO.MultiplyAdd(x, w1, c0);
                            x = TO.Broadcast(a + 2 * c); c2 = TO.MultiplyAdd(x, w0, c2); c1 = TO.MultiplyAdd(x, w1, c1); c0 = TO.MultiplyAdd(x, w2, c0);
                            x = TO.Broadcast(a + 3 * c); c3 = TO.MultiplyAdd(x, w0, c3); c2 = TO.MultiplyAdd(x, w1, c2); c1 = TO.MultiplyAdd(x, w2, c1);
                            x = TO.Broadcast(a + 4 * c); c4 = TO.MultiplyAdd(x, w0, c4); c3 = TO.MultiplyAdd(x, w1, c3); c2 = TO.MultiplyAdd(x, w2, c2);
                            x = TO.Broadcast(a + 5 * c); c5 = TO.MultiplyAdd(x, w0, c5); c4 = TO.MultiplyAdd(x, w1, c4); c3 = TO.MultiplyAdd(x, w2, c3);
                            x = TO.Broadcast(a + 6 * c); c6 = TO.MultiplyAdd(x, w0, c6); c5 = TO.MultiplyAdd(x, w1, c5); c4 = TO.MultiplyAdd(x, w2, c4);
                            x = TO.Broadcast(a + 7 * c); c7 = TO.MultiplyAdd(x, w0, c7); c6 = TO.MultiplyAdd(x, w1, c6); c5 = TO.MultiplyAdd(x, w2, c5);
                            x = TO.Broadcast(a + 8 * c); c8 = TO.MultiplyAdd(x, w0, c8); c7 = TO.MultiplyAdd(x, w1, c7); c6 = TO.MultiplyAdd(x, w2, c6);
                            x = TO.Broadcast(a + 9 * c); c9 = TO.MultiplyAdd(x, w0, c9); c8 = TO.MultiplyAdd(x, w1, c8); c7 = TO.MultiplyAdd(x, w2, c7);
                            x = TO.Broadcast(a + 10 * c); cA = TO.MultiplyAdd(x, w0, cA); c9 = TO.MultiplyAdd(x, w1, c9); c8 = TO.MultiplyAdd(x, w2, c8);
                            x = TO.Broadcast(a + 11 * c); cB = TO.MultiplyAdd(x, w0, cB); cA = TO.MultiplyAdd(x, w1, cA); c9 = TO.MultiplyAdd(x, w2, c9);
                            x = TO.Broadcast(a + 12 * c); cB = TO.MultiplyAdd(x, w1, cB); cA = TO.MultiplyAdd(x, w2, cA);
                            x = TO.Broadcast(a + 13 * c); cB = TO.MultiplyAdd(x, w2, cB);
                        }
                    }
                    // Positions before `done` were written by the tile before (the last tile overlaps it).
                    int skip = done - ox0, p0 = oy * wo + ox0;
                    PutFrom<TV, TO>(dst, p0, 0, skip, f, c0, accumulate); PutFrom<TV, TO>(dst, p0, 1, skip, f, c1, accumulate); PutFrom<TV, TO>(dst, p0, 2, skip, f, c2, accumulate);
                    PutFrom<TV, TO>(dst, p0, 3, skip, f, c3, accumulate); PutFrom<TV, TO>(dst, p0, 4, skip, f, c4, accumulate); PutFrom<TV, TO>(dst, p0, 5, skip, f, c5, accumulate);
                    PutFrom<TV, TO>(dst, p0, 6, skip, f, c6, accumulate); PutFrom<TV, TO>(dst, p0, 7, skip, f, c7, accumulate); PutFrom<TV, TO>(dst, p0, 8, skip, f, c8, accumulate);
                    PutFrom<TV, TO>(dst, p0, 9, skip, f, c9, accumulate); PutFrom<TV, TO>(dst, p0, 10, skip, f, cA, accumulate); PutFrom<TV, TO>(dst, p0, 11, skip, f, cB, accumulate);
                    done = ox0 + RowTile;
                }
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
        int ho = PaddedHeight - ks + 1, wo = wp - ks + 1, run = ks * c, half = run / 2, positions = ho * wo;
        long imageIn = (long)PaddedHeight * wp * c, imageOut = (long)ho * wo * f;
        bool accumulate = Accumulate;
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, dst = Output + img * imageOut;
            for (int p0 = 0; p0 < positions; p0 += 6)
            {
                long o0 = Origin(p0, positions, wo, wp, c), o1 = Origin(p0 + 1, positions, wo, wp, c), o2 = Origin(p0 + 2, positions, wo, wp, c),
                     o3 = Origin(p0 + 3, positions, wo, wp, c), o4 = Origin(p0 + 4, positions, wo, wp, c), o5 = Origin(p0 + 5, positions, wo, wp, c);
                TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                   c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
                for (int ky = 0; ky < ks; ky++)
                {
                    float* row = src + (long)ky * wp * c, a0 = row + o0, a1 = row + o1, a2 = row + o2, a3 = row + o3, a4 = row + o4, a5 = row + o5;
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
                Put<TV, TO>(dst, p0 + 0, positions, f, 0, f, TO.Add(c00, c01), default, accumulate);
                Put<TV, TO>(dst, p0 + 1, positions, f, 0, f, TO.Add(c10, c11), default, accumulate);
                Put<TV, TO>(dst, p0 + 2, positions, f, 0, f, TO.Add(c20, c21), default, accumulate);
                Put<TV, TO>(dst, p0 + 3, positions, f, 0, f, TO.Add(c30, c31), default, accumulate);
                Put<TV, TO>(dst, p0 + 4, positions, f, 0, f, TO.Add(c40, c41), default, accumulate);
                Put<TV, TO>(dst, p0 + 5, positions, f, 0, f, TO.Add(c50, c51), default, accumulate);
            }
        }
    }

    // Where output position p (of Ho·Wo) reads its patch in a padded image: (oy·Wp + ox)·C. A tile takes six
    // consecutive output positions, so a row of the tile may start a new image row; the tile past the last position
    // reads the last one again (and does not write it). Tiles over the padded grid's positions instead computed its
    // KW − 1 extra columns and dropped them, two of every nine positions of a 7 × 7 image.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static long Origin(int p, int positions, int wo, int wp, int c)
    {
        p = Math.Min(p, positions - 1);
        int oy = p / wo;
        return ((long)oy * wp + p - oy * wo) * c;
    }

    // Writes (or adds) position p0 + t of a row tile of one vector of outputs, unless it is one of the first `skip` (no
    // limit on the position for Put: a row tile lies inside its output row).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PutFrom<TV, TO>(float* dst, int p0, int t, int skip, int f, TV sums, bool accumulate) where TV : unmanaged where TO : ISimd<TV>
    {
        if (t >= skip) Put<TV, TO>(dst, p0 + t, int.MaxValue, f, 0, f, sums, default, accumulate);
    }

    // Writes (or adds) the n ≤ 2W columns of output position p, unless p is past the last one.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put<TV, TO>(float* dst, int p, int positions, int f, int col, int n, TV lo, TV hi, bool accumulate)
        where TV : unmanaged where TO : ISimd<TV>
    {
        if (p >= positions) return;
        float* at = dst + (long)p * f + col;
        int w = TO.Count, n0 = Math.Min(w, n), n1 = n - n0;
        var l = new Vec<TV, TO>(lo);
        var h = new Vec<TV, TO>(hi);
        if (accumulate)
        {
            l += Lanes.Load<TV, TO>(at, n0);
            if (n1 > 0) h += Lanes.Load<TV, TO>(at + w, n1);
        }
        Lanes.Store(at, l, n0);
        if (n1 > 0) Lanes.Store(at + w, h, n1);
    }
}

/// <summary>
/// Part[col][ky·KW·C + j] += Σ_images Σ_q Source[(q + ky·Wp)·C + j] · Grads[q·F + col]: the weight gradient
/// dW = dyᵀ·im2col(x) in W's (F, KH, KW, C) layout, where Grads is dy laid on the padded grid (zero at the dropped
/// columns — the padded dy, offset by one row and one column, is exactly that) and Part is added to, not overwritten.
/// </summary>
/// <remarks>
/// A tile is <see cref="TileFilters"/> filters × three vectors of one kernel row's values (KW·C contiguous floats in
/// the image): at each position it loads the three vectors and broadcasts the filters' dy, 11 loads for 24
/// multiply-adds under AVX-512. Tiles of filters × kernel-row values rather than kernel-row values × filters, since
/// F can be as narrow as one vector (16 filters): a tile two vectors wide in F spent half its multiply-adds on the
/// next position's dy there. Every tile reads the whole image, so the positions are taken a block at a time, sized
/// for the block's images and gradients to stay in L1 while all tiles pass over it (streaming each tile over the
/// whole image from L2 left the kernel waiting on L2 half the time); the tiles' accumulators live in
/// <see cref="Tiles"/> (<see cref="TileFloats"/>) between blocks. Lanes past a kernel row and filters past F read
/// neighbouring values (within the callers' slack) into sums that are dropped.
/// </remarks>
internal unsafe struct PatchGradient : IVecKernel
{
    public float* Source, Grads, Part;
    public int Images, Channels, Kernel, PaddedHeight, PaddedWidth, OutChannels;
    /// <summary>Floats from one image's Grads to the next.</summary>
    public long GradImage;
    /// <summary>Scratch of <see cref="TileFloats"/> floats.</summary>
    public float* Tiles;

    /// <summary>Scratch floats the kernel needs at any width: one tile per (ky, three vectors of a kernel row, filter group).</summary>
    public static int TileFloats(int kernel, int channels, int outChannels)
    {
        int w = ConvolutionKernels.Strip / 2; // the widest width has the most padding past a kernel row
        return kernel * (kernel * channels + 3 * w) * (outChannels + 8);
    }

    // Filters of a tile: 8 (24 accumulators) in AVX-512's 32 registers, 4 (12) in the 16 of AVX2 and SSE.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int TileFilters<TV, TO>() where TV : unmanaged where TO : ISimd<TV> => TO.Count == 16 && Vector512.IsHardwareAccelerated ? 8 : 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int c = Channels, ks = Kernel, wp = PaddedWidth, f = OutChannels, w = TO.Count, span = 3 * w, r = TileFilters<TV, TO>();
        int ho = PaddedHeight - ks + 1, wo = wp - ks + 1, run = ks * c, k = ks * run;
        int chunks = (run + span - 1) / span, groups = (f + r - 1) / r, tileSize = r * span;
        long imageIn = (long)PaddedHeight * wp * c;
        // Grid rows per block: its source rows (the block and KH − 1 rows of the grid below it) and its gradient rows
        // in about 24 KB of the 32 KB L1.
        int block = Math.Clamp((6144 - (ks - 1) * wp * c) / ((c + f) * wp), 1, ho);
        float* tiles = Tiles;
        new Span<float>(tiles, ks * chunks * groups * tileSize).Clear();
        for (int img = 0; img < Images; img++)
        {
            float* src = Source + img * imageIn, grads = Grads + img * GradImage;
            for (int y0 = 0; y0 < ho; y0 += block)
            {
                int rows = Math.Min(block, ho - y0), q0 = y0 * wp;
                float* tile = tiles;
                for (int ky = 0; ky < ks; ky++)
                    for (int j0 = 0; j0 < run; j0 += span)
                        for (int g = 0; g < f; g += r, tile += tileSize)
                            Tile<TV, TO>(rows, wo, wp, src + (long)(q0 + ky * wp) * c + j0, c, grads + (long)q0 * f + g, f, tile);
            }
        }
        float* t = tiles;
        for (int ky = 0; ky < ks; ky++)
            for (int j0 = 0; j0 < run; j0 += span)
                for (int g = 0; g < f; g += r, t += tileSize)
                {
                    int values = Math.Min(span, run - j0), filters = Math.Min(r, f - g);
                    for (int o = 0; o < filters; o++)
                    {
                        float* dst = Part + (long)(g + o) * k + ky * run + j0;
                        for (int j = 0; j < values; j++) dst[j] += t[o * span + j];
                    }
                }
    }

    // tile[o][0..3W) += Σ_p dy[p·f + o] · x[p·c + 0..3W) for the tile's filters o, over the positions p = y·wp + ox of
    // the block's rows y with ox < wo: the KW − 1 dropped columns of each grid row (their dy is zero) are skipped,
    // a fifth of the positions of a 7 × 7 image.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<TV, TO>(int rows, int wo, int wp, float* x, int c, float* dy, int f, float* tile) where TV : unmanaged where TO : ISimd<TV>
    {
        int w = TO.Count, r = TileFilters<TV, TO>(), span = 3 * w;
        TV s00 = TO.Load(tile), s01 = TO.Load(tile + w), s02 = TO.Load(tile + 2 * w);
        TV s10 = TO.Load(tile + span), s11 = TO.Load(tile + span + w), s12 = TO.Load(tile + span + 2 * w);
        TV s20 = TO.Load(tile + 2 * span), s21 = TO.Load(tile + 2 * span + w), s22 = TO.Load(tile + 2 * span + 2 * w);
        TV s30 = TO.Load(tile + 3 * span), s31 = TO.Load(tile + 3 * span + w), s32 = TO.Load(tile + 3 * span + 2 * w);
        TV s40 = default, s41 = default, s42 = default, s50 = default, s51 = default, s52 = default;
        TV s60 = default, s61 = default, s62 = default, s70 = default, s71 = default, s72 = default;
        if (r > 4)
        {
            s40 = TO.Load(tile + 4 * span); s41 = TO.Load(tile + 4 * span + w); s42 = TO.Load(tile + 4 * span + 2 * w);
            s50 = TO.Load(tile + 5 * span); s51 = TO.Load(tile + 5 * span + w); s52 = TO.Load(tile + 5 * span + 2 * w);
            s60 = TO.Load(tile + 6 * span); s61 = TO.Load(tile + 6 * span + w); s62 = TO.Load(tile + 6 * span + 2 * w);
            s70 = TO.Load(tile + 7 * span); s71 = TO.Load(tile + 7 * span + w); s72 = TO.Load(tile + 7 * span + 2 * w);
        }
        for (int y = 0; y < rows; y++, x += (wp - wo) * c, dy += (wp - wo) * f)
        {
            for (int p = 0; p < wo; p++, x += c, dy += f)
            {
                var x0 = TO.Load(x);
                var x1 = TO.Load(x + w);
                var x2 = TO.Load(x + 2 * w);
                var d = TO.Broadcast(dy); s00 = TO.MultiplyAdd(d, x0, s00); s01 = TO.MultiplyAdd(d, x1, s01); s02 = TO.MultiplyAdd(d, x2, s02);
                d = TO.Broadcast(dy + 1); s10 = TO.MultiplyAdd(d, x0, s10); s11 = TO.MultiplyAdd(d, x1, s11); s12 = TO.MultiplyAdd(d, x2, s12);
                d = TO.Broadcast(dy + 2); s20 = TO.MultiplyAdd(d, x0, s20); s21 = TO.MultiplyAdd(d, x1, s21); s22 = TO.MultiplyAdd(d, x2, s22);
                d = TO.Broadcast(dy + 3); s30 = TO.MultiplyAdd(d, x0, s30); s31 = TO.MultiplyAdd(d, x1, s31); s32 = TO.MultiplyAdd(d, x2, s32);
                if (r > 4)
                {
                    d = TO.Broadcast(dy + 4); s40 = TO.MultiplyAdd(d, x0, s40); s41 = TO.MultiplyAdd(d, x1, s41); s42 = TO.MultiplyAdd(d, x2, s42);
                    d = TO.Broadcast(dy + 5); s50 = TO.MultiplyAdd(d, x0, s50); s51 = TO.MultiplyAdd(d, x1, s51); s52 = TO.MultiplyAdd(d, x2, s52);
                    d = TO.Broadcast(dy + 6); s60 = TO.MultiplyAdd(d, x0, s60); s61 = TO.MultiplyAdd(d, x1, s61); s62 = TO.MultiplyAdd(d, x2, s62);
                    d = TO.Broadcast(dy + 7); s70 = TO.MultiplyAdd(d, x0, s70); s71 = TO.MultiplyAdd(d, x1, s71); s72 = TO.MultiplyAdd(d, x2, s72);
                }
            }
        }
        TO.Store(tile, s00); TO.Store(tile + w, s01); TO.Store(tile + 2 * w, s02);
        TO.Store(tile + span, s10); TO.Store(tile + span + w, s11); TO.Store(tile + span + 2 * w, s12);
        TO.Store(tile + 2 * span, s20); TO.Store(tile + 2 * span + w, s21); TO.Store(tile + 2 * span + 2 * w, s22);
        TO.Store(tile + 3 * span, s30); TO.Store(tile + 3 * span + w, s31); TO.Store(tile + 3 * span + 2 * w, s32);
        if (r > 4)
        {
            TO.Store(tile + 4 * span, s40); TO.Store(tile + 4 * span + w, s41); TO.Store(tile + 4 * span + 2 * w, s42);
            TO.Store(tile + 5 * span, s50); TO.Store(tile + 5 * span + w, s51); TO.Store(tile + 5 * span + 2 * w, s52);
            TO.Store(tile + 6 * span, s60); TO.Store(tile + 6 * span + w, s61); TO.Store(tile + 6 * span + 2 * w, s62);
            TO.Store(tile + 7 * span, s70); TO.Store(tile + 7 * span + w, s71); TO.Store(tile + 7 * span + 2 * w, s72);
        }
    }
}
