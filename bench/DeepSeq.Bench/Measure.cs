using System.Diagnostics;

namespace DeepSeq.Bench;

/// <summary>How long to warm up and how many timed runs to take.</summary>
/// <param name="WarmupRuns">Warm-up runs of each side, at least.</param>
/// <param name="WarmupSeconds">Warm-up time of each side, at least (a run longer than this counts as the whole warm-up).</param>
/// <param name="MinRepetitions">Timed runs of each side, at least.</param>
/// <param name="MaxRepetitions">Timed runs of each side, at most.</param>
/// <param name="MaxSeconds">After <paramref name="MinRepetitions"/>, stop once the timed runs have taken this long.</param>
sealed record MeasureSettings(int WarmupRuns, double WarmupSeconds, int MinRepetitions, int MaxRepetitions, double MaxSeconds)
{
    /// <summary>The full bench: a warm-up long enough for tiered JIT and libtorch's pools, up to 15 timed runs.</summary>
    public static MeasureSettings Full(int warmupRuns = 3, int repetitions = 15) => new(warmupRuns, 2, 5, repetitions, 30);
    /// <summary>A check run (--quick): short warm-up, a few timed runs.</summary>
    public static MeasureSettings Quick(int warmupRuns = 1, int repetitions = 5) => new(warmupRuns, 0.3, Math.Min(3, repetitions), repetitions, 3);
}

/// <summary>
/// Median wall times of two implementations of the same work, run alternately (A, B, A, B …) so that both see
/// the same machine: on a shared 2-core machine the second core's availability drifts over seconds, and
/// measuring one side after the other would charge that drift to one of them. Each timed run starts once no other
/// thread of the machine is runnable (<see cref="Settle"/>), so that neither side's spinning threads take the cores of
/// the other's run.
/// </summary>
static class Measure
{
    public static (double A, double B) MedianMs(Action a, Action b, MeasureSettings s)
    {
        // Warm-up: so that .NET's tiered JIT has promoted the hot loops, libtorch has sized its pools and both
        // cores are awake.
        Warm(a, s); Warm(b, s);
        var timesA = new List<double>(); var timesB = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < s.MaxRepetitions && (i < s.MinRepetitions || total.Elapsed.TotalSeconds < s.MaxSeconds); i++)
        {
            Settle();
            timesA.Add(Time(a));
            Settle();
            timesB.Add(Time(b));
        }
        return (Median(timesA), Median(timesB));
    }

    const int SettleQuietChecks = 2, SettleLimitMs = 200, SettleWithoutProcMs = 20;
    const string LoadAverage = "/proc/loadavg";
    static readonly bool s_hasLoadAverage = File.Exists(LoadAverage);

    /// <summary>
    /// Returns at once when no other thread of the machine is runnable; otherwise waits until none is, twice a
    /// millisecond apart (at most <see cref="SettleLimitMs"/> ms). After a parallel region libtorch's GNU OpenMP
    /// workers spin for up to 300,000 pauses with its default settings (seen here: a core busy for 4–12 ms after a
    /// torch run, and the DeepSeq LSTM forward timed right after it at 36.6 ms against 24.8), DeepSeq's pool for 50 µs.
    /// The count is the kernel's, read from /proc/loadavg (the process's CPU time is no use: Linux adds a running
    /// thread's time only at scheduler ticks). Nothing is slept when nothing spins: a pause before every run made
    /// torch's batch-1 runs half as slow again (0.36 → 0.54 ms), with its caches and predictors cold. Without /proc, a
    /// fixed pause.
    /// </summary>
    static void Settle()
    {
        if (!s_hasLoadAverage) { Thread.Sleep(SettleWithoutProcMs); return; }
        if (OthersRunnable() == 0) return;
        var wall = Stopwatch.StartNew();
        for (int quiet = 0; quiet < SettleQuietChecks && wall.ElapsedMilliseconds < SettleLimitMs;)
        {
            Thread.Sleep(1);
            quiet = OthersRunnable() == 0 ? quiet + 1 : 0;
        }
    }

    // Runnable threads on the machine besides the caller: the fourth field of /proc/loadavg is "runnable/threads".
    static int OthersRunnable()
    {
        string[] fields = File.ReadAllText(LoadAverage).Split(' ');
        return fields.Length > 3 && int.TryParse(fields[3].AsSpan(0, Math.Max(0, fields[3].IndexOf('/'))), out int runnable) ? runnable - 1 : 0;
    }

    /// <summary>Median wall time of one implementation (the vector-path runs, which have no TorchSharp side).</summary>
    public static double MedianMs(Action a, MeasureSettings s)
    {
        Warm(a, s);
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < s.MaxRepetitions && (i < s.MinRepetitions || total.Elapsed.TotalSeconds < s.MaxSeconds); i++) times.Add(Time(a));
        return Median(times);
    }

    static void Warm(Action run, MeasureSettings s)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < s.WarmupRuns || warm.Elapsed.TotalSeconds < s.WarmupSeconds; i++)
        {
            double ms = Time(run);
            if (ms > 1000 * s.WarmupSeconds) break; // one slow run (a scalar path) has warmed everything up
        }
    }

    static double Time(Action run)
    {
        var sw = Stopwatch.StartNew();
        run();
        return sw.Elapsed.TotalMilliseconds;
    }

    static double Median(List<double> times)
    {
        times.Sort();
        int n = times.Count;
        return n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    }
}
