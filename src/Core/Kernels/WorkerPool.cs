using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace DeepSeq.Core.Kernels;

/// <summary>Work split into numbered, independent parts, run by <see cref="WorkerPool.Run{TWork}"/>.</summary>
internal interface IPoolWork
{
    /// <summary>Runs part <paramref name="part"/> (0 ≤ part &lt; parts); it may run on any thread, beside the others.</summary>
    void Run(int part);
}

/// <summary>
/// Persistent worker threads for the kernels' parallel loops, without a managed allocation per call: the work is a
/// struct the workers reach through a pointer to the caller's stack, and the caller runs parts too.
/// </summary>
/// <remarks>
/// <para>Parts are claimed one at a time, by the caller and the workers that are awake, each taking its own home part
/// first and then any part left, so a job never waits for a worker that is slow to wake (the caller then runs the parts
/// itself), any number of parts runs on any number of workers, and with all threads awake part p of every job runs on
/// the same core (its cache keeps that part's data from one job to the next). Which thread runs a part does not change
/// what the part computes.</para>
/// <para>Workers spin for <see cref="SpinMicroseconds"/> after a job, which keeps them ready for the next small
/// multiply of a recurrent step, then block: an idle pool takes no processor time from other work in the process.</para>
/// <para>One caller at a time owns the pool. A second caller — another thread multiplying at the same time, or code
/// inside a part — runs its parts serially on its own thread instead of waiting: the cores are busy anyway, and it
/// cannot deadlock. A part's multiplies also run serially (<see cref="IsSerial"/>).</para>
/// <para>An exception thrown by a part is rethrown to the caller after every claimed part has finished; the parts
/// not yet started when it was thrown are skipped.</para>
/// </remarks>
internal static unsafe class WorkerPool
{
    /// <summary>How long an idle worker waits for the next job before it blocks.</summary>
    internal const int SpinMicroseconds = 50;
    static readonly long SpinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;

    // One per processor beyond the caller's; created on the first parallel job.
    static Parker[]? s_workers;
    static readonly object s_creating = new();

    // 1 while a caller owns the pool.
    static int s_owned;

    // The job: its generation and the mask of its unclaimed parts in one word, so that a claim (a compare-exchange on
    // it) also proves the claimed job is the current one. The fields below belong to that job; they are rewritten
    // only after all its parts have finished, so a claimed part reads its own job's.
    static long s_claims;
    static delegate*<void*, int, void> s_run;
    static void* s_work;
    static int s_unfinished;
    static ExceptionDispatchInfo? s_error;
    static readonly Parker s_caller = new(); // the owner, waiting for the last part

    // Scopes on this thread whose multiplies stay on it: a part being run (a worker is always in one) or Gemm.Serially.
    [ThreadStatic] static int t_serial;

    /// <summary>True on a thread whose multiplies must stay on it: inside a part, or inside <see cref="Serially"/>.</summary>
    internal static bool IsSerial => t_serial > 0;

    /// <summary>Runs <paramref name="work"/> with every multiply this thread starts in it kept on this thread.</summary>
    internal static void Serially(Action work)
    {
        t_serial++;
        try { work(); }
        finally { t_serial--; }
    }

