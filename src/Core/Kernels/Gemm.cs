using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// Single-precision matrix multiply, row-major: <c>C = alpha · op(A) · op(B) + beta · C</c>, where
/// <c>op(X)</c> is <c>X</c> or <c>Xᵀ</c>. op(A) is m×k, op(B) is k×n, C is m×n.
/// </summary>
/// <remarks>
/// The fast path follows the Goto/BLIS structure: op(B) is packed once into column panels of <see cref="NR"/>
/// (one <see cref="PackedMatrix"/>, reusable across calls — the recurrent weights are packed once per sequence),
/// op(A) is packed per (KC × MC) block into row panels of <see cref="MR"/>, and a register-blocked
/// MR × NR FMA micro-kernel (<see cref="Vector512{T}"/>, or <see cref="Vector256{T}"/> halves) accumulates into C;
/// a single row (batch 1) takes a one-row kernel instead. Work is split over threads by row blocks for tall
/// problems and by column panels for short ones; every element of C is computed by one thread with one fixed
/// summation order, so results do not depend on the thread count.
/// </remarks>
public static unsafe class Gemm
{
    /// <summary>Rows of the micro-kernel tile.</summary>
    public const int MR = 6;
    /// <summary>Columns of the micro-kernel tile (two <see cref="Vector512{T}"/> or four <see cref="Vector256{T}"/> of floats).</summary>
    public const int NR = 32;
    internal const int KC = 256; // a KC × NR panel of B (32 KB) stays in L1
    internal const int MC = 96;  // an MC × KC block of A (96 KB) stays in L2

    // Below this many multiply-adds (about 20 µs on one core), waking a second core costs more than it saves.
    const long ParallelThreshold = 1 << 20;

    /// <summary>Maximum number of threads one multiply uses; defaults to the processor count.</summary>
    public static int MaxThreads { get; set; } = Environment.ProcessorCount;

    // Set while a caller already keeps every core busy (e.g. the two directions of a bidirectional layer run
    // side by side): multiplies on this thread then stay on it.
    [ThreadStatic] static bool t_serial;

    /// <summary>Runs <paramref name="work"/> with every multiply on the calling thread.</summary>
    public static void Serially(Action work)
    {
        bool saved = t_serial;
        t_serial = true;
        try { work(); }
        finally { t_serial = saved; }
    }

    static bool Fast => Vector256.IsHardwareAccelerated;

    /// <summary>C = alpha · op(A) · op(B) + beta · C on spans (see the class remarks for the shapes).</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckOperand(transA, m, k, a.Length, lda, "A");
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        CheckOperand(false, m, n, c.Length, ldc, "C");
        if (m == 0 || n == 0) return;
        if (!Fast || k == 0)
        {
            GemmReference.Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        using var packed = PackedMatrix.Rent(k, n);
        packed.Pack(transB, b, ldb);
        Multiply(transA, m, alpha, a, lda, packed, beta, c, ldc);
    }

