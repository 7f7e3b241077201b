using System.Diagnostics;

namespace DeepSeq.Bench;

/// <summary>
/// Median wall times of two implementations of the same work, run alternately (A, B, A, B …) so that both see
/// the same machine: on a shared 2-core machine the second core's availability drifts over seconds, and
/// measuring one side after the other would charge that drift to one of them.
/// </summary>
static class Measure
{
    public static (double A, double B) MedianMs(Action a, Action b, int warmup, int repetitions, double maxSeconds = 30)
    {
        // Warm-up: at least `warmup` runs and two seconds each, so that .NET's tiered JIT has promoted the
        // hot loops, libtorch has sized its pools and both cores are awake.
        foreach (var run in new[] { a, b })
        {
            var warm = Stopwatch.StartNew();
            for (int i = 0; i < warmup || warm.Elapsed.TotalSeconds < 2; i++) run();
        }
        var timesA = new List<double>(); var timesB = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < repetitions && (i < 5 || total.Elapsed.TotalSeconds < maxSeconds); i++)
        {
            timesA.Add(Time(a));
            timesB.Add(Time(b));
        }
        return (Median(timesA), Median(timesB));
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
