using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace DeepSeq.Bench;

/// <summary>The final table and the JSON file, from the child runs' results.</summary>
static class Report
{
    /// <summary>Milliseconds with three significant-ish digits.</summary>
    public static string Ms(double ms) => double.IsNaN(ms) ? "—" : ms < 1 ? ms.ToString("F3", CultureInfo.InvariantCulture)
        : ms < 100 ? ms.ToString("F2", CultureInfo.InvariantCulture) : ms.ToString("F1", CultureInfo.InvariantCulture);

    static string Ratio(double torch, double ours) => double.IsNaN(torch) || double.IsNaN(ours) ? "—" : (torch / ours).ToString("F2", CultureInfo.InvariantCulture) + "x";

    /// <summary>Bytes in MB (2²⁰ bytes), one decimal.</summary>
    static double Megabytes(long bytes) => Math.Round(bytes / 1048576.0, 1);
    /// <summary><see cref="Megabytes"/> as text.</summary>
    public static string Mb(long bytes) => Megabytes(bytes).ToString("F1", CultureInfo.InvariantCulture);

    static string Num(double x, string format) => double.IsNaN(x) || double.IsInfinity(x) ? "—" : x.ToString(format, CultureInfo.InvariantCulture);

    static CaseResult? Find(List<CaseResult>? run, string name) => run?.FirstOrDefault(r => r.Name == name);

    /// <summary>The peak of the width DeepSeq uses in the parent's (default) setting, on that many threads.</summary>
    static double Peak(List<PeakResult> peaks, int threads) =>
        peaks.FirstOrDefault(p => p.WidthBits == FmaPeak.WidthInUse && p.Threads == threads)?.Gflops ?? double.NaN;

