// Vanishing and exploding gradients through time, measured on your own model (Pascanu, Mikolov & Bengio 2013).
//   dotnet run -c Release --project samples/GradientFlow                  the full comparison (about 15 minutes on 2 cores)
//   dotnet run -c Release --project samples/GradientFlow -- --quick       a small one (about a minute)
// Options: --lengths 25,50,100,200  --tasks adding,copy  --models tanh-gauss,tanh-orth,relu-identity,relu-gauss,lstm,lstm-peephole,lstm-coupled,gru
//          --hidden N  --batch-size N  --epochs N (per length)  --batches N (per epoch)  --learning-rate X  --seed N
//          --parallel N (tasks trained side by side, one thread each; default 2)  --out DIR  --json PATH
//          --cost-only (measure what recording costs per training step at --hidden, and stop)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeq.Core.Diagnostics;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;
using GradientFlow;
using Spectre.Console;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 240; // a log file: keep table rows on one line
var o = Settings.Parse(args);
if (o is null) return 2;
Directory.CreateDirectory(o.Out);
LongRangeTask[] allTasks = [new AddingTask(), new CopyTask()];
var tasks = allTasks.Where(t => o.Tasks.Contains(t.Name)).ToArray();
var variants = Variant.All(o.Hidden).Where(v => o.Models.Contains(v.Name)).ToArray();
AnsiConsole.MarkupLine($"[bold]Gradient flow[/]: {variants.Length} models × clipping on/off × {tasks.Length} tasks, lengths {string.Join(", ", o.Lengths)}; " +
    $"hidden {o.Hidden}, batch {o.BatchSize}, at most {o.Epochs} × {o.Batches} steps per length, Adam {o.LearningRate}.");

var clock = Stopwatch.StartNew();
var cost = Cost.Measure(o);
AnsiConsole.MarkupLine($"Diagnostics cost (LSTM, H {o.Hidden}, L 100, batch {o.BatchSize}, one thread, every step recorded): {cost.PlainMs:F1} ms CPU per step off, {cost.RecordedMs:F1} ms on ({cost.Overhead:P1}).");
if (o.CostOnly) return 0;

// One list per task, filled by that task's worker: the tasks run side by side (each run on one thread; results
// do not depend on the thread count), the models of a task one after another.
var rowsOf = tasks.ToDictionary(t => t.Name, _ => new List<Row>());
var initialFlows = tasks.ToDictionary(t => t.Name, _ => new List<(string Name, LayerGradientFlow Flow)>());
var trainedFlows = tasks.ToDictionary(t => t.Name, _ => new List<(string Name, LayerGradientFlow Flow)>());
var curves = tasks.ToDictionary(t => t.Name, _ => new List<(string Name, List<double> Loss)>());
var console = new object();
Parallel.ForEach(tasks, new ParallelOptions { MaxDegreeOfParallelism = o.Parallel }, task =>
{
    initialFlows[task.Name].AddRange(variants.Select(v => (v.Name, Runner.FlowAtInitialisation(task, v, o.Lengths.Max(), o))));
    foreach (var variant in variants)
        foreach (bool clip in new[] { true, false })
        {
            var row = Runner.Curriculum(task, variant, clip, o);
            rowsOf[task.Name].Add(row);
            lock (console) AnsiConsole.MarkupLine(Markup.Escape(row.Line()) + $"  [grey]({clock.Elapsed:mm\\:ss})[/]");
            if (clip && row.LastFlow is not null) trainedFlows[task.Name].Add((variant.Name, row.LastFlow));
            if (clip) curves[task.Name].Add((variant.Name, row.Curve));
        }
});
var rows = tasks.SelectMany(t => rowsOf[t.Name]).ToList();

foreach (var task in tasks)
{
    Plots.Flow(Path.Combine(o.Out, $"flow-at-init-{task.Name}.png"), $"{task.Name}: ‖dL/dh_k‖ at initialisation, L = {o.Lengths.Max()}", initialFlows[task.Name]);
    Plots.Flow(Path.Combine(o.Out, $"flow-trained-{task.Name}.png"), $"{task.Name}: ‖dL/dh_k‖ at the end of training (longest length tried, clipped)", trainedFlows[task.Name]);
    Plots.Curves(Path.Combine(o.Out, $"curves-{task.Name}.png"), $"{task.Name}: validation loss through the length curriculum (clipped)", curves[task.Name]);
}

