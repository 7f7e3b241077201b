using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using DeepSeq.Core.Kernels;
using DeepSeq.Core.Layers.Recurrent;

namespace DeepSeq.Bench;

/// <summary>The parent process and its child runs.</summary>
static class Runs
{
    /// <summary>
    /// libtorch's GNU OpenMP threads spin after each parallel region (300,000 spins by default, milliseconds).
    /// Run side by side in one process, that spinning takes the cores DeepSeq's next run needs (measured on the
    /// 2-core machine: DeepSeq's GEMM 17–19 ms while torch's threads spin, 12 ms otherwise). 20,000 spins still
    /// cover the gap between torch's own back-to-back regions but end before DeepSeq starts. libgomp reads the
    /// setting when it loads, hence one child process per setting.
    /// </summary>
    public const string SpinVariable = "GOMP_SPINCOUNT", SpinValue = "20000";
    static readonly string[] OpenMpVariables = [SpinVariable, "OMP_WAIT_POLICY"];

    // The vector-path case: the main table's LSTM training step, shorter in --quick runs because the scalar
    // paths are slow.
    const int PathInput = 128, PathHidden = 256, PathBatch = 32;
    static int PathSteps(bool quick) => quick ? 10 : 100;
    public static string PathCaseName(bool quick) => $"paths: {Cases.RecurrentName(new RecurrentCellSpec(RecurrentCellKind.Lstm), PathInput, PathHidden, PathBatch, PathSteps(quick), false, true)}";

    // The memory case: a short IMDB training (the training-step case's model and batch), each library alone in
    // its own process, so that neither's allocations or loaded libraries count against the other.
    static int MemoryWarmupSteps(bool quick) => quick ? 1 : 3;
    static int MemorySteps(bool quick) => quick ? 10 : 50;
    public static string MemoryCaseName(bool quick) =>
        $"IMDB peak memory, {MemorySteps(quick)} training steps V{ImdbCases.Vocabulary} E{ImdbCases.Embedding} BiLSTM H{ImdbCases.Hidden} B{ImdbCases.Batch} T{ImdbCases.Steps}";
    static readonly (string Child, string Library)[] MemorySides = [("memory-deepseq", "DeepSeq"), ("memory-torch", "TorchSharp")];

    static readonly JsonSerializerOptions Exchange = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    // The multiply-add peak of every width on 1, 2 and o.Threads threads, each the best of this measurement and `earlier`.
    static List<PeakResult> MeasurePeaks(BenchOptions o, List<PeakResult> earlier, string note)
    {
        var peaks = new List<PeakResult>();
        var threadCounts = new[] { 1, 2, o.Threads }.Distinct().Order().ToArray();
        foreach (int width in FmaPeak.Widths())
            foreach (int t in threadCounts)
            {
                double now = FmaPeak.GigaFlops(width, t, o.Quick ? 2 : 3);
                double before = earlier.FirstOrDefault(p => p.WidthBits == width && p.Threads == t)?.Gflops ?? 0;
                peaks.Add(new PeakResult(width, FmaPeak.Arithmetic, t, Math.Max(now, before)));
            }
        Console.WriteLine($"Peak, float32 multiply-add, GFLOP/s{note}: " + string.Join("; ", FmaPeak.Widths().Select(w =>
            $"{WidthName(w)} " + string.Join(", ", peaks.Where(p => p.WidthBits == w).Select(p => $"{p.Gflops:F1} on {p.Threads}")))));
        return peaks;
    }