    public static void Print(BenchOptions o, List<PeakResult> peaks, List<string> names, List<CaseResult>? spin, List<CaseResult>? byDefault, List<PathResult> paths,
        List<MemoryResult> memory)
    {
        const int w = 54;
        if (names.Count > 0)
        {
            Console.WriteLine($"Median times. x = TorchSharp ms / DeepSeq ms (above 1: DeepSeq faster). GFLOP: the work DeepSeq does (formulas below);");
            Console.WriteLine($"GFLOP/s and share of the {FmaPeak.WidthInUse}-bit {FmaPeak.Arithmetic} peak on the case's threads: DeepSeq in run 1.");
            Console.WriteLine($"{"",w} {"",3} {"",7} | {"run 1: torch " + Runs.SpinVariable + "=" + Runs.SpinValue,-33} | {"run 2: torch default OpenMP",-33} |");
            Console.WriteLine($"{"case",-w} {"thr",3} {"GFLOP",7} | {"DeepSeq ms",11} {"Torch ms",11} {"x",8} | {"DeepSeq ms",11} {"Torch ms",11} {"x",8} | {"GFLOP/s",8} {"of peak",8}");
            foreach (var name in names)
            {
                var a = Find(spin, name); var b = Find(byDefault, name);
                var any = a ?? b;
                double oursA = a?.DeepSeqMs ?? double.NaN, torchA = a?.TorchMs ?? double.NaN, oursB = b?.DeepSeqMs ?? double.NaN, torchB = b?.TorchMs ?? double.NaN;
                double flops = any?.Flops ?? double.NaN, gflops = flops / (oursA * 1e6), peak = Peak(peaks, any?.Threads ?? o.Threads);
                Console.WriteLine($"{name,-w} {any?.Threads.ToString(CultureInfo.InvariantCulture) ?? "",3} {Num(flops / 1e9, "F3"),7} | {Ms(oursA),11} {Ms(torchA),11} {Ratio(torchA, oursA),8} | " +
                    $"{Ms(oursB),11} {Ms(torchB),11} {Ratio(torchB, oursB),8} | {Num(gflops, "F1"),8} {Num(100 * gflops / peak, "F0") + "%",8}");
                if (any is { Rows: > 0 } r)
                    Console.WriteLine($"{"",4}rows/s over {r.Rows} reviews: run 1 DeepSeq {Num(r.Rows / (oursA / 1000), "F0")}, TorchSharp {Num(r.Rows / (torchA / 1000), "F0")}; " +
                        $"run 2 DeepSeq {Num(r.Rows / (oursB / 1000), "F0")}, TorchSharp {Num(r.Rows / (torchB / 1000), "F0")}");
                foreach (var failed in new[] { a, b }.Where(x => x?.Error is not null))
                    Console.WriteLine($"{"",4}failed in run {(failed == a ? 1 : 2)}: {failed!.Error}");
            }
            Console.WriteLine();
            Console.WriteLine("FLOP counts (GEMM work only; element-wise work is not counted):");
            foreach (var name in names)
                if ((Find(spin, name) ?? Find(byDefault, name)) is { Formula.Length: > 0 } r) Console.WriteLine($"  {name}: {r.Formula}");
        }
        if (paths.Count > 0)
        {
            if (names.Count > 0) Console.WriteLine();
            Console.WriteLine($"Vector paths, DeepSeq alone on {o.Threads} threads: {paths[0].Case[7..]} (GFLOP {Num(paths.Max(p => p.Flops) / 1e9, "F3")}).");
            Console.WriteLine("Accelerated widths as the runtime reported them in each child run; the peak is that run's widest width, with the multiply-add it had.");
            Console.WriteLine($"{"path",-18} {"setting",-27} {"V512",4} {"V256",4} {"V128",4} {"mul-add",7} {"width",6} {"peak",7} {"ms",10} {"GFLOP/s",8} {"of peak",8}");
            foreach (var p in paths)
            {
                double gflops = p.Flops / (p.Ms * 1e6);
                string width = p.Width == 0 ? "—" : p.Width == 32 ? "scalar" : p.Width.ToString(CultureInfo.InvariantCulture);
                Console.WriteLine($"{p.Path,-18} {p.Env,-27} {Yes(p.Vector512),4} {Yes(p.Vector256),4} {Yes(p.Vector128),4} {p.Arithmetic,7} {width,6} {Num(p.PeakGflops, "F1"),7} " +
                    $"{Ms(p.Ms),10} {Num(gflops, "F1"),8} {Num(100 * gflops / p.PeakGflops, "F0") + "%",8}");
                if (p.Error is not null) Console.WriteLine($"{"",4}failed: {p.Error}");
            }
        }
        if (memory.Count > 0)
        {
            if (names.Count > 0 || paths.Count > 0) Console.WriteLine();
            var m = memory[0];
            Console.WriteLine($"{Runs.MemoryCaseName(o.Quick)}, after {m.WarmupSteps} warm-up, each library alone in its own process on {m.Threads} threads.");
            Console.WriteLine("Resident set in MB (2^20 bytes): right before the model is built (runtime and library loaded), the process's peak, and the");
            Console.WriteLine("peak above that baseline; managed heap: live after the steps, and allocated per step after warm-up (all threads).");
            Console.WriteLine($"{"library",-11} {"baseline",9} {"peak",9} {"above",9} {"after",9} {"live",9} {"bytes/step",11} {"GCs",5}");
            foreach (var r in memory)
            {
                if (r.Error is not null) { Console.WriteLine($"{r.Library,-11} failed: {r.Error}"); continue; }
                Console.WriteLine($"{r.Library,-11} {Mb(r.BaselineBytes),9} {Mb(r.PeakBytes),9} {Mb(r.PeakBytes - r.BaselineBytes),9} {Mb(r.FinalBytes),9} " +
                    $"{Mb(r.ManagedLiveBytes),9} {Num(r.AllocatedPerStep, "F0"),11} {r.Collections,5}");
            }
            var (ours, theirs) = MemorySides(memory);
            Console.WriteLine($"x = TorchSharp / DeepSeq (above 1: DeepSeq uses less): peak {Ratio(Bytes(theirs, r => r.PeakBytes), Bytes(ours, r => r.PeakBytes))}, " +
                $"above baseline {Ratio(Bytes(theirs, r => r.PeakBytes - r.BaselineBytes), Bytes(ours, r => r.PeakBytes - r.BaselineBytes))} ({memory[0].Source})");
            if (ours is { TorchLoaded: true })
                Console.WriteLine($"{"",4}warning: TorchSharp was loaded in DeepSeq's process, whose figures then include it");
        }
    }