    /// <summary>C = alpha · op(A) · B + beta · C where B was packed beforehand (k × n).</summary>
    public static void Multiply(bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        PackedMatrix b, float beta, Span<float> c, int ldc)
    {
        int n = b.Columns, k = b.Rows;
        CheckOperand(transA, m, k, a.Length, lda, "A");
        CheckOperand(false, m, n, c.Length, ldc, "C");
        if (m == 0 || n == 0) return;
        fixed (float* pa = a)
        fixed (float* pc = c)
        {
            ScaleC(m, n, beta, pc, ldc);
            if (k == 0 || alpha == 0f) return;
            if (!Fast)
            {
                GemmReference.MultiplyPacked(transA, m, alpha, pa, lda, b, pc, ldc);
                return;
            }
            int panels = b.Panels;
            if (m == 1)
            {
                RowTimesPanels(transA ? lda : 1, alpha, pa, b, pc); // batch 1: a 6-row tile would waste 5/6 of its work
                return;
            }
            long work = (long)m * n * k;
            int parts = work < ParallelThreshold || t_serial ? 1 : Math.Max(1, MaxThreads);
            if (parts == 1)
            {
                Compute(transA, alpha, 0, m, 0, panels, k, pa, lda, b, pc, ldc);
                return;
            }
            nint ia = (nint)pa, ic = (nint)pc;
            // Tall problems split by rows, so each thread packs only its own rows of A; short ones (a recurrent
            // step: m = batch) split by column panels of the shared packed B.
            bool byPanels = m < 2 * parts * MC && panels >= parts;
            int units = byPanels ? panels : (m + MR - 1) / MR;
            parts = Math.Min(parts, units);
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                int u0 = (int)((long)units * part / parts), u1 = (int)((long)units * (part + 1) / parts);
                if (byPanels) Compute(transA, alpha, 0, m, u0, u1, k, (float*)ia, lda, b, (float*)ic, ldc);
                else Compute(transA, alpha, u0 * MR, Math.Min(m, u1 * MR), 0, panels, k, (float*)ia, lda, b, (float*)ic, ldc);
            });
        }
    }

    static void CheckOperand(bool trans, int rows, int cols, int length, int ld, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(name, $"Dimensions of {name} must be non-negative, got {rows}×{cols}.");
        int storedRows = trans ? cols : rows, storedCols = trans ? rows : cols;
        if (storedRows == 0 || storedCols == 0) return;
        if (ld < storedCols) throw new ArgumentOutOfRangeException(name, $"Leading dimension of {name} ({ld}) is smaller than its row length ({storedCols}).");
        if ((long)(storedRows - 1) * ld + storedCols > length)
            throw new ArgumentException($"{name} holds {length} values; {storedRows}×{storedCols} with leading dimension {ld} needs {(long)(storedRows - 1) * ld + storedCols}.", name);
    }

    static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear(); // also clears NaN garbage, as BLAS does for beta = 0
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    // Rows [m0, m1) of C, column panels [j0, j1) of packed B.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip the tiered JIT's slow tiers
    static void Compute(bool transA, float alpha, int m0, int m1, int j0, int j1, int k,
        float* a, int lda, PackedMatrix b, float* c, int ldc)
    {
        float* packA = ThreadBuffers.A;
        float* tile = stackalloc float[MR * NR];
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            for (int ic = m0; ic < m1; ic += MC)
            {
                int mc = Math.Min(MC, m1 - ic);
                PackA(transA, alpha, a, lda, ic, mc, pc, kc, packA);
                for (int jp = j0; jp < j1; jp++)
                {
                    float* pb = b.Panel(pc, kc, jp);
                    int jc = jp * NR, nr = Math.Min(NR, b.Columns - jc);
                    for (int ir = 0; ir < mc; ir += MR)
                    {
                        int mr = Math.Min(MR, mc - ir);
                        float* cij = c + (long)(ic + ir) * ldc + jc;
                        if (mr == MR && nr == NR)
                            Kernel(kc, packA + ir * kc, pb, cij, ldc);
                        else
                        {
                            // Edge tile: compute the full tile on zero-padded panels, add only the valid part.
                            new Span<float>(tile, MR * NR).Clear();
                            Kernel(kc, packA + ir * kc, pb, tile, NR);
                            for (int i = 0; i < mr; i++)
                                for (int j = 0; j < nr; j++) cij[(long)i * ldc + j] += tile[i * NR + j];
                        }
                    }
                }
            }
        }
    }

    // Packs rows [i0, i0+mc) and depth [p0, p0+kc) of op(A) into MR-row panels: panel r holds, for each p,
    // the MR values alpha · op(A)[i0 + r·MR + 0..MR-1, p0 + p]; rows past mc are zero.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA(bool transA, float alpha, float* a, int lda, int i0, int mc, int p0, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dst + ir * kc;
            for (int p = 0; p < kc; p++)
            {
                float* d = panel + p * MR;
                int r = 0;
                if (transA)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    for (; r < mr; r++) d[r] = alpha * src[r];
                }
                else
                {
                    float* src = a + (long)(i0 + ir) * lda + p0 + p;
                    for (; r < mr; r++) d[r] = alpha * src[(long)r * lda];
                }
                for (; r < MR; r++) d[r] = 0f;
            }
        }
    }

    /// <summary>The MR × NR micro-kernel: C[0..6, 0..32] += Apanel · Bpanel over kc steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Kernel(int kc, float* a, float* b, float* c, int ldc)
    {
        // Widths tried 512 → 256: with 256-bit vectors the tile is done as two 6 × 16 halves, which keeps
        // the 12 accumulators within the 16 registers of AVX2.
        if (Vector512.IsHardwareAccelerated) Kernel6x32(kc, a, b, c, ldc);
        else { Kernel6x16(kc, a, b, c, ldc); Kernel6x16(kc, a, b + 16, c + 16, ldc); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x32(int kc, float* a, float* b, float* c, int ldc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            a += MR; b += NR;
        }
        AddRow(c, c00, c01); AddRow(c + ldc, c10, c11); AddRow(c + 2L * ldc, c20, c21);
        AddRow(c + 3L * ldc, c30, c31); AddRow(c + 4L * ldc, c40, c41); AddRow(c + 5L * ldc, c50, c51);
    }

    // Columns 0..16 of a 32-wide panel (call with b + 16, c + 16 for the other half).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int kc, float* a, float* b, float* c, int ldc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += MR; b += NR;
        }
        AddRow(c, c00, c01); AddRow(c + ldc, c10, c11); AddRow(c + 2L * ldc, c20, c21);
        AddRow(c + 3L * ldc, c30, c31); AddRow(c + 4L * ldc, c40, c41); AddRow(c + 5L * ldc, c50, c51);
    }

    // c[0..n) += alpha · a · B for one row a (elements a[p·stride]), two panels at a time.
    static void RowTimesPanels(int stride, float alpha, float* a, PackedMatrix b, float* c)
    {
        int k = b.Rows, n = b.Columns, panels = b.Panels;
        float* tile = stackalloc float[2 * NR];
        for (int jp = 0; jp < panels; jp += 2)
        {
            bool pair = jp + 1 < panels;
            new Span<float>(tile, 2 * NR).Clear();
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                RowKernel(kc, a + (long)pc * stride, stride, b.Panel(pc, kc, jp), pair ? b.Panel(pc, kc, jp + 1) : b.Panel(pc, kc, jp), tile);
            }
            int j0 = jp * NR, nr = Math.Min(pair ? 2 * NR : NR, n - j0);
            for (int j = 0; j < nr; j++) c[j0 + j] += alpha * tile[j];
        }
    }

    // tile[0..64) += a · [panel0 | panel1] over kc steps. Eight independent accumulators hide the FMA latency
    // that a single row cannot interleave otherwise; they are locals of a call-free loop so they stay in registers.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RowKernel(int kc, float* a, int stride, float* p0, float* p1, float* tile)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        for (int p = 0; p < kc; p++, a += stride, p0 += NR, p1 += NR)
        {
            var x = Vector256.Create(*a);
            s0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p0), s0);
            s1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p0 + 8), s1);
            s2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p0 + 16), s2);
            s3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p0 + 24), s3);
            s4 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p1), s4);
            s5 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p1 + 8), s5);
            s6 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p1 + 16), s6);
            s7 = Vector256.FusedMultiplyAdd(x, Vector256.Load(p1 + 24), s7);
        }
        (Vector256.Load(tile) + s0).Store(tile); (Vector256.Load(tile + 8) + s1).Store(tile + 8);
        (Vector256.Load(tile + 16) + s2).Store(tile + 16); (Vector256.Load(tile + 24) + s3).Store(tile + 24);
        (Vector256.Load(tile + 32) + s4).Store(tile + 32); (Vector256.Load(tile + 40) + s5).Store(tile + 40);
        (Vector256.Load(tile + 48) + s6).Store(tile + 48); (Vector256.Load(tile + 56) + s7).Store(tile + 56);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddRow(float* c, Vector512<float> lo, Vector512<float> hi)
    {
        (Vector512.Load(c) + lo).Store(c);
        (Vector512.Load(c + 16) + hi).Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddRow(float* c, Vector256<float> lo, Vector256<float> hi)
    {
        (Vector256.Load(c) + lo).Store(c);
        (Vector256.Load(c + 8) + hi).Store(c + 8);
    }

    static class ThreadBuffers
    {
        [ThreadStatic] static float[]? a;
        // Pinned (on the pinned object heap) so that the panel keeps its address while a kernel runs.
        public static float* A => Pinned.Address(a ??= Pinned.Allocate(MC * KC));
    }
}

