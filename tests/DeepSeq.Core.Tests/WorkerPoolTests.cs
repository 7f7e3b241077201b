using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class WorkerPoolTests
{
    readonly struct Count(int[] runs, int[] threads) : IPoolWork
    {
        public void Run(int part)
        {
            Interlocked.Increment(ref runs[part]);
            threads[part] = Environment.CurrentManagedThreadId;
        }
    }

    /// <summary>The pool's copy, below and above the length where it splits, with a tail, leaves the rest of the destination alone.</summary>
    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    public void ParallelCopyCopiesEveryElementOnAnyThreadCount()
    {
        int saved = Gemm.MaxThreads;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Gemm.MaxThreads = threads;
                foreach (int n in new[] { 1, (1 << 15) - 1, 1 << 15, 3 * (1 << 15) + 1, 100_003 })
                {
                    var source = Enumerable.Range(0, n).Select(i => i * 0.5f).ToArray();
                    var destination = new float[n + 5];
                    Array.Fill(destination, -1f);
                    ParallelRange.Copy<float>(source, destination);
                    CollectionAssert.AreEqual(source, destination[..n], $"{n} on {threads} threads");
                    Assert.IsTrue(destination[n..].All(v => v == -1f), "past the source's length");
                    var ids = Enumerable.Range(7, n).ToArray();
                    var idCopy = new int[n];
                    ParallelRange.Copy<int>(ids, idCopy);
                    CollectionAssert.AreEqual(ids, idCopy);
                }
            }
        }
        finally { Gemm.MaxThreads = saved; }
    }

    [TestMethod]
    public void RunsEveryPartExactlyOnce()
    {
        for (int round = 0; round < 200; round++)
            for (int parts = 1; parts <= 5; parts++)
            {
                var runs = new int[parts];
                var threads = new int[parts];
                WorkerPool.Run(parts, new Count(runs, threads));
                CollectionAssert.AreEqual(Enumerable.Repeat(1, parts).ToArray(), runs, $"{parts} parts, round {round}");
                if (round % 50 == 0) Thread.Sleep(2); // long enough for idle workers to block: the next job wakes them
            }
        WorkerPool.Run(0, new Count([], []));
    }

    // Part 0 holds the caller until part 1 has started, which then can only be on a worker.
    readonly struct WaitForPartOne(int[] threads) : IPoolWork
    {
        public void Run(int part)
        {
            threads[part] = Environment.CurrentManagedThreadId;
            var seen = threads;
            if (part == 0) SpinWait.SpinUntil(() => Volatile.Read(ref seen[1]) != 0, TimeSpan.FromSeconds(10));
        }
    }

    [TestMethod]
    [DoNotParallelize] // alone, so that no other test's job owns the pool (its second caller would run serially)
    public void WorkersTakeParts()
    {
        if (Environment.ProcessorCount < 2) return; // no workers: every job runs on the caller, as RunsEveryPartExactlyOnce checks
        var threads = new int[2];
        WorkerPool.Run(2, new WaitForPartOne(threads));
        Assert.AreNotEqual(threads[0], threads[1], "part 1 ran on a worker while the caller held part 0");
    }

    // Parts 0 and 1 each wait until the other has started, so neither thread can take both.
    readonly struct MeetingParts(int[] threads) : IPoolWork
    {
        public void Run(int part)
        {
            threads[part] = Environment.CurrentManagedThreadId;
            var seen = threads;
            SpinWait.SpinUntil(() => Volatile.Read(ref seen[1 - part]) != 0, TimeSpan.FromSeconds(10));
        }
    }

    [TestMethod]
    [DoNotParallelize] // alone, so that no other test's job owns the pool (its second caller would run serially)
    public void EachThreadTakesItsHomePartFirst()
    {
        if (Environment.ProcessorCount < 2) return;
        // Part p of every job on the same thread: the caller part 0, the first worker part 1 — whether that worker is
        // awake when the job starts (the rounds right after another) or has to be woken (after a pause).
        for (int round = 0; round < 20; round++)
        {
            var threads = new int[2];
            WorkerPool.Run(2, new MeetingParts(threads));
            Assert.AreEqual(Environment.CurrentManagedThreadId, threads[0], $"round {round}: part 0 on the caller");
            Assert.AreNotEqual(Environment.CurrentManagedThreadId, threads[1], $"round {round}: part 1 on a worker");
            if (round % 5 == 4) Thread.Sleep(2);
        }
    }

    // Part 0 holds the caller until another thread has started a part, so that a worker runs the throwing part.
    readonly struct Throwing(int throwingPart, int[] started) : IPoolWork
    {
        public void Run(int part)
        {
            Interlocked.Increment(ref started[0]);
            var counter = started;
            if (part == 0) SpinWait.SpinUntil(() => Volatile.Read(ref counter[0]) > 1, TimeSpan.FromSeconds(2));
            if (part == throwingPart) throw new InvalidOperationException($"part {part} failed");
        }
    }

    [TestMethod]
    public void AnExceptionInAPartReachesTheCaller()
    {
        for (int throwing = 0; throwing < 3; throwing++)
        {
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => WorkerPool.Run(3, new Throwing(throwing, new int[1])));
            Assert.AreEqual($"part {throwing} failed", ex.Message);
        }
        var runs = new int[4];
        WorkerPool.Run(4, new Count(runs, new int[4]));
        CollectionAssert.AreEqual(new[] { 1, 1, 1, 1 }, runs, "the pool still works afterwards");
    }

    readonly struct Nested(int[] runs, int[] innerThreads) : IPoolWork
    {
        public void Run(int part)
        {
            innerThreads[part] = Gemm.Threads;
            WorkerPool.Run(3, new Count(runs, new int[3])); // the pool is owned by this job's caller: runs here, serially
        }
    }

    [TestMethod]
    public void APartRunsNestedWorkOnItsOwnThread()
    {
        var runs = new int[3];
        var threads = new int[2];
        WorkerPool.Run(2, new Nested(runs, threads));
        CollectionAssert.AreEqual(new[] { 2, 2, 2 }, runs);
        CollectionAssert.AreEqual(new[] { 1, 1 }, threads, "multiplies inside a part stay on its thread");
        Assert.IsFalse(WorkerPool.IsSerial);
    }

    [TestMethod]
    public void SeriallyHoldsOnThisThreadWhileItRuns()
    {
        int outside = Gemm.Threads, inside = 0, nested = 0;
        Gemm.Serially(() =>
        {
            inside = Gemm.Threads;
            Gemm.Serially(() => { });
            nested = Gemm.Threads;
        });
        Assert.AreEqual(1, inside);
        Assert.AreEqual(1, nested, "an inner scope ending does not end the outer one");
        Assert.AreEqual(outside, Gemm.Threads);
        Assert.ThrowsExactly<InvalidOperationException>(() => Gemm.Serially(() => throw new InvalidOperationException()));
        Assert.AreEqual(outside, Gemm.Threads, "restored after an exception");
    }

    // Several threads multiplying at once (model comparison, prediction engines on several threads): one owns the
    // pool, the others run serially; none waits for another, and every result is the one-thread result.
    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    public void ConcurrentCallersGetTheirOwnResults()
    {
        const int callers = 4, m = 64, n = 160, k = 128; // m·n·k ≥ 2^20: split over threads
        var rng = new Random(5);
        var a = new float[callers][]; var b = new float[callers][]; var expected = new float[callers][];
        for (int t = 0; t < callers; t++)
        {
            a[t] = GradientCheck.Random(m * k, rng); b[t] = GradientCheck.Random(k * n, rng);
            expected[t] = new float[m * n];
            using (Gemm.LimitThreads(1)) Gemm.Multiply(false, false, m, n, k, 1f, a[t], k, b[t], n, 0f, expected[t], n);
        }
        int saved = Gemm.MaxThreads;
        var failures = new List<string>();
        try
        {
            Gemm.MaxThreads = Math.Max(2, saved);
            var threads = Enumerable.Range(0, callers).Select(t => new Thread(() =>
            {
                var c = new float[m * n];
                for (int i = 0; i < 100; i++)
                {
                    Array.Fill(c, float.NaN);
                    Gemm.Multiply(false, false, m, n, k, 1f, a[t], k, b[t], n, 0f, c, n);
                    if (!c.AsSpan().SequenceEqual(expected[t])) { lock (failures) failures.Add($"caller {t}, call {i}"); return; }
                    var counts = new int[3];
                    WorkerPool.Run(3, new Count(counts, new int[3]));
                    if (counts.Any(x => x != 1)) { lock (failures) failures.Add($"caller {t}, pool call {i}: {string.Join(",", counts)}"); return; }
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            foreach (var t in threads) Assert.IsTrue(t.Join(TimeSpan.FromSeconds(100)), "a caller is stuck");
        }
        finally { Gemm.MaxThreads = saved; }
        Assert.IsEmpty(failures, string.Join("; ", failures));
    }
}