    // The two sides of the memory case; null for a side that failed.
    static (MemoryResult? Ours, MemoryResult? Theirs) MemorySides(List<MemoryResult> memory) =>
        (memory.FirstOrDefault(r => r.Library == "DeepSeq" && r.Error is null), memory.FirstOrDefault(r => r.Library == "TorchSharp" && r.Error is null));

    static double Bytes(MemoryResult? r, Func<MemoryResult, long> figure) => r is null ? double.NaN : figure(r);

    static string Yes(bool b) => b ? "yes" : "no";

    static object? Round(double x, int digits) => double.IsNaN(x) || double.IsInfinity(x) ? null : Math.Round(x, digits);

    public static string Json(BenchOptions o, List<PeakResult> peaks, List<string> names, List<CaseResult>? spin, List<CaseResult>? byDefault, List<PathResult> paths,
        List<MemoryResult> memory)
    {
        var cases = new List<Dictionary<string, object?>>();
        foreach (var name in names)
        {
            var a = Find(spin, name); var b = Find(byDefault, name);
            var any = a ?? b;
            double oursA = a?.DeepSeqMs ?? double.NaN, torchA = a?.TorchMs ?? double.NaN, oursB = b?.DeepSeqMs ?? double.NaN, torchB = b?.TorchMs ?? double.NaN;
            double flops = any?.Flops ?? double.NaN, peak = Peak(peaks, any?.Threads ?? o.Threads), gflops = flops / (oursA * 1e6);
            var row = new Dictionary<string, object?>
            {
                ["case"] = name,
                ["threads"] = any?.Threads,
                ["gflop"] = Round(flops / 1e9, 4),
                ["flop_formula"] = any?.Formula,
                // Run 1: TorchSharp with GOMP_SPINCOUNT=20000; DeepSeq's figures below are from this run.
                ["deepseq_ms"] = Round(oursA, 4),
                ["torchsharp_ms_spin"] = Round(torchA, 4),
                ["speedup_spin"] = Round(torchA / oursA, 3),
                // Run 2: TorchSharp with libgomp's defaults; DeepSeq measured alternately with it in the same run.
                ["deepseq_ms_default_run"] = Round(oursB, 4),
                ["torchsharp_ms_default"] = Round(torchB, 4),
                ["speedup_default"] = Round(torchB / oursB, 3),
                ["gflops"] = Round(gflops, 2),
                ["torchsharp_gflops_spin"] = Round(flops / (torchA * 1e6), 2),
                ["torchsharp_gflops_default"] = Round(flops / (torchB * 1e6), 2),
                ["peak_width_bits"] = FmaPeak.WidthInUse,
                ["peak_gflops"] = Round(peak, 2),
                ["peak_share"] = Round(gflops / peak, 3),
            };
            if (any is { Rows: > 0 } r)
            {
                row["rows"] = r.Rows;
                row["deepseq_rows_per_s"] = Round(r.Rows / (oursA / 1000), 1);
                row["torchsharp_rows_per_s_spin"] = Round(r.Rows / (torchA / 1000), 1);
                row["deepseq_rows_per_s_default_run"] = Round(r.Rows / (oursB / 1000), 1);
                row["torchsharp_rows_per_s_default"] = Round(r.Rows / (torchB / 1000), 1);
            }
            var errors = new[] { a?.Error, b?.Error }.Where(e => e is not null).ToArray();
            if (errors.Length > 0 || a is null || b is null) row["errors"] = errors.Length > 0 ? errors : ["a run did not report this case"];
            cases.Add(row);
        }
        var report = new Dictionary<string, object?>
        {
            ["quick"] = o.Quick,
            ["threads"] = o.Threads,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["os"] = RuntimeInformation.OSDescription,
            ["processors"] = Environment.ProcessorCount,
            ["torch_openmp"] = new Dictionary<string, string>
            {
                ["spin"] = $"{Runs.SpinVariable}={Runs.SpinValue}",
                ["default"] = "libgomp defaults (GOMP_SPINCOUNT and OMP_WAIT_POLICY unset)",
            },
            ["peaks"] = peaks.Select(p => new Dictionary<string, object?>
            {
                ["width_bits"] = p.WidthBits, ["arithmetic"] = p.Arithmetic, ["threads"] = p.Threads, ["gflops"] = Round(p.Gflops, 2),
            }).ToList(),
            ["cases"] = cases,
            ["paths"] = paths.Select(p => new Dictionary<string, object?>
            {
                ["path"] = p.Path, ["setting"] = p.Env, ["case"] = p.Case[7..], ["threads"] = o.Threads,
                ["vector512"] = p.Vector512, ["vector256"] = p.Vector256, ["vector128"] = p.Vector128, ["fma"] = p.Fma,
                ["width_bits"] = p.Width, ["peak_gflops"] = Round(p.PeakGflops, 2), ["gflop"] = Round(p.Flops / 1e9, 4),
                ["deepseq_ms"] = Round(p.Ms, 4), ["gflops"] = Round(p.Flops / (p.Ms * 1e6), 2),
                ["peak_share"] = Round(p.Flops / (p.Ms * 1e6) / p.PeakGflops, 3), ["error"] = p.Error,
            }).ToList(),
            ["memory"] = memory.Count == 0 ? null : MemoryJson(o, memory),
        };
        return JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    static Dictionary<string, object?> MemoryJson(BenchOptions o, List<MemoryResult> memory)
    {
        var (ours, theirs) = MemorySides(memory);
        var json = new Dictionary<string, object?>
        {
            ["case"] = Runs.MemoryCaseName(o.Quick),
            ["threads"] = memory[0].Threads,
            ["warmup_steps"] = memory[0].WarmupSteps,
            ["steps"] = memory[0].Steps,
            ["unit"] = "MB = 2^20 bytes",
            ["torch_openmp"] = "libgomp defaults",
            // Above 1: DeepSeq uses less.
            ["peak_ratio"] = Round(Bytes(theirs, r => r.PeakBytes) / Bytes(ours, r => r.PeakBytes), 3),
            ["above_baseline_ratio"] = Round(Bytes(theirs, r => r.PeakBytes - r.BaselineBytes) / Bytes(ours, r => r.PeakBytes - r.BaselineBytes), 3),
        };
        foreach (var r in memory)
            json[r.Library.ToLowerInvariant()] = new Dictionary<string, object?>
            {
                ["source"] = r.Source,
                ["baseline_mb"] = Megabytes(r.BaselineBytes),
                ["peak_mb"] = Megabytes(r.PeakBytes),
                ["above_baseline_mb"] = Megabytes(r.PeakBytes - r.BaselineBytes),
                ["after_steps_mb"] = Megabytes(r.FinalBytes),
                ["managed_live_mb"] = Megabytes(r.ManagedLiveBytes),
                ["managed_bytes_allocated_per_step"] = Round(r.AllocatedPerStep, 0),
                ["gc_collections_during_steps"] = r.Collections,
                ["torch_loaded"] = r.TorchLoaded,
                ["error"] = r.Error,
            };
        return json;
    }
}