    public static int Parent(BenchOptions o)
    {
        var specs = Cases.All().Where(c => o.Selects(c.Name)).ToList();
        bool paths = o.Selects(PathCaseName(o.Quick)), memoryCase = o.Selects(MemoryCaseName(o.Quick));
        if (specs.Count == 0 && !paths && !memoryCase) { Console.Error.WriteLine("No case matches --cases; see --list."); return 2; }

        Console.WriteLine($"DeepSeq.Bench{(o.Quick ? " --quick (few iterations: a check that every case runs, not figures to quote)" : "")}");
        Console.WriteLine($"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} processors; threads: {o.Threads}");
        Console.WriteLine($"Accelerated here: {Accelerated()}; multiply-add: {FmaPeak.Arithmetic}");
        var peaks = new List<PeakResult>();
        bool measurePeaks = specs.Count > 0 || paths; // the memory case alone does not use them
        if (measurePeaks) peaks = MeasurePeaks(o, peaks, "");
        Console.WriteLine();

        List<CaseResult>? spin = null, byDefault = null;
        if (specs.Count > 0)
        {
            Console.WriteLine($"Run 1 of 2: TorchSharp with {SpinVariable}={SpinValue}");
            spin = Child<List<CaseResult>>(o, "spin", env => { foreach (var v in OpenMpVariables) env.Remove(v); env[SpinVariable] = SpinValue; });
            Console.WriteLine();
            Console.WriteLine("Run 2 of 2: TorchSharp with its default OpenMP settings");
            byDefault = Child<List<CaseResult>>(o, "default", env => { foreach (var v in OpenMpVariables) env.Remove(v); });
            Console.WriteLine();
        }
        var pathResults = new List<PathResult>();
        if (paths)
        {
            Console.WriteLine($"Vector paths, DeepSeq alone: {PathCaseName(o.Quick)[7..]}");
            for (int i = 0; i < VectorPath.All.Length; i++)
            {
                var path = VectorPath.All[i];
                var result = Child<PathResult>(o, "path", env =>
                {
                    foreach (var v in OpenMpVariables) env.Remove(v);
                    foreach (var p in VectorPath.All) if (p.Variable is not null) env.Remove(p.Variable);
                    if (path.Variable is not null) env[path.Variable] = "0";
                }, ["--path", i.ToString(CultureInfo.InvariantCulture)]);
                pathResults.Add(result ?? new PathResult(path.Name, path.Env, false, false, false, false, 0, "", 0, PathCaseName(o.Quick), 0, double.NaN, "the child run failed"));
            }
            Console.WriteLine();
        }
        var memory = new List<MemoryResult>();
        if (memoryCase)
        {
            Console.WriteLine($"{MemoryCaseName(o.Quick)}: each library alone in its own process, torch with its default OpenMP settings");
            // Here rather than in the TorchSharp child, which would otherwise read the library into its own heap.
            LibTorchSharpFix.Apply();
            foreach (var (child, library) in MemorySides)
                memory.Add(Child<MemoryResult>(o, child, env => { foreach (var v in OpenMpVariables) env.Remove(v); })
                    ?? FailedMemory(o, library, torchLoaded: false, "the child run failed"));
            Console.WriteLine();
        }

        // Again after the cases, keeping each setting's best: a shared host sometimes withholds a core's full rate for a
        // moment, and a peak measured in such a moment would overstate every share of it.
        if (measurePeaks) peaks = MeasurePeaks(o, peaks, " (again after the cases; the best of both is used)");
        Report.Print(o, peaks, specs.Select(s => s.Name).ToList(), spin, byDefault, pathResults, memory);
        if (o.Json is not null)
        {
            File.WriteAllText(o.Json, Report.Json(o, peaks, specs.Select(s => s.Name).ToList(), spin, byDefault, pathResults, memory));
            Console.WriteLine($"\nWrote {o.Json}");
        }
        return 0;
    }

    static string WidthName(int bits) => bits == 32 ? "scalar" : $"{bits}-bit";

    static string Accelerated() =>
        $"Vector512 {YesNo(Vector512.IsHardwareAccelerated)}, Vector256 {YesNo(Vector256.IsHardwareAccelerated)}, Vector128 {YesNo(Vector128.IsHardwareAccelerated)}";

    static string YesNo(bool b) => b ? "yes" : "no";