// At initialisation: how far back the untrained model's gradient reaches on the longest length.
var atInit = new Table().Border(TableBorder.Markdown);
foreach (var h in new[] { "task", "model", "η", $"‖dL/dh‖ at {o.Lengths.Max() - 1} steps back / at the last step", "effective memory" }) atInit.AddColumn(h);
var initJson = new List<object>();
foreach (var task in tasks)
    foreach (var (name, flow) in initialFlows[task.Name])
    {
        double reach = flow.GradientNorm[^1] / flow.GradientNorm[0];
        atInit.AddRow(task.Name, name, $"{flow.Eta:F3}", $"{reach:G3}", flow.EffectiveMemory?.ToString(CultureInfo.InvariantCulture) ?? $"≥{flow.Length}");
        initJson.Add(new { task = task.Name, model = name, length = flow.Length, eta = flow.Eta, reach, effectiveMemory = flow.EffectiveMemory });
    }
AnsiConsole.MarkupLine("[bold]At initialisation[/] (one batch, no training):");
AnsiConsole.Write(atInit);

var table = new Table().Border(TableBorder.Markdown);
foreach (var h in Row.Header) table.AddColumn(h);
foreach (var r in rows) table.AddRow([.. r.Cells().Select(Markup.Escape)]);
AnsiConsole.Write(table);
foreach (var task in tasks) AnsiConsole.MarkupLine(Markup.Escape($"{task.Name}: solved = {task.SolvedWhen}."));
AnsiConsole.MarkupLine($"Plots in {Markup.Escape(Path.GetFullPath(o.Out))}; {clock.Elapsed:mm\\:ss} in all.");
if (o.Json is not null)
{
    var json = new { settings = o, diagnosticsCost = cost, atInitialisation = initJson, rows = rows.Select(r => r.ToJson()) };
    File.WriteAllText(o.Json, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true, IncludeFields = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
    AnsiConsole.MarkupLine($"Table written to {Markup.Escape(o.Json)}.");
}
return 0;

sealed record Settings
{
    public int[] Lengths = [25, 50, 100, 200];
    public string[] Tasks = ["adding", "copy"];
    public string[] Models = [.. Variant.All(1).Select(v => v.Name)];
    public int Hidden = 32, BatchSize = 32, Epochs = 40, Batches = 50, Seed = 1, Parallel = 2;
    public float LearningRate = 0.01f;
    public string Out = "gradient-flow-output";
    public string? Json;
    public bool CostOnly;

    public static Settings? Parse(string[] args)
    {
        var o = new Settings();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
                string[] List() => Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                switch (args[i])
                {
                    case "--quick": o.Lengths = [25, 50]; o.Hidden = 16; o.Epochs = 4; o.Batches = 25; break;
                    case "--lengths": o.Lengths = [.. List().Select(s => int.Parse(s, CultureInfo.InvariantCulture)).Order()]; break;
                    case "--tasks": o.Tasks = List(); break;
                    case "--models": o.Models = List(); break;
                    case "--hidden": o.Hidden = Int(); break;
                    case "--batch-size": o.BatchSize = Int(); break;
                    case "--epochs": o.Epochs = Int(); break;
                    case "--batches": o.Batches = Int(); break;
                    case "--seed": o.Seed = Int(); break;
                    case "--parallel": o.Parallel = Int(); break;
                    case "--cost-only": o.CostOnly = true; break;
                    case "--learning-rate": o.LearningRate = float.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--out": o.Out = Next(); break;
                    case "--json": o.Json = Next(); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'.");
                }
            }
            var unknownTask = o.Tasks.FirstOrDefault(t => t is not ("adding" or "copy"));
            if (unknownTask is not null) throw new ArgumentException($"Unknown task '{unknownTask}' (adding, copy).");
            var names = Variant.All(1).Select(v => v.Name).ToHashSet();
            var unknownModel = o.Models.FirstOrDefault(m => !names.Contains(m));
            if (unknownModel is not null) throw new ArgumentException($"Unknown model '{unknownModel}' ({string.Join(", ", names)}).");
            if (o.Lengths.Length == 0 || o.Lengths[0] < 8) throw new ArgumentException("Lengths must be at least 8.");
            if (o.Hidden < 1 || o.BatchSize < 1 || o.Epochs < 1 || o.Batches < 1 || o.Parallel < 1) throw new ArgumentException("--hidden, --batch-size, --epochs, --batches and --parallel must be positive.");
            if (!(o.LearningRate > 0)) throw new ArgumentException("--learning-rate must be positive.");
            return o;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine(e.Message);
            return null;
        }
    }
}

