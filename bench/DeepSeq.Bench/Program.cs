// DeepSeq.Core against TorchSharp-cpu (libtorch) on the same machine, the same work and the same thread count.
// Usage: dotnet run -c Release --project bench/DeepSeq.Bench -- [--quick] [--cases TEXT[,TEXT…]] [--threads N] [--json PATH] [--list]
//   --quick    few iterations and less data: checks that every case runs (a few minutes), not figures to quote
//   --cases    only the cases whose name contains one of the texts (case-insensitive); "paths" selects the vector paths
//   --threads  threads of both libraries (default: the processor count); the batch-1 cases fix their own, 1 and 2
//   --json     also write every figure to PATH
//   --list     print the case names and exit
// The bench is a parent process that measures the multiply-add peaks and then starts itself as child runs:
//   1. every case, DeepSeq and TorchSharp alternately, with GOMP_SPINCOUNT=20000 (torch's threads sleep soon);
//   2. every case again with libtorch's default OpenMP settings (GOMP_SPINCOUNT and OMP_WAIT_POLICY unset);
//   3. the LSTM training step, DeepSeq alone, on each vector path (DOTNET_EnableAVX512=0, DOTNET_EnableAVX2=0,
//      DOTNET_EnableHWIntrinsic=0 and the default), each reporting which vector widths were accelerated;
//   4. a short IMDB training, DeepSeq alone then TorchSharp alone, each reporting its process's peak resident set.
// It then prints one table with both TorchSharp settings side by side.
using DeepSeq.Bench;

var options = BenchOptions.Parse(args);
if (options is null) return 2;
if (options.List)
{
    foreach (var c in Cases.All()) Console.WriteLine(c.Name);
    Console.WriteLine(Runs.PathCaseName(options.Quick));
    Console.WriteLine(Runs.MemoryCaseName(options.Quick));
    return 0;
}
return options.Child switch
{
    null => Runs.Parent(options),
    "path" => Runs.PathChild(options),
    "memory-deepseq" or "memory-torch" => Runs.MemoryChild(options),
    _ => Runs.TorchChild(options),
};

/// <summary>The command line.</summary>
sealed record BenchOptions
{
    public string? Json, Child, Out;
    public string[]? Cases;
    public int Threads = Environment.ProcessorCount, PathIndex;
    public bool Quick, List;

    public const string Usage = "Usage: [--quick] [--cases TEXT[,TEXT…]] [--threads N] [--json PATH] [--list]";

    public static BenchOptions? Parse(string[] args)
    {
        var o = new BenchOptions();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--json": o.Json = Path.GetFullPath(Next()); break;
                    case "--cases" or "--filter": o.Cases = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                    case "--threads": o.Threads = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                    case "--quick": o.Quick = true; break;
                    case "--list": o.List = true; break;
                    // Internal: how the parent starts its child runs.
                    case "--child": o.Child = Next(); break;
                    case "--path": o.PathIndex = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                    case "--out": o.Out = Next(); break;
                    default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
                }
            }
            if (o.Threads < 1) throw new ArgumentException("--threads must be at least 1.");
            return o;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine($"{e.Message} {Usage}");
            return null;
        }
    }

    /// <summary>True when <paramref name="name"/> is selected by --cases (all are without it).</summary>
    public bool Selects(string name) => Cases is null || Cases.Any(c => name.Contains(c, StringComparison.OrdinalIgnoreCase));

    /// <summary>The arguments a child run is started with.</summary>
    public IEnumerable<string> ChildArguments(string child, string output)
    {
        yield return "--child"; yield return child;
        yield return "--out"; yield return output;
        yield return "--threads"; yield return Threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (Quick) yield return "--quick";
        if (Cases is not null) { yield return "--cases"; yield return string.Join(',', Cases); }
    }
}