/// <summary>
/// The right-hand operand of <see cref="Gemm"/> packed into NR-column panels per KC-deep block, zero-padded.
/// Pack it once and reuse it while the matrix does not change (e.g. a recurrent weight over all time steps).
/// </summary>
public sealed unsafe class PackedMatrix : IDisposable
{
    float[] _buffer = [];
    long _packedVersion = -1; // what was packed last (PackIfChanged), with its transposition and leading dimension
    bool _sourceTransposed;
    int _sourceLd;
    bool _rented;

    /// <summary>Rows (k) of the packed matrix op(B).</summary>
    public int Rows { get; private set; }
    /// <summary>Columns (n) of the packed matrix op(B).</summary>
    public int Columns { get; private set; }
    internal int Panels => (Columns + Gemm.NR - 1) / Gemm.NR;

    /// <summary>Creates storage for a k × n matrix; fill it with <see cref="Pack"/>.</summary>
    public PackedMatrix(int rows, int columns)
    {
        Resize(rows, columns);
    }

    [ThreadStatic] static PackedMatrix? s_spare;

    // One spare per thread for the span overload of Gemm.Multiply: no allocation in steady state.
    internal static PackedMatrix Rent(int rows, int columns)
    {
        var m = s_spare ?? new PackedMatrix(rows, columns);
        s_spare = null;
        m.Resize(rows, columns);
        m._rented = true;
        return m;
    }