    /// <summary>Starts this program again as a child run and reads what it wrote; null when it failed.</summary>
    static T? Child<T>(BenchOptions o, string child, Action<IDictionary<string, string?>> environment, string[]? extra = null) where T : class
    {
        string output = Path.Combine(Path.GetTempPath(), $"deepseq-bench-{Environment.ProcessId}-{child}-{Guid.NewGuid():N}.json");
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this program's path to start its child runs.");
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileName(self) is not ("DeepSeq.Bench" or "DeepSeq.Bench.exe"))
            psi.ArgumentList.Add(typeof(Runs).Assembly.Location); // started as `dotnet DeepSeq.Bench.dll`
        foreach (var a in o.ChildArguments(child, output)) psi.ArgumentList.Add(a);
        foreach (var a in extra ?? []) psi.ArgumentList.Add(a);
        environment(psi.Environment);
        try
        {
            using var process = Process.Start(psi)!;
            process.WaitForExit();
            if (process.ExitCode != 0 || !File.Exists(output))
            {
                Console.WriteLine($"  the {child} run failed (exit code {process.ExitCode})");
                return null;
            }
            return JsonSerializer.Deserialize<T>(File.ReadAllText(output), Exchange);
        }
        finally { File.Delete(output); }
    }

    // The exception's first line (libtorch appends its native stack to the message).
    static string Error(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}";

    static void SetThreads(int threads)
    {
        Gemm.MaxThreads = threads;
        TorchSharp.torch.set_num_threads(threads);
    }

    /// <summary>A child run of every selected case, DeepSeq and TorchSharp alternately, under this process's OpenMP setting.</summary>
    public static int TorchChild(BenchOptions o)
    {
        LibTorchSharpFix.Apply();
        var ctx = new BenchContext(o.Threads, o.Quick);
        SetThreads(o.Threads);
        var results = new List<CaseResult>();
        foreach (var spec in Cases.All().Where(c => o.Selects(c.Name)))
        {
            Console.Write($"  {spec.Name,-54}");
            try
            {
                using var c = spec.Build(ctx);
                // Each case is timed on a collected heap (and with the native memory of earlier cases' tensors freed by
                // their finalizers): what earlier cases left is not collected during its timed runs, on either side.
                GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
                SetThreads(c.Threads);
                var (ours, theirs) = Measure.MedianMs(c.DeepSeq, c.Torch!, c.Settings);
                SetThreads(o.Threads);
                results.Add(new CaseResult(c.Name, c.Threads, c.Flops, c.Formula, c.Rows, ours, theirs, null));
                Console.WriteLine($" DeepSeq {Report.Ms(ours),9} ms   TorchSharp {Report.Ms(theirs),9} ms");
            }
            catch (Exception e)
            {
                SetThreads(o.Threads);
                results.Add(new CaseResult(spec.Name, 0, 0, "", 0, double.NaN, double.NaN, Error(e)));
                Console.WriteLine($" failed: {Error(e)}");
            }
        }
        File.WriteAllText(o.Out!, JsonSerializer.Serialize(results, Exchange));
        return 0;
    }

    /// <summary>A child run on one vector path: its accelerated widths, its peak, and the LSTM training step, DeepSeq alone.</summary>
    public static int PathChild(BenchOptions o)
    {
        var path = VectorPath.All[o.PathIndex];
        Gemm.MaxThreads = o.Threads;
        int width = FmaPeak.WidthInUse;
        double peak = FmaPeak.GigaFlops(width, o.Threads, o.Quick ? 2 : 3);
        bool fma = FmaPeak.HasFma;
        string name = PathCaseName(o.Quick);
        Console.Write($"  {path.Name,-18} {path.Env,-28} {Accelerated()}, {FmaPeak.Arithmetic}; ");
        PathResult result;
        try
        {
            var ctx = new BenchContext(o.Threads, o.Quick);
            using var c = Cases.RecurrentCase(new RecurrentCellSpec(RecurrentCellKind.Lstm), PathInput, PathHidden, PathBatch, PathSteps(o.Quick),
                bidirectional: false, train: true, ctx, withTorch: false);
            // The narrow paths are slow today (seconds per step): a short warm-up (one slow run is enough) and
            // few timed runs; the fast paths still get up to 10.
            var settings = o.Quick ? new MeasureSettings(1, 0.3, 1, 3, 2) : new MeasureSettings(2, 2, 2, 10, 20);
            double ms = Measure.MedianMs(c.DeepSeq, settings);
            result = new PathResult(path.Name, path.Env, Vector512.IsHardwareAccelerated, Vector256.IsHardwareAccelerated, Vector128.IsHardwareAccelerated,
                fma, width, FmaPeak.Arithmetic, peak, name, c.Flops, ms, null);
            Console.WriteLine($"{Report.Ms(ms)} ms");
        }
        catch (Exception e)
        {
            result = new PathResult(path.Name, path.Env, Vector512.IsHardwareAccelerated, Vector256.IsHardwareAccelerated, Vector128.IsHardwareAccelerated,
                fma, width, FmaPeak.Arithmetic, peak, name, 0, double.NaN, Error(e));
            Console.WriteLine($"failed: {Error(e)}");
        }
        File.WriteAllText(o.Out!, JsonSerializer.Serialize(result, Exchange));
        return 0;
    }

    /// <summary>
    /// A child run of one library alone: the resident set right before its IMDB model is built, then warm-up and
    /// timed-length training steps, then the process's peak resident set and (per step) the managed allocations.
    /// </summary>
    public static int MemoryChild(BenchOptions o)
    {
        string library = MemorySides.Single(s => s.Child == o.Child).Library;
        Console.Write($"  {library,-11} ");
        MemoryResult result;
        try
        {
            result = library == "DeepSeq" ? DeepSeqMemory(o) : TorchMemory(o);
            Console.WriteLine($"baseline {Report.Mb(result.BaselineBytes)} MB, peak {Report.Mb(result.PeakBytes)} MB ({result.Source}), " +
                $"managed {result.AllocatedPerStep:F0} bytes allocated per step");
        }
        catch (Exception e)
        {
            result = FailedMemory(o, library, ResidentSet.TorchLoaded(), Error(e));
            Console.WriteLine($"failed: {Error(e)}");
        }
        File.WriteAllText(o.Out!, JsonSerializer.Serialize(result, Exchange));
        return 0;
    }

    static MemoryResult FailedMemory(BenchOptions o, string library, bool torchLoaded, string error) =>
        new(library, o.Threads, MemoryWarmupSteps(o.Quick), MemorySteps(o.Quick), "", 0, 0, 0, 0, double.NaN, 0, torchLoaded, error);

    // Each side in a method of its own, so that the DeepSeq run's code refers to no TorchSharp type.
    static MemoryResult DeepSeqMemory(BenchOptions o)
    {
        Gemm.MaxThreads = o.Threads;
        var (ids, targets) = ImdbCases.TrainData();
        return TrainForMemory(o, "DeepSeq", () => (ImdbCases.DeepSeqTrainStep(ids, targets), null));
    }

    static MemoryResult TorchMemory(BenchOptions o)
    {
        TorchSharp.torch.set_num_threads(o.Threads); // loads libtorch: part of the baseline
        var (ids, targets) = ImdbCases.TrainData();
        return TrainForMemory(o, "TorchSharp", () => ImdbCases.TorchTrainStep(ids, targets));
    }

    static MemoryResult TrainForMemory(BenchOptions o, string library, Func<(Action Step, IDisposable? Resources)> build)
    {
        int warmup = MemoryWarmupSteps(o.Quick), steps = MemorySteps(o.Quick);
        long baseline = ResidentSet.Read().Current;
        var (step, resources) = build();
        try
        {
            for (int i = 0; i < warmup; i++) step();
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            int collections = GC.CollectionCount(0);
            for (int i = 0; i < steps; i++) step();
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            collections = GC.CollectionCount(0) - collections; // a gen-1 or gen-2 collection counts in gen 0 too
            var (final, peak, source) = ResidentSet.Read();
            long live = GC.GetTotalMemory(forceFullCollection: true);
            return new MemoryResult(library, o.Threads, warmup, steps, source, baseline, peak, final, live, (double)allocated / steps, collections,
                ResidentSet.TorchLoaded(), null);
        }
        finally { resources?.Dispose(); }
    }
}
