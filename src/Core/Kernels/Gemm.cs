using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// Single-precision matrix multiply, row-major: <c>C = alpha · op(A) · op(B) + beta · C</c>, where
/// <c>op(X)</c> is <c>X</c> or <c>Xᵀ</c>. op(A) is m×k, op(B) is k×n, C is m×n.
/// </summary>
/// <remarks>
/// The structure is Goto/BLIS's: op(B) is packed once into column panels of <see cref="NR"/>
/// (one <see cref="PackedMatrix"/>, reusable across calls — the recurrent weights are packed once per sequence; for a
/// B given as a span, each panel is packed by the thread that first needs it, right before use),
/// op(A) is packed per (KC × MC) block into row panels of <see cref="MR"/> (a block of at most MC rows of a plain A is
/// read in place instead), and a register-blocked
/// MR × NR multiply-add micro-kernel accumulates into C; a single row (batch 1) takes a one-row kernel instead.
/// The kernels are written once over the vector width and run at the widest the process accelerates:
/// 512-bit, 256-bit, 128-bit (SSE, or AdvSimd on Arm64) or scalar (see <see cref="Lanes"/>); the packed layout
/// is the same at every width. Work is split over threads (<see cref="Threads"/>, run on the persistent
/// <see cref="WorkerPool"/>) by row blocks for tall problems and by column panels for short ones; every element of C
/// is computed by one thread with one fixed summation order, so results do not depend on the thread count. While
/// one thread's multiply uses the pool, a multiply started on another thread at the same time runs on that thread alone.
/// </remarks>
public static unsafe class Gemm
{
    /// <summary>Rows of the micro-kernel tile.</summary>
    public const int MR = 6;
    /// <summary>Columns of a packed panel of B (two 512-bit, four 256-bit or eight 128-bit vectors of floats).</summary>
    public const int NR = 32;
    internal const int KC = 256; // a KC × NR panel of B (32 KB) stays in L1
    internal const int MC = 96;  // an MC × KC block of A (96 KB) stays in L2

    // Below this many multiply-adds (about 20 µs on one core), waking a second core costs more than it saves.
    const long ParallelThreshold = 1 << 20;

    /// <summary>Maximum number of threads one multiply uses, process-wide; defaults to the processor count.</summary>
    public static int MaxThreads { get; set; } = Environment.ProcessorCount;

    // The innermost LimitThreads scope of this execution context (0: none). An AsyncLocal flows into the tasks and
    // Parallel loops started inside the scope, so work a trainer fans out keeps its limit. Setting it allocates,
    // so the per-call paths (pool parts, Serially) use the pool's thread-static flag instead; reading it does not.
    static readonly AsyncLocal<int> s_limit = new();

    /// <summary>
    /// Threads a multiply started here may use: <see cref="MaxThreads"/>, lowered by the enclosing
    /// <see cref="LimitThreads"/> scopes; 1 inside <see cref="Serially"/> and inside a part of a parallel kernel; at least 1.
    /// </summary>
    public static int Threads
    {
        get
        {
            if (WorkerPool.IsSerial) return 1;
            int max = Math.Max(1, MaxThreads), limit = s_limit.Value;
            return limit > 0 ? Math.Min(max, limit) : max;
        }
    }