/// <summary>A model to compare: a cell and how its recurrent weights start.</summary>
sealed record Variant(string Name, string Description, RecurrentCellSpec Cell, Action<RecurrentCell, Random> InitializeRecurrent)
{
    public static IEnumerable<Variant> All(int hidden)
    {
        var tanh = new RecurrentCellSpec(RecurrentCellKind.Rnn);
        var relu = new RecurrentCellSpec(RecurrentCellKind.Rnn) { RnnActivation = ActivationKind.Relu };
        void Orthogonal(RecurrentCell c, Random r) => Initializers.InitializeCell(c, RecurrentInitializer.XavierOrthogonal, unitForgetBias: true, r);
        void Gaussian(RecurrentCell c, Random r, float sd)
        {
            Orthogonal(c, r);
            Initializers.Normal(c.WeightHh.Value.Data, sd, r);
            c.WeightHh.MarkChanged();
        }
        yield return new("tanh-gauss", "tanh RNN, W_hh ~ N(0, 1/H)", tanh, (c, r) => Gaussian(c, r, 1f / MathF.Sqrt(hidden)));
        yield return new("tanh-orth", "tanh RNN, W_hh orthogonal", tanh, Orthogonal);
        yield return new("relu-identity", "ReLU RNN, W_hh = I (IRNN)", relu, (c, r) =>
        {
            Orthogonal(c, r);
            var w = c.WeightHh.Value.Data;
            Array.Clear(w);
            for (int i = 0; i < c.HiddenSize; i++) w[i * c.HiddenSize + i] = 1f;
            c.WeightHh.MarkChanged();
        });
        yield return new("relu-gauss", "ReLU RNN, W_hh ~ N(0, 2/H) (He)", relu, (c, r) => Gaussian(c, r, MathF.Sqrt(2f / hidden)));
        yield return new("lstm", "LSTM", new RecurrentCellSpec(RecurrentCellKind.Lstm), Orthogonal);
        yield return new("lstm-peephole", "LSTM, peepholes on all gates", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.All }, Orthogonal);
        yield return new("lstm-coupled", "LSTM, f = 1 − i", new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true }, Orthogonal);
        yield return new("gru", "GRU", new RecurrentCellSpec(RecurrentCellKind.Gru), Orthogonal);
    }

    public StepModel Build(LongRangeTask task, int hidden, int seed)
    {
        var model = new StepModel(Cell, task.Features, hidden, task.Outputs, task.ReadSteps);
        var random = new Random(seed);
        foreach (var cell in model.Recurrent.Cells) InitializeRecurrent(cell, random);
        Initializers.Initialize(model.Head, random);
        return model;
    }
}

/// <summary>One line of the table: a model, with or without clipping, on one task, through the length curriculum.</summary>
sealed record Row(string Task, string Model, bool Clipped)
{
    public int LongestSolved, LastLength, Steps;
    public string Outcome = "";
    public double EtaStart = double.NaN, EtaEnd = double.NaN, LargestGradientNorm = double.NaN, TestMetric = double.NaN;
    public int? MemoryStart, MemoryEnd;
    public string? Divergence;
    public List<double> Curve = [];
    public LayerGradientFlow? LastFlow;

    public static readonly string[] Header = ["task", "model", "clip", "η start", "η end", "memory start", "memory end", "longest solved", "outcome", "largest ‖g‖", "steps", "test"];

    static string Memory(int? m, int length) => m is int v ? v.ToString(CultureInfo.InvariantCulture) : $"≥{length}";

    public IEnumerable<string> Cells() =>
    [
        Task, Model, Clipped ? "1.0" : "off", $"{EtaStart:F3}", $"{EtaEnd:F3}", Memory(MemoryStart, LastLength), Memory(MemoryEnd, LastLength),
        LongestSolved > 0 ? LongestSolved.ToString(CultureInfo.InvariantCulture) : "–", $"{Outcome} at L {LastLength}", double.IsFinite(LargestGradientNorm) ? $"{LargestGradientNorm:G3}" : "overflow", Steps.ToString(CultureInfo.InvariantCulture),
        double.IsNaN(TestMetric) ? "–" : Task == "adding" ? $"MSE {-TestMetric:F4}" : $"acc {TestMetric:F3}",
    ];

    public string Line() => string.Join(" | ", Cells());

    public object ToJson() => new
    {
        task = Task, model = Model, clipping = Clipped ? 1.0 : 0.0, etaStart = EtaStart, etaEnd = EtaEnd, effectiveMemoryStart = MemoryStart, effectiveMemoryEnd = MemoryEnd,
        lengthOfFigures = LastLength, longestSolved = LongestSolved, outcome = Outcome, converged = Outcome == "solved", diverged = Divergence is not null,
        divergence = Divergence, largestGradientNorm = LargestGradientNorm, testMetric = double.IsNaN(TestMetric) ? (double?)null : TestMetric, steps = Steps,
    };
}