    void Resize(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        Rows = rows; Columns = columns;
        long need = (long)Panels * Gemm.NR * rows;
        if (need > Pinned.Capacity(_buffer)) _buffer = Pinned.Allocate(checked((int)need));
    }

    /// <summary>Packs op(B), where B is row-major with leading dimension <paramref name="ldb"/>.</summary>
    public void Pack(bool transB, ReadOnlySpan<float> b, int ldb)
    {
        int k = Rows, n = Columns, panels = Panels;
        if (k == 0 || n == 0) return;
        int storedCols = transB ? k : n, storedRows = transB ? n : k;
        if (ldb < storedCols || (long)(storedRows - 1) * ldb + storedCols > b.Length)
            throw new ArgumentException($"B ({b.Length} values, leading dimension {ldb}) is too small for {k}×{n}.", nameof(b));
        fixed (float* pb = b)
        {
            // Large matrices pack their panels on every core: packing is memory-bound, and otherwise serial.
            if ((long)k * n >= 1 << 18 && Gemm.MaxThreads > 1 && panels > 1)
            {
                nint src = (nint)pb;
                int parts = Math.Min(Gemm.MaxThreads, panels);
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
                    part => PackPanels(transB, (float*)src, ldb, panels * part / parts, panels * (part + 1) / parts));
            }
            else PackPanels(transB, pb, ldb, 0, panels);
        }
    }

    void PackPanels(bool transB, float* pb, int ldb, int jp0, int jp1)
    {
        int k = Rows, n = Columns;
        for (int pc = 0; pc < k; pc += Gemm.KC)
        {
            int kc = Math.Min(Gemm.KC, k - pc);
            for (int jp = jp0; jp < jp1; jp++)
            {
                float* dst = Panel(pc, kc, jp);
                int j0 = jp * Gemm.NR, nr = Math.Min(Gemm.NR, n - j0);
                if (!transB)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = pb + (long)(pc + p) * ldb + j0;
                        float* d = dst + p * Gemm.NR;
                        if (nr == Gemm.NR)
                        {
                            Vector256.Load(src).Store(d); Vector256.Load(src + 8).Store(d + 8);
                            Vector256.Load(src + 16).Store(d + 16); Vector256.Load(src + 24).Store(d + 24);
                            continue;
                        }
                        int j = 0;
                        for (; j < nr; j++) d[j] = src[j];
                        for (; j < Gemm.NR; j++) d[j] = 0f;
                    }
                }
                else
                {
                    // op(B)[p, j] = B[j, p]: read each stored row contiguously.
                    for (int j = 0; j < Gemm.NR; j++)
                    {
                        if (j < nr)
                        {
                            float* src = pb + (long)(j0 + j) * ldb + pc;
                            for (int p = 0; p < kc; p++) dst[p * Gemm.NR + j] = src[p];
                        }
                        else for (int p = 0; p < kc; p++) dst[p * Gemm.NR + j] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs op(B) unless this matrix already holds it: <paramref name="version"/> identifies the values of B
    /// (<see cref="Parameter.Version"/>, which optimisers bump at each step), so weights are packed once per
    /// change, not once per use (a batch-1 forward is dominated by packing otherwise).
    /// </summary>
    public void PackIfChanged(bool transB, ReadOnlySpan<float> b, int ldb, long version)
    {
        if (_packedVersion == version && _sourceTransposed == transB && _sourceLd == ldb) return;
        Pack(transB, b, ldb);
        _packedVersion = version; _sourceTransposed = transB; _sourceLd = ldb;
    }

    // Block at depth pc (kc deep) holds all panels back to back; earlier blocks are KC deep each.
    internal float* Panel(int pc, int kc, int jp) => Pinned.Address(_buffer) + (long)pc * Panels * Gemm.NR + (long)jp * kc * Gemm.NR;

    /// <summary>Value of op(B)[p, j] (for tests and the reference path).</summary>
    internal float this[int p, int j]
    {
        get
        {
            int pc = p / Gemm.KC * Gemm.KC, kc = Math.Min(Gemm.KC, Rows - pc);
            return Panel(pc, kc, j / Gemm.NR)[(p - pc) * Gemm.NR + j % Gemm.NR];
        }
    }

    /// <summary>Returns a rented matrix to its thread's spare slot; otherwise releases the buffer.</summary>
    public void Dispose()
    {
        if (_rented) { _rented = false; s_spare = this; return; }
        _buffer = [];
    }
}