    /// <summary>
    /// Limits the threads of every multiply (and parallel packing) started in this execution context — the calling
    /// code and the tasks it starts — until the returned scope is disposed. 0 sets no limit. Scopes nest; an inner
    /// scope can lower the enclosing limit, not raise it. Results do not depend on the limit.
    /// </summary>
    public static IDisposable LimitThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        int outer = s_limit.Value;
        s_limit.Value = threads == 0 ? outer : outer == 0 ? threads : Math.Min(outer, threads);
        return new ThreadLimit(outer);
    }

    sealed class ThreadLimit(int outer) : IDisposable
    {
        bool _disposed;
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            s_limit.Value = outer;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> with every multiply on the calling thread (a caller that already keeps every core
    /// busy, e.g. chunks of a batch run side by side). It holds for this thread only, without allocating; tasks that
    /// <paramref name="work"/> starts are not limited (use <see cref="LimitThreads"/> for those).
    /// </summary>
    public static void Serially(Action work) => WorkerPool.Serially(work);

    /// <summary>C = alpha · op(A) · op(B) + beta · C on spans (see the class remarks for the shapes).</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckOperand(transA, m, k, a.Length, lda, "A");
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        CheckOperand(false, m, n, c.Length, ldc, "C");
        if (m == 0 || n == 0) return;
        using var packed = PackedMatrix.Rent(k, n);
        if (m == 1)
        {
            packed.Pack(transB, b, ldb); // the row kernel reads several panels at once
            Multiply(transA, m, alpha, a, lda, packed, beta, c, ldc);
            return;
        }
        // Each panel of B is packed by the part that first needs it, right before its tiles read it (hot in that
        // core's caches), instead of in a pass of its own: a 1024³ product packed 4 MB, then read it back from L3.
        fixed (float* pb = b)
        {
            packed.PackOnFirstUse(transB, pb, ldb);
            try { Multiply(transA, m, alpha, a, lda, packed, beta, c, ldc); }
            finally { packed.EndPackOnFirstUse(); }
        }
    }

    /// <summary>C = alpha · op(A) · B + beta · C where B was packed beforehand (k × n).</summary>
    public static void Multiply(bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        PackedMatrix b, float beta, Span<float> c, int ldc)
        => Lanes.Run(new Product(transA, m, alpha, a, lda, b, beta, c, ldc));

    /// <summary>C = A · B + row for the m rows of C (a layer's bias on every row).</summary>
    internal static void MultiplyAddRow(int m, ReadOnlySpan<float> a, int lda, PackedMatrix b, ReadOnlySpan<float> row, Span<float> c, int ldc)
        => Lanes.Run(new Product(false, m, 1f, a, lda, b, 0f, c, ldc, row));

    /// <summary>
    /// One multiply by a packed B, runnable at any width (<see cref="Lanes.Run{TKernel}"/> picks the widest; tests
    /// pick each): C = alpha · op(A) · B + beta · C, plus <paramref name="row"/> on every row of C when it is not empty.
    /// </summary>
    internal readonly ref struct Product(bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        PackedMatrix b, float beta, Span<float> c, int ldc, ReadOnlySpan<float> row = default) : IVecKernel
    {
        readonly ReadOnlySpan<float> _a = a, _row = row;
        readonly Span<float> _c = c;

        public void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
        {
            int n = b.Columns, k = b.Rows;
            CheckOperand(transA, m, k, _a.Length, lda, "A");
            CheckOperand(false, m, n, _c.Length, ldc, "C");
            if (!_row.IsEmpty && _row.Length < n) throw new ArgumentException($"The row has {_row.Length} values; C has {n} columns.", nameof(row));
            if (m == 0 || n == 0) return;
            fixed (float* pa = _a)
            fixed (float* pc = _c)
            fixed (float* pr = _row)
            {
                // With beta = 0 the tiles write C (and the row) with the product's first depth block instead of adding
                // onto it: no pass to clear C or to copy the row in first, and C is never read (NaN there is ignored, as
                // BLAS does). A single row, no product, or another beta scale C and add the row up front.
                bool overwrite = beta == 0f && m > 1 && k > 0 && alpha != 0f;
                if (!overwrite)
                {
                    ScaleC(m, n, beta, pc, ldc);
                    if (pr != null)
                        for (int i = 0; i < m; i++)
                            System.Numerics.Tensors.TensorPrimitives.Add(new Span<float>(pc + (long)i * ldc, n), _row[..n], new Span<float>(pc + (long)i * ldc, n));
                }
                if (k == 0 || alpha == 0f) return;
                Multiply<TV, TO>(transA, m, alpha, pa, lda, b, pc, ldc, overwrite ? new FirstBlock(pr) : default);
            }
        }
    }

    // How the first depth block's tiles meet C: added onto it (Overwrite false), or written as the tile plus Row
    // (the row of C's columns; null: a row of zeros).
    readonly struct FirstBlock(float* row)
    {
        public bool Overwrite { get; } = true;
        public float* Row { get; } = row;

        // The values a tile at columns jc..jc+NR adds its sums to: null to add onto C.
        public float* At(int jc) => !Overwrite ? null : Row != null ? Row + jc : Zeros;
    }

    // NR zeros, the row a plain beta = 0 product's first block adds its sums to (the array is kept: its address is used).
    static readonly float[] s_zeros = Pinned.AllocateZeroed(NR);
    static float* Zeros => Pinned.Address(s_zeros);

    // C += alpha · op(A) · B, C already scaled by beta (or, for the first depth block, written: see FirstBlock).
    static void Multiply<TV, TO>(bool transA, int m, float alpha, float* pa, int lda, PackedMatrix b, float* pc, int ldc, FirstBlock first)
        where TV : unmanaged where TO : ISimd<TV>
    {
        int n = b.Columns, k = b.Rows, panels = b.Panels;
        if (m == 1)
        {
            RowTimesPanels<TV, TO>(transA ? lda : 1, alpha, pa, b, pc); // batch 1: a 6-row tile would waste 5/6 of its work
            return;
        }
        long work = (long)m * n * k;
        int parts = work < ParallelThreshold ? 1 : Threads;
        if (parts == 1) Compute<TV, TO>(transA, alpha, 0, m, 0, panels, k, pa, lda, b, pc, ldc, first);
        else MultiplyInParallel<TV, TO>(parts, transA, m, alpha, pa, lda, b, pc, ldc, first);
    }

    static void MultiplyInParallel<TV, TO>(int parts, bool transA, int m, float alpha, float* pa, int lda, PackedMatrix b, float* pc, int ldc, FirstBlock first)
        where TV : unmanaged where TO : ISimd<TV>
    {
        // Tall problems split by rows, so each thread packs only its own rows of A; short ones (a recurrent
        // step: m = batch) split by column panels of the shared packed B.
        bool byPanels = m < 2 * parts * MC && b.Panels >= parts;
        int units = byPanels ? b.Panels : (m + MR - 1) / MR;
        parts = Math.Min(parts, units);
        WorkerPool.Run(parts, new ProductPart<TV, TO>(transA, m, alpha, pa, lda, b, pc, ldc, first, byPanels, units, parts));
    }

    // Part p of a split multiply: units (row blocks of MR, or column panels) [units·p/parts, units·(p+1)/parts).
    readonly struct ProductPart<TV, TO>(bool transA, int m, float alpha, float* a, int lda, PackedMatrix b, float* c, int ldc,
        FirstBlock first, bool byPanels, int units, int parts) : IPoolWork where TV : unmanaged where TO : ISimd<TV>
    {
        public void Run(int part)
        {
            int u0 = (int)((long)units * part / parts), u1 = (int)((long)units * (part + 1) / parts);
            if (byPanels) Compute<TV, TO>(transA, alpha, 0, m, u0, u1, b.Rows, a, lda, b, c, ldc, first);
            else Compute<TV, TO>(transA, alpha, u0 * MR, Math.Min(m, u1 * MR), 0, b.Panels, b.Rows, a, lda, b, c, ldc, first, b.Panels * part / parts);
        }
    }

    // True when `length` values hold a row-major rows × columns matrix (rows, columns ≥ 1) with leading dimension ld.
    internal static bool Holds(int length, int rows, int columns, int ld) => ld >= columns && (long)(rows - 1) * ld + columns <= length;

    static void CheckOperand(bool trans, int rows, int cols, int length, int ld, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(name, $"Dimensions of {name} must be non-negative, got {rows}×{cols}.");
        int storedRows = trans ? cols : rows, storedCols = trans ? rows : cols;
        if (storedRows == 0 || storedCols == 0) return;
        if (ld < storedCols) throw new ArgumentOutOfRangeException(name, $"Leading dimension of {name} ({ld}) is smaller than its row length ({storedCols}).");
        if (!Holds(length, storedRows, storedCols, ld))
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

    // Rows [m0, m1) of C, column panels [j0, j1) of packed B. A block of at most MC rows of a plain A is read in place:
    // with so few rows (a recurrent step's batch), packing them cost as much as 8 % of the product, on every thread
    // that shares its columns, while the tiles read A's rows from the cache just as well.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Compute<TV, TO>(bool transA, float alpha, int m0, int m1, int j0, int j1, int k,
        float* a, int lda, PackedMatrix b, float* c, int ldc, FirstBlock first, int firstPanel = 0) where TV : unmanaged where TO : ISimd<TV>
    {
        if (!transA && alpha == 1f && m1 - m0 <= MC) Compute<TV, TO, SpacedRows>(false, 1f, m0, m1, j0, j1, k, a, lda, b, c, ldc, first, firstPanel);
        else Compute<TV, TO, PackedRows>(transA, alpha, m0, m1, j0, j1, k, a, lda, b, c, ldc, first, firstPanel);
    }

    // The panels are taken from the (firstPanel)th of [j0, j1) on, round: parts that share the panels each start at their own
    // share, so that where B is packed on first use each part packs that share and finds the rest packed by the others.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip the tiered JIT's slow tiers
    static void Compute<TV, TO, TA>(bool transA, float alpha, int m0, int m1, int j0, int j1, int k,
        float* a, int lda, PackedMatrix b, float* c, int ldc, FirstBlock first, int firstPanel) where TV : unmanaged where TO : ISimd<TV> where TA : IRowLayout
    {
        float* packA = TA.Spaced ? null : ThreadBuffers.A;
        float* tile = stackalloc float[MR * NR];
        int tileRows = TileRows<TV, TO>();
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            // Row r of a tile at block + r·aRow, its next depth aStep further; a tile's next row of tiles rowStep further.
            nint aStep = TA.Spaced ? 1 : MR, aRow = TA.Spaced ? lda : 1, rowStep = TA.Spaced ? lda : kc;
            for (int ic = m0; ic < m1; ic += MC)
            {
                int mc = Math.Min(MC, m1 - ic);
                float* block = packA;
                if (TA.Spaced) block = a + (long)ic * lda + pc;
                else PackA(transA, alpha, a, lda, ic, mc, pc, kc, packA);
                for (int i = 0, count = j1 - j0; i < count; i++)
                {
                    int jp = j0 + (i + firstPanel) % count;
                    float* pb = b.PackedPanel(pc, kc, jp);
                    int jc = jp * NR, nr = Math.Min(NR, b.Columns - jc);
                    float* set = pc == 0 ? first.At(jc) : null;
                    int ir = 0;
                    if (nr == NR) ir = FullTiles<TV, TO, TA>(kc, mc, block, aStep, aRow, rowStep, pb, c + (long)ic * ldc + jc, ldc, set);
                    for (; ir < mc; ir += tileRows)
                    {
                        int mr = Math.Min(tileRows, mc - ir);
                        EdgeTile<TV, TO, TA>(kc, block + ir * rowStep, aStep, aRow, MR * rowStep, pb, c + (long)(ic + ir) * ldc + jc, ldc, mr, nr, tile, set);
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
        if (transA)
        {
            // op(A)[i, p] = A[p, i]: stored row p holds the block's mc values of depth p side by side, so each row is
            // read once, front to back, and dealt out six at a time to the panels (a weight gradient dGᵀ·X packs a
            // tall dG this way; reading it panel by panel jumped a whole row of dG for every six values).
            var va = Vector128.Create(alpha);
            for (int p = 0; p < kc; p++)
            {
                float* src = a + (long)(p0 + p) * lda + i0, d = dst + p * MR;
                int ir = 0;
                for (; ir + MR <= mc; ir += MR, d += MR * kc)
                {
                    Vector128.Store(va * Vector128.Load(src + ir), d);
                    d[4] = alpha * src[ir + 4]; d[5] = alpha * src[ir + 5];
                }
                if (ir < mc)
                    for (int r = 0; r < MR; r++) d[r] = ir + r < mc ? alpha * src[ir + r] : 0f;
            }
            return;
        }
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dst + ir * kc;
            if (mr == MR)
            {
                // A full panel of row-major A: six row pointers walked together, unrolled. This is the hot packing
                // of an im2col product, whose narrow C (16 or 32 filters) gives each packed value little work.
                float* s0 = a + (long)(i0 + ir) * lda + p0, s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                int done = Avx512F.IsSupported ? InterleaveSixRows(s0, lda, kc, alpha, panel) : 0;
                for (int p = done; p < kc; p++)
                {
                    float* d = panel + p * MR;
                    d[0] = alpha * s0[p]; d[1] = alpha * s1[p]; d[2] = alpha * s2[p];
                    d[3] = alpha * s3[p]; d[4] = alpha * s4[p]; d[5] = alpha * s5[p];
                }
                continue;
            }
            for (int p = 0; p < kc; p++)
            {
                float* d = panel + p * MR, src = a + (long)(i0 + ir) * lda + p0 + p;
                int r = 0;
                for (; r < mr; r++) d[r] = alpha * src[(long)r * lda];
                for (; r < MR; r++) d[r] = 0f;
            }
        }
    }

    // Six rows of A (s0 and the next five, lda apart) into one panel, eight depths at a time: value p of row r goes to
    // panel[6p + r]. Two rows share a 512-bit register, and two two-source permutes put each 16 panel values in place,
    // so 48 values take three stores instead of 48 scalar moves (packing A took 4 % of a 1024³ product; the product is
    // 2 % faster with this). Returns the depths done (a multiple of 8).
    static int InterleaveSixRows(float* s0, nint lda, int kc, float alpha, float* panel)
    {
        // The six index vectors in registers for the whole loop (read from their arrays at each store, they were loads
        // and bounds checks inside it); alpha multiplies always, as in the scalar tail (· 1 changes no value).
        Vector512<int> f0 = s_sixRowsFromFour[0], f1 = s_sixRowsFromFour[1], f2 = s_sixRowsFromFour[2];
        Vector512<int> l0 = s_sixRowsAndLastTwo[0], l1 = s_sixRowsAndLastTwo[1], l2 = s_sixRowsAndLastTwo[2];
        var scale = Vector512.Create(alpha);
        int p = 0;
        for (; p + 8 <= kc; p += 8, panel += 8 * MR)
        {
            float* s = s0 + p;
            var r01 = Vector512.Create(Vector256.Load(s), Vector256.Load(s + lda));
            var r23 = Vector512.Create(Vector256.Load(s + 2 * lda), Vector256.Load(s + 3 * lda));
            var r45 = Vector512.Create(Vector256.Load(s + 4 * lda), Vector256.Load(s + 5 * lda));
            Vector512.Store(scale * Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r01, f0, r23), l0, r45), panel);
            Vector512.Store(scale * Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r01, f1, r23), l1, r45), panel + 16);
            Vector512.Store(scale * Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r01, f2, r23), l2, r45), panel + 32);
        }
        return p;
    }

    // The permutes' indices for the three stores of InterleaveSixRows. Panel value e = 16j + q is row r = e mod 6 at depth
    // p = e / 6, which sits at lane 8·(r mod 2) + p of its pair's register: the first permute takes rows 0–3 from
    // (r01, r23), the second keeps those (lane q) and takes rows 4 and 5 from r45 (16 and up: the second operand).
    static readonly Vector512<int>[] s_sixRowsFromFour = SixRowIndices(first: true), s_sixRowsAndLastTwo = SixRowIndices(first: false);

    static Vector512<int>[] SixRowIndices(bool first)
    {
        var indices = new Vector512<int>[3];
        var lanes = new int[16];
        for (int j = 0; j < 3; j++)
        {
            for (int q = 0; q < 16; q++)
            {
                int e = 16 * j + q, r = e % MR, p = e / MR, lane = 8 * (r % 2) + p;
                lanes[q] = first ? (r < 4 ? 16 * (r / 2) + lane : 0) : (r < 4 ? q : 16 + lane);
            }
            indices[j] = Vector512.Create(lanes);
        }
        return indices;
    }

    // A tile cut by the edge of C (mr rows, nr columns). The strips wholly inside nr go straight into C with a strip of
    // exactly mr rows — a recurrent step's 32 rows end in a tile of 8, to which a 12-row strip would add four rows of waste —
    // and the rest of the tile is computed into a scratch tile on the zero-padded panels of B, of which only the
    // valid part is added (a 16-filter convolution's C is 16 wide, half a panel, on every tile).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void EdgeTile<TV, TO, TA>(int kc, float* a, nint aStep, nint aRow, nint aSecond, float* b, float* c, int ldc, int mr, int nr, float* tile, float* set)
        where TV : unmanaged where TO : ISimd<TV> where TA : IRowLayout
    {
        int strip = 2 * TO.Count, whole = nr / strip * strip;
        for (int q = 0; q < whole; q += strip) Strip<TV, TO, TA>(mr, kc, a, aStep, aRow, aSecond, b + q, c + q, ldc, set == null ? null : set + q);
        if (whole == nr) return;
        if (mr > MR)
        {
            // The columns past the whole strips, six rows at a time through the scratch tile below.
            float* rest = set == null ? null : set + whole;
            EdgeTile<TV, TO, TA>(kc, a, aStep, aRow, aSecond, b + whole, c + whole, ldc, MR, nr - whole, tile, rest);
            EdgeTile<TV, TO, TA>(kc, a + aSecond, aStep, aRow, aSecond, b + whole, c + (long)MR * ldc + whole, ldc, mr - MR, nr - whole, tile, rest);
            return;
        }
        new Span<float>(tile, MR * NR).Clear();
        for (int q = whole; q < NR; q += strip) Strip<TV, TO, TA>(mr, kc, a, aStep, aRow, aSecond, b + q, tile + q, NR, null);
        for (int i = 0; i < mr; i++)
            for (int j = whole; j < nr; j++) c[(long)i * ldc + j] = (set == null ? c[(long)i * ldc + j] : set[j]) + tile[i * NR + j];
    }

    // A strip of mr ≤ 12 rows (see the strip below), compiled for each row count.
    static void Strip<TV, TO, TA>(int mr, int kc, float* a, nint aStep, nint aRow, nint aSecond, float* b, float* c, int ldc, float* set)
        where TV : unmanaged where TO : ISimd<TV> where TA : IRowLayout
    {
        switch (mr)
        {
            case 1: Strip<TV, TO, Rows1, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 2: Strip<TV, TO, Rows2, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 3: Strip<TV, TO, Rows3, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 4: Strip<TV, TO, Rows4, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 5: Strip<TV, TO, Rows5, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 6: Strip<TV, TO, Rows6, TA>(kc, a, aStep, aRow, b, c, ldc, 0, set); break;
            case 7: Strip<TV, TO, Rows7, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
            case 8: Strip<TV, TO, Rows8, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
            case 9: Strip<TV, TO, Rows9, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
            case 10: Strip<TV, TO, Rows10, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
            case 11: Strip<TV, TO, Rows11, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
            default: Strip<TV, TO, Rows12, TA>(kc, a, aStep, aRow, b, c, ldc, aSecond, set); break;
        }
    }

    /// <summary>
    /// The block's whole tiles against one full panel of B (kc × NR): C[r, 0..NR) += A[r] · panel for the rows r of the
    /// tiles of <see cref="TileRows"/> rows that fit in mc; returns the rows done. With AVX-512 a tile is one strip of 12
    /// rows × two 512-bit vectors, which spans the panel. Narrower vectors split the panel into strips of 6 rows × 2W
    /// columns, taken strip by strip over all the rows, so that one strip's columns of B (16 KB at 256-bit) stay in a
    /// 32 KB L1 while the block's rows stream past; tile by tile, the whole panel (32 KB) and A's rows did not fit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int FullTiles<TV, TO, TA>(int kc, int mc, float* block, nint aStep, nint aRow, nint rowStep, float* b, float* c, int ldc, float* set)
        where TV : unmanaged where TO : ISimd<TV> where TA : IRowLayout
    {
        int tileRows = TileRows<TV, TO>(), full = mc / tileRows * tileRows;
        if (tileRows == 2 * MR)
        {
            for (int ir = 0; ir < full; ir += tileRows)
                Strip<TV, TO, Rows12, TA>(kc, block + ir * rowStep, aStep, aRow, b, c + (long)ir * ldc, ldc, MR * rowStep, set);
            return full;
        }
        for (int q = 0; q < NR; q += 2 * TO.Count)
            for (int ir = 0; ir < full; ir += MR)
                Strip<TV, TO, Rows6, TA>(kc, block + ir * rowStep, aStep, aRow, b + q, c + (long)ir * ldc + q, ldc, 0, set == null ? null : set + q);
        return full;
    }

    // Rows of a full tile: 12 (two packed panels of A, 24 accumulators) where AVX-512 gives 32 vector registers, which
    // halves the loads of B per multiply-add; 6 (12 accumulators) in the 16 registers of AVX2 and SSE.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int TileRows<TV, TO>() where TV : unmanaged where TO : ISimd<TV> => TO.Count == 16 && Vector512.IsHardwareAccelerated ? 2 * MR : MR;

    // C[0..R, 0..2W) += Σ_p a_r[p·aStep] · b[p·NR + 0..2W) for rows r < R = TR.Count ≤ 12: columns [0, 2W) of a
    // 32-wide panel (the caller offsets b and c to the strip). Rows 0…5 are a_r = a + r·aRow and rows 6…
    // the same from aSecond floats further: a packed panel of A (aRow = 1, aStep = MR, the second panel MR·kc further)
    // or rows of A read in place (aRow = lda, aStep = 1). TR.Count is a constant in each compiled copy, so
    // the rows past it and their accumulators are compiled away, and so is aRow in the packed copies.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Strip<TV, TO, TR, TA>(int kc, float* a, nint aStep, nint aRow, float* b, float* c, int ldc, nint aSecond, float* set)
        where TV : unmanaged where TO : ISimd<TV> where TR : IRowCount where TA : IRowLayout
    {
        int w = TO.Count, rows = TR.Count;
        nint r1 = TA.Spaced ? aRow : 1, r2 = 2 * r1, r3 = 3 * r1, r4 = 4 * r1, r5 = 5 * r1;
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
           c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
           c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
           c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        float* e = rows > 6 ? a + aSecond : null;
        if (set == null) PrefetchRows<TV, TO>(rows, c, ldc);
        for (int p = 0; p < kc; p++)
        {
            var b0 = TO.Load(b);
            var b1 = TO.Load(b + w);
            var x = TO.Broadcast(a + 0); c00 = TO.MultiplyAdd(x, b0, c00); c01 = TO.MultiplyAdd(x, b1, c01);
            if (rows > 1) { x = TO.Broadcast(a + r1); c10 = TO.MultiplyAdd(x, b0, c10); c11 = TO.MultiplyAdd(x, b1, c11); }
            if (rows > 2) { x = TO.Broadcast(a + r2); c20 = TO.MultiplyAdd(x, b0, c20); c21 = TO.MultiplyAdd(x, b1, c21); }
            if (rows > 3) { x = TO.Broadcast(a + r3); c30 = TO.MultiplyAdd(x, b0, c30); c31 = TO.MultiplyAdd(x, b1, c31); }
            if (rows > 4) { x = TO.Broadcast(a + r4); c40 = TO.MultiplyAdd(x, b0, c40); c41 = TO.MultiplyAdd(x, b1, c41); }
            if (rows > 5) { x = TO.Broadcast(a + r5); c50 = TO.MultiplyAdd(x, b0, c50); c51 = TO.MultiplyAdd(x, b1, c51); }
            if (rows > 6) { x = TO.Broadcast(e + 0); c60 = TO.MultiplyAdd(x, b0, c60); c61 = TO.MultiplyAdd(x, b1, c61); }
            if (rows > 7) { x = TO.Broadcast(e + r1); c70 = TO.MultiplyAdd(x, b0, c70); c71 = TO.MultiplyAdd(x, b1, c71); }
            if (rows > 8) { x = TO.Broadcast(e + r2); c80 = TO.MultiplyAdd(x, b0, c80); c81 = TO.MultiplyAdd(x, b1, c81); }
            if (rows > 9) { x = TO.Broadcast(e + r3); c90 = TO.MultiplyAdd(x, b0, c90); c91 = TO.MultiplyAdd(x, b1, c91); }
            if (rows > 10) { x = TO.Broadcast(e + r4); cA0 = TO.MultiplyAdd(x, b0, cA0); cA1 = TO.MultiplyAdd(x, b1, cA1); }
            if (rows > 11) { x = TO.Broadcast(e + r5); cB0 = TO.MultiplyAdd(x, b0, cB0); cB1 = TO.MultiplyAdd(x, b1, cB1); }
            a += aStep; b += NR;
            if (rows > 6) e += aStep;
        }
        // Row r of C gets its sums added to from_r: C's own row, or for the first depth block of a beta = 0 product the
        // set row (the same for every row; C is then not read).
        float* from = set == null ? c : set;
        nint fromStep = set == null ? ldc : 0;
        AddRow<TV, TO>(c, from, c00, c01);
        if (rows > 1) AddRow<TV, TO>(c + ldc, from + fromStep, c10, c11);
        if (rows > 2) AddRow<TV, TO>(c + 2L * ldc, from + 2 * fromStep, c20, c21);
        if (rows > 3) AddRow<TV, TO>(c + 3L * ldc, from + 3 * fromStep, c30, c31);
        if (rows > 4) AddRow<TV, TO>(c + 4L * ldc, from + 4 * fromStep, c40, c41);
        if (rows > 5) AddRow<TV, TO>(c + 5L * ldc, from + 5 * fromStep, c50, c51);
        if (rows > 6) AddRow<TV, TO>(c + 6L * ldc, from + 6 * fromStep, c60, c61);
        if (rows > 7) AddRow<TV, TO>(c + 7L * ldc, from + 7 * fromStep, c70, c71);
        if (rows > 8) AddRow<TV, TO>(c + 8L * ldc, from + 8 * fromStep, c80, c81);
        if (rows > 9) AddRow<TV, TO>(c + 9L * ldc, from + 9 * fromStep, c90, c91);
        if (rows > 10) AddRow<TV, TO>(c + 10L * ldc, from + 10 * fromStep, cA0, cA1);
        if (rows > 11) AddRow<TV, TO>(c + 11L * ldc, from + 11 * fromStep, cB0, cB1);
    }

    // Asks for the strip's rows of C (2W floats each) while the strip computes, since it adds onto them at the end and
    // they are seldom near: a recurrent step adds onto gates its input projection wrote for all T steps long before
    // (LSTM and BiLSTM forwards: 6–9 % faster with this), and a later depth block of a 1024³ product finds C where the
    // previous block left it, a whole block of B ago (1 %). BLIS's micro-kernels prefetch C the same way.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PrefetchRows<TV, TO>(int rows, float* c, int ldc) where TV : unmanaged where TO : ISimd<TV>
    {
        if (!Sse.IsSupported) return;
        for (int r = 0; r < rows; r++)
        {
            float* row = c + (long)r * ldc;
            Sse.Prefetch0(row);
            Sse.Prefetch0(row + 2 * TO.Count - 1);
        }
    }

    // c[0..2W) = from[0..2W) + (lo, hi); from is c itself when the sums accumulate.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddRow<TV, TO>(float* c, float* from, TV lo, TV hi) where TV : unmanaged where TO : ISimd<TV>
    {
        TO.Store(c, TO.Add(TO.Load(from), lo));
        TO.Store(c + TO.Count, TO.Add(TO.Load(from + TO.Count), hi));
    }

    // c[0..n) += alpha · a · B for one row a (elements a[p·stride]), 8W columns at a time, each KC block's sums
    // added straight into C (no scratch tile to clear and add back column by column: at batch 1 with H = 64 that was
    // a third of an LSTM step).
    static void RowTimesPanels<TV, TO>(int stride, float alpha, float* a, PackedMatrix b, float* c) where TV : unmanaged where TO : ISimd<TV>
    {
        int k = b.Rows, n = b.Columns, span = 8 * TO.Count;
        for (int j0 = 0; j0 < n; j0 += span)
            for (int pc = 0; pc < k; pc += KC)
                RowKernel<TV, TO>(Math.Min(KC, k - pc), a + (long)pc * stride, stride, alpha, b, pc, j0, c + j0, Math.Min(span, n - j0));
    }

    // c[0..valid) += alpha · a · B[pc.., j0 + 0..valid) over kc steps, valid ≤ 8W. Eight independent accumulators hide the
    // FMA latency that a single row cannot interleave otherwise. They and the eight column pointers stay in registers
    // only if no call is made while they are live: the pointers come from one call before them, and the tile below is
    // not cleared (SkipLocalsInit), since clearing is a call after the loop. With either call the JIT kept them on the
    // stack, storing each accumulator and reloading each pointer at every step (AVX2: a third of the speed).
    // Accumulator q reads columns j0 + qW.. of its panel; past the last panel it re-reads that one (and is discarded).
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    static void RowKernel<TV, TO>(int kc, float* a, int stride, float alpha, PackedMatrix b, int pc, int j0, float* c, int valid) where TV : unmanaged where TO : ISimd<TV>
    {
        int w = TO.Count, last = b.Panels - 1;
        float* block = b.Panel(pc, kc, 0);
        float* p0 = Columns(block, kc, last, j0), p1 = Columns(block, kc, last, j0 + w), p2 = Columns(block, kc, last, j0 + 2 * w), p3 = Columns(block, kc, last, j0 + 3 * w);
        float* p4 = Columns(block, kc, last, j0 + 4 * w), p5 = Columns(block, kc, last, j0 + 5 * w), p6 = Columns(block, kc, last, j0 + 6 * w), p7 = Columns(block, kc, last, j0 + 7 * w);
        TV s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        for (nint p = 0, end = (nint)kc * NR; p < end; p += NR, a += stride)
        {
            var x = TO.Broadcast(a);
            s0 = TO.MultiplyAdd(x, TO.Load(p0 + p), s0);
            s1 = TO.MultiplyAdd(x, TO.Load(p1 + p), s1);
            s2 = TO.MultiplyAdd(x, TO.Load(p2 + p), s2);
            s3 = TO.MultiplyAdd(x, TO.Load(p3 + p), s3);
            s4 = TO.MultiplyAdd(x, TO.Load(p4 + p), s4);
            s5 = TO.MultiplyAdd(x, TO.Load(p5 + p), s5);
            s6 = TO.MultiplyAdd(x, TO.Load(p6 + p), s6);
            s7 = TO.MultiplyAdd(x, TO.Load(p7 + p), s7);
        }
        var va = TO.Create(alpha);
        if (valid == 8 * w)
        {
            AddScaled<TV, TO>(c, va, s0); AddScaled<TV, TO>(c + w, va, s1); AddScaled<TV, TO>(c + 2 * w, va, s2); AddScaled<TV, TO>(c + 3 * w, va, s3);
            AddScaled<TV, TO>(c + 4 * w, va, s4); AddScaled<TV, TO>(c + 5 * w, va, s5); AddScaled<TV, TO>(c + 6 * w, va, s6); AddScaled<TV, TO>(c + 7 * w, va, s7);
            return;
        }
        // The last columns of a row: through a tile, since a masked store is a call at some widths, and a call after the
        // loop would make the JIT keep the accumulators on the stack inside it.
        float* tile = stackalloc float[RowSpanMax];
        TO.Store(tile, s0); TO.Store(tile + w, s1); TO.Store(tile + 2 * w, s2); TO.Store(tile + 3 * w, s3);
        TO.Store(tile + 4 * w, s4); TO.Store(tile + 5 * w, s5); TO.Store(tile + 6 * w, s6); TO.Store(tile + 7 * w, s7);
        for (int j = 0; j < valid; j++) c[j] += alpha * tile[j];
    }

    // Columns one call of RowKernel covers at most: eight 512-bit vectors.
    const int RowSpanMax = 8 * 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddScaled<TV, TO>(float* c, TV alpha, TV s) where TV : unmanaged where TO : ISimd<TV> =>
        TO.Store(c, TO.MultiplyAdd(alpha, s, TO.Load(c)));

    // Column j of a packed block kc deep that starts at block: its panel (the last one for j past the end) and offset in it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float* Columns(float* block, int kc, int last, int j) => block + (long)Math.Min(j / NR, last) * kc * NR + j % NR;

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
    // What PackIfChanged packed last: its version, transposition and leading dimension. The version is -1 again
    // whenever anything else is written into the buffer (Pack, PackSideBySide, packing on first use).
    long _packedVersion = -1;
    bool _packedTransposed;
    int _packedLd;
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
        int k = Rows, n = Columns;
        if (k == 0 || n == 0) return;
        int storedCols = transB ? k : n, storedRows = transB ? n : k;
        if (!Gemm.Holds(b.Length, storedRows, storedCols, ldb))
            throw new ArgumentException($"B ({b.Length} values, leading dimension {ldb}) is too small for {k}×{n}.", nameof(b));
        fixed (float* pb = b) PackFrom(transB, pb, ldb, null, 0, n);
    }

    /// <summary>
    /// Packs [L | R]: columns [0, <paramref name="leftColumns"/>) from <paramref name="left"/> and the rest from
    /// <paramref name="right"/>, both row-major with their own leading dimensions, neither transposed (a recurrent
    /// layer's inputs beside its previous states, for both weight gradients in one product).
    /// </summary>
    internal void PackSideBySide(ReadOnlySpan<float> left, int ldl, int leftColumns, ReadOnlySpan<float> right, int ldr)
    {
        int k = Rows, rightColumns = Columns - leftColumns;
        if (k == 0 || Columns == 0) return;
        if (leftColumns < 0 || rightColumns < 0 || !Gemm.Holds(left.Length, k, leftColumns, ldl) || !Gemm.Holds(right.Length, k, rightColumns, ldr))
            throw new ArgumentException($"[L | R] of {k} rows and {leftColumns} + {rightColumns} columns does not fit L ({left.Length} values, leading dimension {ldl}) and R ({right.Length}, {ldr}).");
        fixed (float* pl = left, pr = right) PackFrom(false, pl, ldl, pr, ldr, leftColumns);
    }

    void PackFrom(bool transB, float* pb, int ldb, float* right, int ldr, int leftColumns)
    {
        _packedVersion = -1;
        // Large matrices pack their panels on every core: packing is memory-bound, and otherwise serial.
        int threads = Gemm.Threads, panels = Panels;
        if ((long)Rows * Columns >= 1 << 18 && threads > 1 && panels > 1)
        {
            int parts = Math.Min(threads, panels);
            WorkerPool.Run(parts, new PackPart(this, transB, pb, ldb, right, ldr, leftColumns, parts));
        }
        else PackPanels(transB, pb, ldb, right, ldr, leftColumns, 0, panels);
    }

    // Part p of a split packing: panels [panels·p/parts, panels·(p+1)/parts).
    readonly struct PackPart(PackedMatrix matrix, bool transB, float* b, int ldb, float* right, int ldr, int leftColumns, int parts) : IPoolWork
    {
        public void Run(int part)
        {
            int panels = matrix.Panels;
            matrix.PackPanels(transB, b, ldb, right, ldr, leftColumns, panels * part / parts, panels * (part + 1) / parts);
        }
    }

    // Panels [jp0, jp1) of op(B); columns from leftColumns on come from right (not transposed) when it is given.
    void PackPanels(bool transB, float* pb, int ldb, float* right, int ldr, int leftColumns, int jp0, int jp1)
    {
        for (int pc = 0; pc < Rows; pc += Gemm.KC)
            for (int jp = jp0; jp < jp1; jp++)
                PackPanel(transB, pb, ldb, right, ldr, leftColumns, pc, Math.Min(Gemm.KC, Rows - pc), jp);
    }

    // The panel of depth block pc (kc deep) and columns jp·NR.. of op(B).
    void PackPanel(bool transB, float* pb, int ldb, float* right, int ldr, int leftColumns, int pc, int kc, int jp)
    {
        float* dst = Panel(pc, kc, jp);
        int j0 = jp * Gemm.NR, nr = Math.Min(Gemm.NR, Columns - j0);
        if (!transB)
        {
            int fromLeft = Math.Clamp(leftColumns - j0, 0, nr); // the panel's columns that come from pb
            for (int p = 0; p < kc; p++)
            {
                float* src = pb + (long)(pc + p) * ldb + j0;
                float* d = dst + p * Gemm.NR;
                if (fromLeft == Gemm.NR)
                {
                    Unsafe.CopyBlockUnaligned(d, src, Gemm.NR * sizeof(float)); // widest moves the hardware has
                    continue;
                }
                int j = 0;
                for (; j < fromLeft; j++) d[j] = src[j];
                float* rest = right + (long)(pc + p) * ldr + (j0 - leftColumns);
                for (; j < nr; j++) d[j] = rest[j];
                for (; j < Gemm.NR; j++) d[j] = 0f;
            }
            return;
        }
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

    // Packing on first use: the source of op(B) while a multiply runs, and each panel's state in this multiply's
    // generation g: below 2g not packed, 2g being packed, 2g + 1 packed.
    float* _source;
    bool _sourceTransposed;
    int _sourceLd;
    int[] _panelStates = [];
    int _generation;

    // Makes the panels of op(B) (B row-major, leading dimension ldb, pinned by the caller until EndPackOnFirstUse)
    // packed by whoever first asks for each through PackedPanel.
    internal void PackOnFirstUse(bool transB, float* b, int ldb)
    {
        int count = (Rows + Gemm.KC - 1) / Gemm.KC * Panels;
        if (_panelStates.Length < count || _generation >= int.MaxValue / 2 - 1) { _panelStates = new int[Math.Max(count, _panelStates.Length)]; _generation = 0; }
        _generation++;
        _source = b; _sourceTransposed = transB; _sourceLd = ldb;
        _packedVersion = -1;
    }

    internal void EndPackOnFirstUse() => _source = null;

    // The panel of depth block pc (kc deep) and columns jp·NR.., packed first if it is packed on first use and not yet.
    // One part packs it; a part that asks meanwhile waits for it (the parts start at different panels, so seldom).
    internal float* PackedPanel(int pc, int kc, int jp)
    {
        if (_source != null)
        {
            ref int state = ref _panelStates[pc / Gemm.KC * Panels + jp];
            int packing = 2 * _generation, packed = packing + 1, seen = Volatile.Read(ref state);
            if (seen != packed)
            {
                if (seen < packing && Interlocked.CompareExchange(ref state, packing, seen) == seen)
                {
                    PackPanel(_sourceTransposed, _source, _sourceLd, null, 0, Columns, pc, kc, jp);
                    Volatile.Write(ref state, packed);
                }
                else
                {
                    var wait = new SpinWait();
                    while (Volatile.Read(ref state) != packed) wait.SpinOnce(sleep1Threshold: -1);
                }
            }
        }
        return Panel(pc, kc, jp);
    }

    /// <summary>
    /// Packs op(B) unless this matrix already holds it: <paramref name="version"/> identifies the values of B
    /// (<see cref="Parameter.Version"/>, which optimisers bump at each step), so weights are packed once per
    /// change, not once per use (a batch-1 forward is dominated by packing otherwise).
    /// </summary>
    public void PackIfChanged(bool transB, ReadOnlySpan<float> b, int ldb, long version)
    {
        if (_packedVersion == version && _packedTransposed == transB && _packedLd == ldb) return;
        Pack(transB, b, ldb);
        _packedVersion = version; _packedTransposed = transB; _packedLd = ldb;
    }

    // Block at depth pc (kc deep) holds all panels back to back; earlier blocks are KC deep each.
    internal float* Panel(int pc, int kc, int jp) => Pinned.Address(_buffer) + (long)pc * Panels * Gemm.NR + (long)jp * kc * Gemm.NR;

    /// <summary>Returns a rented matrix to its thread's spare slot; otherwise releases the buffer.</summary>
    public void Dispose()
    {
        if (_rented) { _rented = false; s_spare = this; return; }
        _buffer = [];
    }
}

