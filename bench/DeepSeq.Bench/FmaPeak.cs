using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace DeepSeq.Bench;

/// <summary>
/// This process's single-precision multiply-add peak for one vector width on the threads given: 12 independent
/// chains (enough to cover latency × issue width) of <c>MultiplyAddEstimate</c>, which is one FMA instruction
/// where the runtime may use FMA and a multiply and an add otherwise, so each width is measured with the
/// arithmetic this process really has (under <c>DOTNET_EnableAVX2=0</c> the runtime turns FMA off too).
/// It measures throughput, not latency; 2 FLOPs per lane per multiply-add either way.
/// </summary>
static class FmaPeak
{
    /// <summary>Widths in bits, widest first: 512, 256, 128 (each only when hardware-accelerated here), and 32 (scalar).</summary>
    public static IReadOnlyList<int> Widths()
    {
        var widths = new List<int>();
        if (Vector512.IsHardwareAccelerated) widths.Add(512);
        if (Vector256.IsHardwareAccelerated) widths.Add(256);
        if (Vector128.IsHardwareAccelerated) widths.Add(128);
        widths.Add(32);
        return widths;
    }

    /// <summary>The widest accelerated width: the one DeepSeq's kernels can use in this process (32 = scalar).</summary>
    public static int WidthInUse => Widths()[0];

    /// <summary>True when multiply-adds are fused instructions in this process.</summary>
    public static bool HasFma =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;

    /// <summary>What a multiply-add is here: "FMA" or "mul+add".</summary>
    public static string Arithmetic => HasFma ? "FMA" : "mul+add";

    /// <summary>Best of <paramref name="trials"/> measurements, GFLOP/s, for <paramref name="widthBits"/> on <paramref name="threads"/> threads.</summary>
    public static double GigaFlops(int widthBits, int threads, int trials = 3)
    {
        const long iterations = 20_000_000;
        int lanes = widthBits / 32;
        Func<long, float> chains = widthBits switch
        {
            512 => Chains512,
            256 => Chains256,
            128 => Chains128,
            32 => ChainsScalar,
            _ => throw new ArgumentOutOfRangeException(nameof(widthBits), widthBits, "Use 512, 256, 128 or 32."),
        };
        chains(1000); // compile before timing
        double best = 0;
        for (int trial = 0; trial < trials; trial++)
        {
            // One dedicated thread per chain set, released together, so that no thread runs two sets in turn.
            using var start = new Barrier(threads + 1);
            var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() => { start.SignalAndWait(); chains(iterations); })).ToList();
            foreach (var w in workers) w.Start();
            start.SignalAndWait();
            var sw = Stopwatch.StartNew();
            foreach (var w in workers) w.Join();
            best = Math.Max(best, threads * iterations * 12.0 * lanes * 2 / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    static float Chains512(long n)
    {
        Vector512<float> a0 = Vector512<float>.One, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        var x = Vector512.Create(0.999999f); var y = Vector512.Create(1e-7f);
        for (long i = 0; i < n; i++)
        {
            a0 = Vector512.MultiplyAddEstimate(a0, x, y); a1 = Vector512.MultiplyAddEstimate(a1, x, y); a2 = Vector512.MultiplyAddEstimate(a2, x, y);
            a3 = Vector512.MultiplyAddEstimate(a3, x, y); a4 = Vector512.MultiplyAddEstimate(a4, x, y); a5 = Vector512.MultiplyAddEstimate(a5, x, y);
            a6 = Vector512.MultiplyAddEstimate(a6, x, y); a7 = Vector512.MultiplyAddEstimate(a7, x, y); a8 = Vector512.MultiplyAddEstimate(a8, x, y);
            a9 = Vector512.MultiplyAddEstimate(a9, x, y); a10 = Vector512.MultiplyAddEstimate(a10, x, y); a11 = Vector512.MultiplyAddEstimate(a11, x, y);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    static float Chains256(long n)
    {
        Vector256<float> a0 = Vector256<float>.One, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        var x = Vector256.Create(0.999999f); var y = Vector256.Create(1e-7f);
        for (long i = 0; i < n; i++)
        {
            a0 = Vector256.MultiplyAddEstimate(a0, x, y); a1 = Vector256.MultiplyAddEstimate(a1, x, y); a2 = Vector256.MultiplyAddEstimate(a2, x, y);
            a3 = Vector256.MultiplyAddEstimate(a3, x, y); a4 = Vector256.MultiplyAddEstimate(a4, x, y); a5 = Vector256.MultiplyAddEstimate(a5, x, y);
            a6 = Vector256.MultiplyAddEstimate(a6, x, y); a7 = Vector256.MultiplyAddEstimate(a7, x, y); a8 = Vector256.MultiplyAddEstimate(a8, x, y);
            a9 = Vector256.MultiplyAddEstimate(a9, x, y); a10 = Vector256.MultiplyAddEstimate(a10, x, y); a11 = Vector256.MultiplyAddEstimate(a11, x, y);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    static float Chains128(long n)
    {
        Vector128<float> a0 = Vector128<float>.One, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        var x = Vector128.Create(0.999999f); var y = Vector128.Create(1e-7f);
        for (long i = 0; i < n; i++)
        {
            a0 = Vector128.MultiplyAddEstimate(a0, x, y); a1 = Vector128.MultiplyAddEstimate(a1, x, y); a2 = Vector128.MultiplyAddEstimate(a2, x, y);
            a3 = Vector128.MultiplyAddEstimate(a3, x, y); a4 = Vector128.MultiplyAddEstimate(a4, x, y); a5 = Vector128.MultiplyAddEstimate(a5, x, y);
            a6 = Vector128.MultiplyAddEstimate(a6, x, y); a7 = Vector128.MultiplyAddEstimate(a7, x, y); a8 = Vector128.MultiplyAddEstimate(a8, x, y);
            a9 = Vector128.MultiplyAddEstimate(a9, x, y); a10 = Vector128.MultiplyAddEstimate(a10, x, y); a11 = Vector128.MultiplyAddEstimate(a11, x, y);
        }
        return Vector128.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    static float ChainsScalar(long n)
    {
        float a0 = 1, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        float x = 0.999999f, y = 1e-7f;
        for (long i = 0; i < n; i++)
        {
            a0 = float.MultiplyAddEstimate(a0, x, y); a1 = float.MultiplyAddEstimate(a1, x, y); a2 = float.MultiplyAddEstimate(a2, x, y);
            a3 = float.MultiplyAddEstimate(a3, x, y); a4 = float.MultiplyAddEstimate(a4, x, y); a5 = float.MultiplyAddEstimate(a5, x, y);
            a6 = float.MultiplyAddEstimate(a6, x, y); a7 = float.MultiplyAddEstimate(a7, x, y); a8 = float.MultiplyAddEstimate(a8, x, y);
            a9 = float.MultiplyAddEstimate(a9, x, y); a10 = float.MultiplyAddEstimate(a10, x, y); a11 = float.MultiplyAddEstimate(a11, x, y);
        }
        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    }
}
