using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class GemmTests
{
    // Sizes around the tile and block edges (MR = 6, NR = 32, KC = 256, MC = 96) so that every tail path runs.
    public static IEnumerable<object[]> Shapes()
    {
        int[] ms = [1, 5, 6, 7, 10, 32, 97, 200], ns = [1, 31, 32, 33, 65], ks = [1, 17, 256, 300];
        var rng = new Random(3);
        foreach (int m in ms) foreach (int n in ns) foreach (int k in ks)
            if (rng.Next(3) == 0 || (m * n * k) < 2000) yield return [m, n, k, rng.Next(4)];
    }

    [TestMethod]
    [DynamicData(nameof(Shapes))]
    public void MatchesReference(int m, int n, int k, int trans)
    {
        bool ta = (trans & 1) != 0, tb = (trans & 2) != 0;
        var rng = new Random(m * 1000 + n * 10 + k);
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2; // padded leading dimensions
        var a = GradientCheck.Random((ta ? k : m) * lda, rng);
        var b = GradientCheck.Random((tb ? n : k) * ldb, rng);
        var c = GradientCheck.Random(m * ldc, rng);
        var expected = (float[])c.Clone();
        GemmReference.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
        Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c, ldc);
        GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"{m}x{n}x{k} {ta}/{tb}");
    }

    [TestMethod]
    public void BetaZeroIgnoresNaNInC()
    {
        var a = new float[] { 1, 2 }; var b = new float[] { 3, 4 };
        var c = new float[] { float.NaN };
        Gemm.Multiply(false, false, 1, 1, 2, 1f, a, 2, b, 1, 0f, c, 1);
        Assert.AreEqual(11f, c[0]);
    }

    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    public void ResultDoesNotDependOnThreadCount()
    {
        var rng = new Random(1);
        int m = 150, n = 300, k = 520;
        var a = GradientCheck.Random(m * k, rng); var b = GradientCheck.Random(k * n, rng);
        var one = new float[m * n]; var many = new float[m * n];
        int saved = Gemm.MaxThreads;
        try
        {
            Gemm.MaxThreads = 1; Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, one, n);
            Gemm.MaxThreads = 4; Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, many, n);
        }
        finally { Gemm.MaxThreads = saved; }
        CollectionAssert.AreEqual(one, many);
    }

    [TestMethod]
    public void PackedOperandIsReusable()
    {
        var rng = new Random(2);
        int m = 13, n = 70, k = 40;
        var w = GradientCheck.Random(n * k, rng); // stored (n, k): op(B) = wᵀ
        using var packed = new PackedMatrix(k, n);
        packed.Pack(true, w, k);
        for (int rep = 0; rep < 3; rep++)
        {
            var a = GradientCheck.Random(m * k, rng);
            var c = new float[m * n]; var expected = new float[m * n];
            Gemm.Multiply(false, m, 1f, a, k, packed, 0f, c, n);
            GemmReference.Multiply(false, true, m, n, k, 1f, a, k, w, k, 0f, expected, n);
            GradientCheck.AssertClose(expected, c, 1e-5, 1e-5, $"rep {rep}");
        }
    }

    // PackIfChanged skips a version it packed last, but not once something else has been packed into the matrix since.
    [TestMethod]
    public void PackIfChangedPacksAgainAfterAnotherPack()
    {
        var rng = new Random(6);
        int m = 7, n = 40, k = 30;
        var w = GradientCheck.Random(k * n, rng); var other = GradientCheck.Random(k * n, rng); var a = GradientCheck.Random(m * k, rng);
        using var packed = new PackedMatrix(k, n);
        packed.PackIfChanged(false, w, n, version: 5);
        packed.Pack(false, other, n);
        packed.PackIfChanged(false, w, n, version: 5);
        var c = new float[m * n]; var expected = new float[m * n];
        Gemm.Multiply(false, m, 1f, a, k, packed, 0f, c, n);
        GemmReference.Multiply(false, false, m, n, k, 1f, a, k, w, n, 0f, expected, n);
        GradientCheck.AssertClose(expected, c, 1e-5, 1e-5, "version 5 packed again");
    }

    [TestMethod]
    [DataRow(false, 1, 1)]
    [DataRow(false, 300, 70)]
    [DataRow(true, 257, 33)]
    public void SingleRowMatchesReference(bool transA, int k, int n)
    {
        var rng = new Random(k + n);
        int lda = transA ? 3 : k; // a column of a 3-wide matrix when transposed
        var a = GradientCheck.Random(transA ? k * lda : k, rng);
        var w = GradientCheck.Random(k * n, rng);
        using var packed = new PackedMatrix(k, n);
        packed.Pack(false, w, n);
        var c = GradientCheck.Random(n, rng); var expected = (float[])c.Clone();
        Gemm.Multiply(transA, 1, 0.5f, a, lda, packed, 1f, c, n);
        GemmReference.Multiply(transA, false, 1, n, k, 0.5f, a, lda, w, n, 1f, expected, n);
        GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), "single row");
    }

    // Small odd shapes at every width of the ladder: single rows (the one-row kernel), edge tiles, k past one KC
    // block, m past one MC block, both transpositions.
    public static IEnumerable<object[]> WidthShapes()
    {
        (int M, int N, int K)[] shapes = [(1, 1, 1), (1, 33, 17), (1, 161, 300), (2, 3, 5), (7, 33, 300), (13, 65, 31), (97, 70, 40)];
        foreach (var w in Widths.All())
            for (int s = 0; s < shapes.Length; s++)
                yield return [(int)w[0], shapes[s].M, shapes[s].N, shapes[s].K, s % 4];
    }

    [TestMethod]
    [DynamicData(nameof(WidthShapes))]
    public unsafe void MatchesReferenceAtEveryWidth(int bits, int m, int n, int k, int trans)
    {
        bool ta = (trans & 1) != 0, tb = (trans & 2) != 0;
        var rng = new Random(bits + m * 1000 + n * 10 + k);
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
        var a = GradientCheck.Random((ta ? k : m) * lda, rng);
        var b = GradientCheck.Random((tb ? n : k) * ldb, rng);
        var c = GradientCheck.Random(m * ldc, rng);
        var expected = (float[])c.Clone();
        GemmReference.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
        using var packed = new PackedMatrix(k, n);
        packed.Pack(tb, b, ldb);
        Widths.Run(new Gemm.Product(ta, m, 0.75f, a, lda, packed, 0.5f, c, ldc), bits);
        GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"{bits}-bit {m}x{n}x{k} {ta}/{tb}");
    }

    // Every width of C from 1 to past three strips (a strip is two vectors: 16 columns at 256 bits), with full and
    // cut row tiles of every height (6 + 1 … 6 + 5 rows, and a recurrent step's 32): the strips of an edge tile that lie
    // inside C are written directly by a strip of exactly its rows, the rest through scratch.
    [TestMethod]
    [DynamicData(nameof(Widths.All), typeof(Widths))]
    public void EdgeTilesOfEveryWidthMatchReference(int bits)
    {
        for (int n = 1; n <= 3 * 16 + 1; n++)
            foreach (int m in (int[])[6, 7, 8, 9, 10, 11, 32])
            {
                var rng = new Random(bits + 100 * n + m);
                int k = 19, ldc = n + 1;
                var a = GradientCheck.Random(m * k, rng); var b = GradientCheck.Random(k * n, rng);
                var c = GradientCheck.Random(m * ldc, rng); var expected = (float[])c.Clone();
                GemmReference.Multiply(false, false, m, n, k, 1f, a, k, b, n, 1f, expected, ldc);
                using var packed = new PackedMatrix(k, n);
                packed.Pack(false, b, n);
                Widths.Run(new Gemm.Product(false, m, 1f, a, k, packed, 1f, c, ldc), bits);
                GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"{bits}-bit {m}x{n}x{k}");
            }
    }

    // A block of at most MC rows of a plain A (alpha = 1) is read in place; any other is packed. Both give the
    // reference, and the same bits: here the packed side is the same A stored transposed. Rows around the tile
    // heights and up to MC, a padded lda, and depths past one KC block.
    [TestMethod]
    [DynamicData(nameof(Widths.All), typeof(Widths))]
    public void RowsReadInPlaceMatchPackedRows(int bits)
    {
        foreach (int m in (int[])[2, 5, 6, 7, 12, 13, 32, 96])
            foreach (int n in (int[])[1, 33, 65])
                foreach (int k in (int[])[1, 17, 300])
                {
                    var rng = new Random(bits + 10_000 * m + 100 * n + k);
                    int lda = k + 3, ldc = n + 1;
                    var a = GradientCheck.Random(m * lda, rng); var b = GradientCheck.Random(k * n, rng);
                    var aT = new float[k * m];
                    for (int i = 0; i < m; i++)
                        for (int p = 0; p < k; p++) aT[p * m + i] = a[i * lda + p];
                    var c = GradientCheck.Random(m * ldc, rng);
                    var expected = (float[])c.Clone(); var packedSide = (float[])c.Clone();
                    GemmReference.Multiply(false, false, m, n, k, 1f, a, lda, b, n, 1f, expected, ldc);
                    using var packed = new PackedMatrix(k, n);
                    packed.Pack(false, b, n);
                    Widths.Run(new Gemm.Product(false, m, 1f, a, lda, packed, 1f, c, ldc), bits);
                    Widths.Run(new Gemm.Product(true, m, 1f, aT, m, packed, 1f, packedSide, ldc), bits);
                    GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"{bits}-bit {m}x{n}x{k}");
                    CollectionAssert.AreEqual(packedSide, c, $"{bits}-bit {m}x{n}x{k}: in place vs packed");
                }
    }

    // [L | R] packed from two side-by-side sources is the same packed matrix as their concatenation: a product against
    // it is bit for bit the product against the concatenated B. Left widths that end inside a panel, on a panel's edge
    // and past one, right widths with and without a tail, padded leading dimensions, depths past one KC block, small
    // and large enough for the parallel packing.
    [TestMethod]
    public void SideBySidePackingMatchesTheConcatenation()
    {
        foreach (var (left, right) in new[] { (1, 1), (20, 45), (32, 32), (33, 7), (128, 256), (5, 64) })
            foreach (int k in (int[])[1, 17, 300, 3200])
            {
                if (k == 3200 && left < 128) continue; // the large case is the LSTM backward's shape
                var rng = new Random(100 * left + right + k);
                int n = left + right, ldl = left + 2, ldr = right + 3, m = 13;
                var l = GradientCheck.Random(k * ldl, rng); var r = GradientCheck.Random(k * ldr, rng);
                var b = new float[k * n];
                for (int p = 0; p < k; p++)
                {
                    Array.Copy(l, p * ldl, b, p * n, left);
                    Array.Copy(r, p * ldr, b, p * n + left, right);
                }
                var a = GradientCheck.Random(k * m, rng);
                using var sideBySide = new PackedMatrix(k, n);
                sideBySide.PackSideBySide(l, ldl, left, r, ldr);
                using var concatenated = new PackedMatrix(k, n);
                concatenated.Pack(false, b, n);
                var expected = new float[m * n]; var actual = new float[m * n];
                Gemm.Multiply(true, m, 1f, a, m, concatenated, 0f, expected, n);
                Gemm.Multiply(true, m, 1f, a, m, sideBySide, 0f, actual, n);
                CollectionAssert.AreEqual(expected, actual, $"[{left} | {right}] × {k}");
            }
    }

    // With beta = 0 the first depth block's tiles write C (plus the row, when one is given) instead of adding onto it:
    // C is never read, so NaN there is ignored, and the result is bit for bit a product added onto C set to the row
    // (or to zeros) beforehand. Rows around the tile heights (read in place and packed), columns around the strips,
    // depths of one and two KC blocks, at every width.
    [TestMethod]
    [DynamicData(nameof(Widths.All), typeof(Widths))]
    public void BetaZeroWritesTheFirstBlockOverC(int bits)
    {
        foreach (int m in (int[])[2, 7, 12, 32, 97])
            foreach (int n in (int[])[5, 33, 65])
                foreach (int k in (int[])[17, 300])
                    foreach (bool withRow in (bool[])[false, true])
                        foreach (float alpha in (float[])[1f, 0.75f])
                        {
                            var rng = new Random(bits + 10_000 * m + 100 * n + k);
                            int ldc = n + 1;
                            var a = GradientCheck.Random(m * k, rng); var b = GradientCheck.Random(k * n, rng);
                            var row = withRow ? GradientCheck.Random(n, rng) : [];
                            var c = new float[m * ldc];
                            Array.Fill(c, float.NaN);
                            var added = new float[m * ldc];
                            for (int i = 0; i < m; i++) if (withRow) row.CopyTo(added, i * ldc);
                            var expected = (float[])added.Clone();
                            GemmReference.Multiply(false, false, m, n, k, alpha, a, k, b, n, 1f, expected, ldc);
                            using var packed = new PackedMatrix(k, n);
                            packed.Pack(false, b, n);
                            Widths.Run(new Gemm.Product(false, m, alpha, a, k, packed, 0f, c, ldc, row), bits);
                            Widths.Run(new Gemm.Product(false, m, alpha, a, k, packed, 1f, added, ldc), bits);
                            string at = $"{bits}-bit {m}x{n}x{k} alpha {alpha} row {withRow}";
                            for (int i = 0; i < m; i++)
                                for (int j = n; j < ldc; j++) Assert.IsTrue(float.IsNaN(c[i * ldc + j]), $"{at}: the padding of C was written");
                            for (int i = 0; i < m; i++)
                                for (int j = n; j < ldc; j++) c[i * ldc + j] = expected[i * ldc + j] = added[i * ldc + j] = 0f;
                            GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), at);
                            CollectionAssert.AreEqual(added, c, $"{at}: written vs added onto the row");
                        }
    }

    // Tall enough to split by rows on four threads (m ≥ 2·4·MC), so that the parts share every panel of B and each packs
    // those it reaches first; a second call with new values of B packs them again.
    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    [DataRow(false)]
    [DataRow(true)]
    public void PanelsPackedOnFirstUseBySharingPartsMatchReference(bool transB)
    {
        var rng = new Random(5);
        int m = 800, n = 100, k = 300, ldb = (transB ? k : n) + 3; // a partial last panel and a partial second depth block
        var a = GradientCheck.Random(m * k, rng);
        int saved = Gemm.MaxThreads;
        try
        {
            for (int call = 0; call < 2; call++)
            {
                var b = GradientCheck.Random((transB ? n : k) * ldb, rng);
                var c = new float[m * n]; var one = new float[m * n]; var expected = new float[m * n];
                GemmReference.Multiply(false, transB, m, n, k, 1f, a, k, b, ldb, 0f, expected, n);
                Gemm.MaxThreads = 4; Gemm.Multiply(false, transB, m, n, k, 1f, a, k, b, ldb, 0f, c, n);
                Gemm.MaxThreads = 1; Gemm.Multiply(false, transB, m, n, k, 1f, a, k, b, ldb, 0f, one, n);
                GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"call {call}");
                CollectionAssert.AreEqual(one, c, $"call {call}: one thread vs four");
            }
        }
        finally { Gemm.MaxThreads = saved; }
    }

    // Large enough to pack B on every core and to split the multiply over threads, at the width the process uses;
    // one thread gives the same bits.
    [TestMethod]
    public void LargeProductMatchesReferenceAndOneThread()
    {
        var rng = new Random(4);
        int m = 64, n = 600, k = 520; // k·n ≥ 2^18: parallel packing; m·n·k ≥ 2^20: parallel multiply
        var a = GradientCheck.Random(k * m, rng); var b = GradientCheck.Random(k * n, rng); // op(A) = Aᵀ: A stored (k, m)
        var c = new float[m * n]; var one = new float[m * n]; var expected = new float[m * n];
        GemmReference.Multiply(true, false, m, n, k, 1f, a, m, b, n, 0f, expected, n);
        Gemm.Multiply(true, false, m, n, k, 1f, a, m, b, n, 0f, c, n);
        using (Gemm.LimitThreads(1)) Gemm.Multiply(true, false, m, n, k, 1f, a, m, b, n, 0f, one, n);
        GradientCheck.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k), $"{m}x{n}x{k} at {Kernels.Lanes.Bits} bits");
        CollectionAssert.AreEqual(one, c, "one thread vs Gemm.Threads");
    }

    [TestMethod]
    public async Task LimitThreadsIsScopedAndFlowsIntoTasks()
    {
        int outside = Gemm.Threads;
        Assert.AreEqual(Math.Max(1, Gemm.MaxThreads), outside);
        using var entered = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        var bystander = Task.Run(async () => { entered.Release(); await release.WaitAsync(); return Gemm.Threads; }); // started outside the scope
        await entered.WaitAsync();
        int inside, inTask, nested, unlimitedInside;
        using (Gemm.LimitThreads(1))
        {
            inside = Gemm.Threads;
            inTask = await Task.Run(() => Gemm.Threads);
            using (Gemm.LimitThreads(4)) nested = Gemm.Threads;  // an inner scope cannot raise the limit
            using (Gemm.LimitThreads(0)) unlimitedInside = Gemm.Threads;
            release.Release();
            Assert.AreEqual(outside, await bystander, "a task started outside the scope keeps its own limit");
        }
        Assert.AreEqual(1, inside);
        Assert.AreEqual(1, inTask, "the limit flows into tasks started inside the scope");
        Assert.AreEqual(1, nested);
        Assert.AreEqual(1, unlimitedInside);
        Assert.AreEqual(outside, Gemm.Threads, "the limit ends with its scope");
        var scope = Gemm.LimitThreads(1);
        scope.Dispose(); scope.Dispose(); // idempotent
        Assert.AreEqual(outside, Gemm.Threads);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Gemm.LimitThreads(-1));
    }

    [TestMethod]
    public void RejectsTooSmallBuffers()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, 1f, new float[3], 2, new float[4], 2, 0f, new float[4], 2));
        StringAssert.Contains(ex.Message, "A holds 3 values");
    }
}
