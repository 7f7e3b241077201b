// DeepSeq.Core against TorchSharp-cpu (libtorch, 2 threads) on the same machine, in the same run.
// Usage: dotnet run -c Release --project bench/DeepSeq.Bench -- [--json PATH] [--filter TEXT] [--threads N]
// Prints a table of median times and writes, with --json, an array of
// {case, deepseq_ms, torchsharp_ms, speedup (= torchsharp_ms / deepseq_ms), gflops, peak_share}.
using System.Text.Json;
using DeepSeq.Bench;
using DeepSeq.Core.Kernels;

// libtorch's OpenMP threads spin after each parallel region (GNU OpenMP: 300,000 spins by default, about
// milliseconds). Run side by side in one process, that spinning takes the cores DeepSeq's next run needs
// (measured here: DeepSeq's GEMM 17–19 ms while torch's threads spin, 12 ms otherwise). GOMP_SPINCOUNT=20000
// still covers the gap between torch's own back-to-back regions (its batch-1 LSTM keeps its best time,
// 0.16 ms) but ends before DeepSeq starts. libgomp reads it when it loads, hence the relaunch.
if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null && Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is null && Environment.ProcessPath is string self)
{
    var psi = new System.Diagnostics.ProcessStartInfo(self) { UseShellExecute = false };
    if (!self.EndsWith("DeepSeq.Bench", StringComparison.Ordinal) && !self.EndsWith("DeepSeq.Bench.exe", StringComparison.Ordinal))
        psi.ArgumentList.Add(typeof(Measure).Assembly.Location); // started as `dotnet DeepSeq.Bench.dll`
    foreach (var a in args) psi.ArgumentList.Add(a);
    psi.Environment["GOMP_SPINCOUNT"] = "20000";
    using var child = System.Diagnostics.Process.Start(psi)!;
    child.WaitForExit();
    return child.ExitCode;
}

string? jsonPath = null, filter = null;
int threads = Environment.ProcessorCount;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--json": jsonPath = args[++i]; break;
        case "--filter": filter = args[++i]; break;
        case "--threads": threads = int.Parse(args[++i]); break;
        default: Console.Error.WriteLine($"Unknown argument '{args[i]}'. Usage: [--json PATH] [--filter TEXT] [--threads N]"); return 2;
    }
}

LibTorchSharpFix.Apply();
TorchSharp.torch.set_num_threads(threads);
Gemm.MaxThreads = threads;

double peak = FmaPeak.GigaFlops(threads);
Console.WriteLine($"Threads: {threads}. FMA peak (float32, {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 512 : 256)}-bit): {peak:F1} GFLOP/s");
Console.WriteLine();
Console.WriteLine($"{"case",-44} {"DeepSeq ms",11} {"Torch ms",10} {"speedup",8} {"GFLOP/s",8} {"of peak",8}");

var results = new List<Dictionary<string, object>>();
foreach (var c in Cases.All())
{
    if (filter is not null && !c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
    using (c)
    {
        var (ours, theirs) = Measure.MedianMs(c.DeepSeq, c.Torch, c.Warmup, c.Repetitions);
        double gflops = c.Flops / (ours * 1e6);
        Console.WriteLine($"{c.Name,-44} {ours,11:F3} {theirs,10:F3} {theirs / ours,7:F2}x {gflops,8:F1} {gflops / peak,7:P0}");
        results.Add(new()
        {
            ["case"] = c.Name, ["deepseq_ms"] = Math.Round(ours, 4), ["torchsharp_ms"] = Math.Round(theirs, 4),
            ["speedup"] = Math.Round(theirs / ours, 3), ["gflops"] = Math.Round(gflops, 2), ["peak_share"] = Math.Round(gflops / peak, 3),
        });
    }
}
if (jsonPath is not null)
{
    File.WriteAllText(jsonPath, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"\nWrote {jsonPath}");
}
return 0;