/// <summary>Where a GEMM strip finds the rows of A (<c>Gemm.Strip</c>), a constant of each compiled copy.</summary>
internal interface IRowLayout
{
    /// <summary>False: row r at a + r (a packed panel); true: row r at a + r·aRow (rows of A in place).</summary>
    static abstract bool Spaced { get; }
}

internal readonly struct PackedRows : IRowLayout { public static bool Spaced => false; }
internal readonly struct SpacedRows : IRowLayout { public static bool Spaced => true; }

/// <summary>Rows of a GEMM strip (<c>Gemm.Strip</c>), a constant of each compiled copy.</summary>
internal interface IRowCount
{
    static abstract int Count { get; }
}

internal readonly struct Rows1 : IRowCount { public static int Count => 1; }
internal readonly struct Rows2 : IRowCount { public static int Count => 2; }
internal readonly struct Rows3 : IRowCount { public static int Count => 3; }
internal readonly struct Rows4 : IRowCount { public static int Count => 4; }
internal readonly struct Rows5 : IRowCount { public static int Count => 5; }
internal readonly struct Rows6 : IRowCount { public static int Count => 6; }
internal readonly struct Rows7 : IRowCount { public static int Count => 7; }
internal readonly struct Rows8 : IRowCount { public static int Count => 8; }
internal readonly struct Rows9 : IRowCount { public static int Count => 9; }
internal readonly struct Rows10 : IRowCount { public static int Count => 10; }
internal readonly struct Rows11 : IRowCount { public static int Count => 11; }
internal readonly struct Rows12 : IRowCount { public static int Count => 12; }