    /// <summary>
    /// Runs parts 0 … <paramref name="parts"/> − 1 of <paramref name="work"/> on the calling thread and the workers,
    /// at most <see cref="Gemm.Threads"/> at once, and returns when all have finished (see the class remarks for busy
    /// pools and exceptions). On one thread — one part, a limit of 1, or inside a part — the parts run here in order,
    /// and a lone part's multiplies may still split.
    /// </summary>
    internal static void Run<TWork>(int parts, TWork work) where TWork : struct, IPoolWork
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parts);
        int threads = Math.Min(Math.Min(parts, Gemm.Threads), MaxParts);
        if (threads <= 1)
        {
            for (int part = 0; part < parts; part++) work.Run(part);
            return;
        }
        if (threads < parts) RunOnPool(threads, new Strided<TWork>(work, parts, threads));
        else RunOnPool(parts, work);
    }

    // Parts p, p + threads, p + 2·threads … of a job with more parts than it may have threads, as one part.
    readonly struct Strided<TWork>(TWork work, int parts, int threads) : IPoolWork where TWork : struct, IPoolWork
    {
        public void Run(int part)
        {
            for (int p = part; p < parts; p += threads) work.Run(p);
        }
    }

    static void RunOnPool<TWork>(int parts, TWork work) where TWork : struct, IPoolWork
    {
        if (Workers().Length == 0 || Interlocked.CompareExchange(ref s_owned, 1, 0) != 0)
        {
            t_serial++;
            try { for (int part = 0; part < parts; part++) work.Run(part); }
            finally { t_serial--; }
            return;
        }
        try
        {
            // work is this frame's copy, on the stack, which the GC does not move; it stays alive until every part is done.
            s_run = &RunPart<TWork>;
            s_work = Unsafe.AsPointer(ref work);
            s_unfinished = parts;
            s_error = null;
            int generation = Generation(s_claims) + 1;
            Volatile.Write(ref s_claims, (long)generation << 32 | (uint)(ulong.MaxValue >> (64 - parts))); // publishes the fields above
            var workers = s_workers!;
            for (int w = 0; w < Math.Min(parts - 1, workers.Length); w++) workers[w].Unpark();
            t_serial++;
            try { Participate(generation, 0); }
            finally { t_serial--; }
            WaitForParts();
            s_work = null;
            var error = s_error;
            s_error = null;
            error?.Throw();
        }
        finally { Volatile.Write(ref s_owned, 0); }
    }

    static void RunPart<TWork>(void* work, int part) where TWork : struct, IPoolWork => Unsafe.AsRef<TWork>(work).Run(part);

    static int Generation(long claims) => (int)(claims >> 32);

    // Parts a job may have, one bit each in the claims word; more are folded into this many (Strided).
    const int MaxParts = 32;

    // Claims and runs parts of the given job until none is left (or the job is no longer current). A participant
    // takes its home part first (the caller part 0, worker w part w + 1), so that the same part of consecutive jobs
    // — the same column panels of a recurrent weight at every time step — runs on the same core, whose cache holds
    // them; then any part left.
    static void Participate(int generation, int home)
    {
        while (true)
        {
            long claims = Volatile.Read(ref s_claims);
            uint unclaimed = (uint)claims;
            if (Generation(claims) != generation || unclaimed == 0) return;
            int next = home < MaxParts && (unclaimed & 1u << home) != 0 ? home : System.Numerics.BitOperations.TrailingZeroCount(unclaimed);
            if (Interlocked.CompareExchange(ref s_claims, claims & ~(1L << next), claims) != claims) continue;
            try
            {
                if (Volatile.Read(ref s_error) is null) s_run(s_work, next);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref s_error, ExceptionDispatchInfo.Capture(e), null);
            }
            if (Interlocked.Decrement(ref s_unfinished) == 0) s_caller.Unpark();
        }
    }

    static void WaitForParts()
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        while (Volatile.Read(ref s_unfinished) != 0)
        {
            if (Stopwatch.GetTimestamp() < deadline) { Thread.SpinWait(16); continue; }
            s_caller.Raise();
            if (Volatile.Read(ref s_unfinished) != 0) s_caller.Park();
            else s_caller.Lower();
        }
    }

    static Parker[] Workers()
    {
        if (s_workers is { } workers) return workers;
        lock (s_creating)
        {
            if (s_workers is not null) return s_workers;
            workers = new Parker[Environment.ProcessorCount - 1];
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w] = new Parker(w + 1);
                new Thread(Work) { IsBackground = true, Name = $"DeepSeq worker {w + 1}" }.Start(workers[w]);
            }
            return s_workers = workers;
        }
    }

    static void Work(object? state)
    {
        var me = (Parker)state!;
        t_serial = 1;
        int seen = 0;
        while (true)
        {
            long deadline = Stopwatch.GetTimestamp() + SpinTicks;
            int generation;
            while ((generation = Generation(Volatile.Read(ref s_claims))) == seen)
            {
                if (Stopwatch.GetTimestamp() < deadline) { Thread.SpinWait(16); continue; }
                me.Raise();
                if (Generation(Volatile.Read(ref s_claims)) == seen) me.Park();
                else me.Lower();
            }
            seen = generation;
            Participate(generation, me.Home);
        }
    }

    /// <summary>
    /// A thread's blocking wait for a condition another thread changes, without losing a wake-up: the waiter raises
    /// its flag, checks the condition, then parks or lowers the flag; the changer, after the change, unparks — which
    /// signals only a raised flag, so a change made after the check always wakes the waiter.
    /// </summary>
    sealed class Parker(int home = 0)
    {
        /// <summary>The part this thread takes first (<see cref="Participate"/>).</summary>
        public int Home { get; } = home;
        int _raised;
        readonly SemaphoreSlim _signal = new(0);

        public void Raise() => Interlocked.Exchange(ref _raised, 1); // a full fence: the flag is seen before the check reads

        /// <summary>Blocks until unparked; a stale unpark may end it early, so the caller re-checks its condition.</summary>
        public void Park() => _signal.Wait();

        public void Lower()
        {
            if (Interlocked.Exchange(ref _raised, 0) == 0) _signal.Wait(); // an unpark took the flag: take its signal
        }

        public void Unpark()
        {
            if (Interlocked.Exchange(ref _raised, 0) == 1) _signal.Release();
        }
    }
}