static class Runner
{
    /// <summary>One backward pass of the untrained model on a training batch of the longest length: the flow it starts with.</summary>
    public static LayerGradientFlow FlowAtInitialisation(LongRangeTask task, Variant variant, int length, Settings o)
    {
        var model = variant.Build(task, o.Hidden, o.Seed);
        using var never = new CancellationTokenSource();
        var run = new StepTask(model, task, length, o.BatchSize, 1, o.BatchSize, o.Seed, never);
        var batch = run.CreateBatch();
        run.Fill(batch, [.. Enumerable.Range(0, o.BatchSize)]);
        var probe = new GradientFlowProbe(model);
        probe.Arm();
        run.ForwardBackward(batch);
        return probe.Collect()[0];
    }

    /// <summary>Lengths in increasing order, each from a fresh model, until one is not solved; the flow figures come from the last length tried.</summary>
    public static Row Curriculum(LongRangeTask task, Variant variant, bool clip, Settings o)
    {
        var row = new Row(task.Name, variant.Name, clip);
        StepTask? lastSolved = null;
        double largest = double.NegativeInfinity;
        foreach (int length in o.Lengths)
        {
            var model = variant.Build(task, o.Hidden, o.Seed);
            using var solved = new CancellationTokenSource();
            var run = new StepTask(model, task, length, o.Batches * o.BatchSize, 512, o.BatchSize, o.Seed * 1000 + length, solved);
            var report = Trainer.Train(run, new TrainingOptions
            {
                Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, GradientClipNorm = clip ? 1f : 0f,
                EarlyStoppingPatience = 0, Seed = o.Seed, CancellationToken = solved.Token, NumberOfThreads = 1,
                GradientFlow = new GradientFlowOptions { EveryBatches = 25 },
            });
            var flow = report.GradientFlow!;
            if (!(flow.LargestGradientNorm <= largest)) largest = flow.LargestGradientNorm;
            row.Steps += (int)report.Steps;
            row.Curve.AddRange(run.Curve.Select(c => c.Loss));
            row.LastLength = length;
            row.EtaStart = flow.First?.Layers[0].Eta ?? double.NaN;
            row.EtaEnd = flow.Last?.Layers[0].Eta ?? double.NaN;
            row.MemoryStart = flow.First?.Layers[0].EffectiveMemory;
            row.MemoryEnd = flow.Last?.Layers[0].EffectiveMemory;
            row.LastFlow = flow.Last?.Layers[0];
            row.Divergence = report.Divergence;
            if (solved.IsCancellationRequested) { row.LongestSolved = length; row.Outcome = "solved"; lastSolved = run; continue; }
            row.Outcome = report.Divergence is not null ? "diverged" : "not solved";
            break;
        }
        row.LargestGradientNorm = largest;
        // The test split, once, for the model of the longest length solved.
        if (lastSolved is not null) row.TestMetric = lastSolved.Test(2000, o.Seed * 1000 + 999_983).Metric;
        return row;
    }
}

/// <summary>What recording costs: training steps with every step recorded against none.</summary>
sealed record Cost(double PlainMs, double RecordedMs)
{
    public double Overhead => RecordedMs / PlainMs - 1;

    public static Cost Measure(Settings o)
    {
        var task = new AddingTask();
        var variant = Variant.All(o.Hidden).Single(v => v.Name == "lstm");
        var model = variant.Build(task, o.Hidden, o.Seed);
        using var never = new CancellationTokenSource();
        var run = new StepTask(model, task, 100, o.BatchSize, 1, o.BatchSize, o.Seed, never);
        var batch = run.CreateBatch();
        run.Fill(batch, [.. Enumerable.Range(0, o.BatchSize)]);
        var probe = new GradientFlowProbe(model);
        // CPU time of the process on one kernel thread: waiting for a core on the shared machine does not count.
        var process = Process.GetCurrentProcess();
        using var oneThread = DeepSeq.Core.Kernels.Gemm.LimitThreads(1);
        double Time(bool record)
        {
            process.Refresh();
            var start = process.TotalProcessorTime;
            for (int i = 0; i < 10; i++)
            {
                if (record) probe.Arm();
                run.ForwardBackward(batch);
                if (record) probe.Collect();
            }
            process.Refresh();
            return (process.TotalProcessorTime - start).TotalMilliseconds / 10;
        }
        for (int i = 0; i < 3; i++) { Time(false); Time(true); } // warm up (tiered compilation)
        // The fastest of 16 rounds of 10 steps each way, which goes first alternating: the machine is shared, the noise one-sided.
        double plain = double.MaxValue, recorded = double.MaxValue;
        for (int round = 0; round < 16; round++)
        {
            if (round % 2 == 0) { plain = Math.Min(plain, Time(false)); recorded = Math.Min(recorded, Time(true)); }
            else { recorded = Math.Min(recorded, Time(true)); plain = Math.Min(plain, Time(false)); }
        }
        return new Cost(plain, recorded);
    }
}
