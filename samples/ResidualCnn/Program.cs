// Fashion-MNIST with a residual CNN trained from scratch on the CPU by DeepSeq, evaluated with ML.NET.
//   dotnet run -c Release --project samples/ResidualCnn                        ResNet-20: train, evaluate, save
//   dotnet run -c Release --project samples/ResidualCnn -- --compare-depth 20  the same depth with and without skip connections
//   dotnet run -c Release --project samples/ResidualCnn -- --activations       the ReLU family on one small network
// Options: --epochs N (default: as many as fit in --minutes, 30)  --depth N (6n+2)  --widths 16,32,64  --batch-size N  --learning-rate X  --optimizer sgd|adam
//          --schedule onecycle|cosine  --weight-decay X  --no-augmentation  --no-batch-norm  --plain  --zero-init-residual  --activation NAME
//          --compare-epochs N  --activation-epochs N  --activation-depth N  --train-limit N  --eval-limit N (comparisons: validation and test images scored)  --no-main  --seed N
//          --data DIR (the four idx files)  --model PATH  --json PATH  --plots DIR
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeq.Core.Format;
using DeepSeq.Core.Layers.Convolution;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResidualCnn;
using Spectre.Console;

var o = CommandLine.Parse(args);
if (o is null) return 2;
try { return App.Run(o); }
catch (Exception e) when (e is InvalidOperationException or InvalidDataException or FileNotFoundException or ArgumentException)
{
    AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
    return 1;
}

sealed record CommandLine
{
    public int Epochs, Depth = 20, BatchSize = 128, Seed = 1, CompareDepth, CompareEpochs = 4, ActivationEpochs = 3, ActivationDepth = 8, TrainLimit, EvalLimit;
    public int[] Widths = [16, 32, 64];
    public double Minutes = 30;
    public float LearningRate = 0.1f, WeightDecay = 5e-4f;
    public string Optimizer = "sgd", Schedule = "onecycle";
    public bool Augmentation = true, BatchNorm = true, Residual = true, Main = true, Activations, ZeroInitResidual;
    public ActivationFunction Activation = ActivationFunction.Relu;
    public string Model = "fashion-resnet.dseq", Plots = ".";
    public string? Data, Json;

    public static CommandLine? Parse(string[] args)
    {
        var o = new CommandLine();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
                float Float() => float.Parse(Next(), CultureInfo.InvariantCulture);
                switch (args[i])
                {
                    case "--epochs": o.Epochs = Int(); break;
                    case "--minutes": o.Minutes = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--depth": o.Depth = Int(); break;
                    case "--widths": o.Widths = [.. Next().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))]; break;
                    case "--batch-size": o.BatchSize = Int(); break;
                    case "--learning-rate": o.LearningRate = Float(); break;
                    case "--weight-decay": o.WeightDecay = Float(); break;
                    case "--optimizer": o.Optimizer = Next().ToLowerInvariant(); break;
                    case "--schedule": o.Schedule = Next().ToLowerInvariant(); break;
                    case "--no-augmentation": o.Augmentation = false; break;
                    case "--no-batch-norm": o.BatchNorm = false; break;
                    case "--plain": o.Residual = false; break;
                    case "--zero-init-residual": o.ZeroInitResidual = true; break;
                    case "--activation": o.Activation = Enum.Parse<ActivationFunction>(Next(), ignoreCase: true); break;
                    case "--compare-depth": o.CompareDepth = Int(); break;
                    case "--compare-epochs": o.CompareEpochs = Int(); break;
                    case "--activations": o.Activations = true; break;
                    case "--activation-epochs": o.ActivationEpochs = Int(); break;
                    case "--activation-depth": o.ActivationDepth = Int(); break;
                    case "--train-limit": o.TrainLimit = Int(); break;
                    case "--eval-limit": o.EvalLimit = Int(); break;
                    case "--no-main": o.Main = false; break;
                    case "--seed": o.Seed = Int(); break;
                    case "--data": o.Data = Next(); break;
                    case "--model": o.Model = Next(); break;
                    case "--json": o.Json = Next(); break;
                    case "--plots": o.Plots = Next(); break;
                    default: throw new ArgumentException($"Unknown option {args[i]}.");
                }
            }
            if (o.Optimizer is not ("sgd" or "adam")) throw new ArgumentException($"--optimizer must be sgd or adam, got {o.Optimizer}.");
            if (o.Schedule is not ("onecycle" or "cosine")) throw new ArgumentException($"--schedule must be onecycle or cosine, got {o.Schedule}.");
            return o;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
            return null;
        }
    }
}

/// <summary>One training run's outcome.</summary>
sealed record RunResult(string Name, ImageClassifier Model, TrainingReport Report, double Seconds, double TestAccuracy, double ValidationAccuracy);

static class App
{
    // Fashion-MNIST's pixel mean and standard deviation (training set, pixels in [0, 1]).
    const float PixelMean = 0.2860f, PixelStd = 0.3530f;

    public static int Run(CommandLine o)
    {
        var (all, test) = FashionMnist.Load(o.Data, m => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(m)}[/]"));
        Normalize(all); Normalize(test);
        var (train, validation) = FashionMnist.Split(all);
        if (o.TrainLimit > 0 && o.TrainLimit < train.Count) train = train.Subset([.. Enumerable.Range(0, o.TrainLimit)]);
        AnsiConsole.MarkupLine($"Fashion-MNIST: [bold]{train.Count:N0}[/] train, {validation.Count:N0} validation (index % 12 == 0), {test.Count:N0} test images, {train.Height}×{train.Width}; {Environment.ProcessorCount} cores.");
        var json = new Dictionary<string, object>();

        if (o.Main)
        {
            var config = ImageClassifierConfig.ForDepth(o.Depth, train.Height, train.Width, train.Channels, 10, o.Residual) with
            { StageWidths = o.Widths, BatchNorm = o.BatchNorm, Activation = o.Activation, ZeroInitResidual = o.ZeroInitResidual };
            string name = $"{(o.Residual ? "ResNet" : "plain")}-{config.Depth}";
            int epochs = o.Epochs > 0 ? o.Epochs : EpochsWithin(o.Minutes, config, o, train);
            var run = Train(name, config, o, epochs, train, validation, test);
            var metrics = EvaluateWithMlNet(run.Model, test);
            AnsiConsole.MarkupLine($"[bold]{name}[/] test accuracy (ML.NET MulticlassClassification.Evaluate): micro [bold]{metrics.MicroAccuracy:F4}[/], macro {metrics.MacroAccuracy:F4}, log-loss {metrics.LogLoss:F4}; trained in {run.Seconds / 60:F1} min.");
            AnsiConsole.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
            File.WriteAllBytes(o.Model, ModelFile.Write(SavedModel.Create("ImageClassifier", run.Model.Config, run.Model)));
            AnsiConsole.MarkupLine($"Saved the model to [bold]{Markup.Escape(Path.GetFullPath(o.Model))}[/].");
            json["test_accuracy"] = Math.Round(metrics.MicroAccuracy, 4);
            json["test_macro_accuracy"] = Math.Round(metrics.MacroAccuracy, 4);
            json["train_seconds"] = Math.Round(run.Seconds, 1);
            json["epochs"] = run.Report.Epochs.Count;
            json["model"] = name;
        }

        // The comparisons may score fewer validation and test images (the first N of each) to fit a budget.
        var (cmpValidation, cmpTest) = o.EvalLimit > 0
            ? (validation.Subset([.. Enumerable.Range(0, Math.Min(o.EvalLimit, validation.Count))]), test.Subset([.. Enumerable.Range(0, Math.Min(o.EvalLimit, test.Count))]))
            : (validation, test);
        if (o.CompareDepth > 0)
        {
            var rows = new List<Dictionary<string, object>>();
            var curves = new List<(string, double[])>();
            foreach (bool residual in new[] { false, true })
            {
                var config = ImageClassifierConfig.ForDepth(o.CompareDepth, train.Height, train.Width, train.Channels, 10, residual) with { StageWidths = o.Widths };
                string name = $"{(residual ? "ResNet" : "plain")}-{o.CompareDepth}";
                var run = Train(name, config, o, o.CompareEpochs, train, cmpValidation, cmpTest);
                rows.Add(Row(run, ("residual", residual)));
                curves.Add((name, [.. run.Report.Epochs.Select(e => e.TrainLoss)]));
                curves.Add((name + " validation error", [.. run.Report.Epochs.Select(e => 1 - (e.ValidationMetric ?? double.NaN))]));
            }
            PrintTable($"Depth {o.CompareDepth}, {o.CompareEpochs} epochs: with and without skip connections", rows);
            string png = Path.Combine(o.Plots, $"compare-depth-{o.CompareDepth}.png");
            Plot(png, $"Fashion-MNIST, {o.CompareDepth} layers: plain vs residual", "training loss / validation error", curves);
            json["compare_depth"] = rows;
        }

        if (o.Activations)
        {
            var rows = new List<Dictionary<string, object>>();
            var curves = new List<(string, double[])>();
            foreach (var fn in Enum.GetValues<ActivationFunction>())
            {
                var config = ImageClassifierConfig.ForDepth(o.ActivationDepth, train.Height, train.Width, train.Channels, 10) with { StageWidths = o.Widths, Activation = fn };
                var run = Train($"{fn} ResNet-{o.ActivationDepth}", config, o, o.ActivationEpochs, train, cmpValidation, cmpTest);
                // Dead units and mean activation on one batch of (up to) 512 test images, in inference mode.
                int probe = Math.Min(512, cmpTest.Count);
                run.Model.Forward(new float[probe * 10], cmpTest.Pixels.AsSpan(0, probe * cmpTest.ImageSize), probe, training: false);
                var (dead, mean) = run.Model.ActivationStatistics();
                rows.Add(Row(run, ("activation", fn.ToString()), ("dead_units", Math.Round(dead, 4)), ("mean_activation", Math.Round(mean, 4))));
                curves.Add((fn.ToString(), [.. run.Report.Epochs.Select(e => 1 - (e.ValidationMetric ?? double.NaN))]));
            }
            PrintTable($"The ReLU family: ResNet-{o.ActivationDepth}, {o.ActivationEpochs} epochs each", rows);
            Plot(Path.Combine(o.Plots, "activations.png"), $"Fashion-MNIST, ResNet-{o.ActivationDepth}: the ReLU family", "validation error", curves);
            json["activations"] = rows;
        }

        if (o.Json is not null)
        {
            File.WriteAllText(o.Json, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
            AnsiConsole.MarkupLine($"Wrote {Markup.Escape(o.Json)}.");
        }
        return 0;
    }

    /// <summary>
    /// The epochs that fit in <paramref name="minutes"/> on this machine now: a few timed training steps of a
    /// throwaway copy of the model, plus a validation pass per epoch (a forward of a tenth of the data).
    /// </summary>
    static int EpochsWithin(double minutes, ImageClassifierConfig config, CommandLine o, ImageDataset train)
    {
        var probe = new ImageClassifier(config, o.Seed);
        probe.Initialize(new Random(o.Seed));
        int n = Math.Min(o.BatchSize, train.Count);
        var logits = new float[n * 10];
        var images = train.Pixels.AsSpan(0, n * train.ImageSize);
        // Warm up for 8 s (first touch of the workspace, thread start, and the JIT's move from quick code to optimised
        // code, which takes a few seconds of calls), then the median of six: three early steps over-estimated a
        // ResNet-20 step by a third (0.64 s timed after two warm-up steps, 0.49 s in training), costing an epoch.
        var warmUp = Stopwatch.StartNew();
        while (warmUp.Elapsed.TotalSeconds < 8) { probe.Forward(logits, images, n, training: true); probe.Backward(logits); }
        var times = new double[6];
        for (int i = 0; i < times.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            probe.Forward(logits, images, n, training: true); probe.Backward(logits);
            times[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(times);
        double step = (times[2] + times[3]) / 2;
        double epoch = step * Math.Ceiling((double)train.Count / n) * 1.08; // + validation (about a third of a step per batch over a tenth as much data) and the optimiser
        int epochs = Math.Max(1, (int)(minutes * 60 / epoch));
        AnsiConsole.MarkupLine($"A training step of {n} images takes {step:F2} s here now: about {epoch / 60:F1} min per epoch, so [bold]{epochs}[/] epoch(s) fit in {minutes:F0} min (set --epochs to choose).");
        return epochs;
    }

    static void Normalize(ImageDataset data)
    {
        var p = data.Pixels;
        for (int i = 0; i < p.Length; i++) p[i] = (p[i] - PixelMean) / PixelStd;
    }

    static RunResult Train(string name, ImageClassifierConfig config, CommandLine o, int epochs, ImageDataset train, ImageDataset validation, ImageDataset test)
    {
        var model = new ImageClassifier(config, o.Seed);
        model.Initialize(new Random(o.Seed));
        int parameters = model.Parameters.Sum(p => p.Value.Length);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(name)}[/]: {config.Depth} layers, widths {string.Join("/", config.StageWidths)}, {config.Activation}, {parameters:N0} parameters; {epochs} epochs of {o.BatchSize}, {o.Optimizer} {o.Schedule} peak {o.LearningRate}.");
        var options = new ImageTrainingOptions
        {
            Epochs = epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, Seed = o.Seed,
            Optimizer = o.Optimizer == "adam" ? OptimizerKind.Adam : OptimizerKind.Sgd, Momentum = 0.9f, Nesterov = true,
            WeightDecay = o.WeightDecay, GradientClipNorm = 5f, EarlyStoppingPatience = 0, LengthBucketing = false,
            Schedule = o.Schedule == "cosine" ? LearningRateSchedule.Cosine() : LearningRateSchedule.OneCycle(peakFraction: 0.25f),
            Flip = o.Augmentation, CropPadding = o.Augmentation ? 2 : 0,
        };
        var watch = Stopwatch.StartNew();
        TrainingReport report = null!;
        AnsiConsole.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(name), maxValue: 1);
                report = ImageTrainer.Train(model, train, validation, options with
                {
                    Progress = new Reporter(p =>
                    {
                        task.Value = (p.Epoch - 1 + (double)p.Batch / Math.Max(1, p.Batches)) / p.Epochs;
                        task.Description = Markup.Escape($"{name} epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F3} {p.SequencesPerSecond:F0} img/s");
                        if (p.ValidationMetric is double v && p.Batch == p.Batches)
                            AnsiConsole.MarkupLine($"  {Markup.Escape(name)} epoch {p.Epoch}: train loss {p.Loss:F4}, validation accuracy {v:F4}, {p.SequencesPerSecond:F0} images/s, elapsed {p.Elapsed:mm\\:ss}");
                    }),
                });
            });
        double seconds = watch.Elapsed.TotalSeconds;
        if (report.Divergence is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(report.Divergence)}[/]");
        foreach (var w in report.Warnings) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(w)}[/]");
        var (_, validationAccuracy) = ImageTrainer.Evaluate(model, validation);
        var (_, testAccuracy) = ImageTrainer.Evaluate(model, test);
        AnsiConsole.MarkupLine($"  {Markup.Escape(name)}: validation {validationAccuracy:F4}, test {testAccuracy:F4}, {seconds / 60:F1} min.");
        return new RunResult(name, model, report, seconds, testAccuracy, validationAccuracy);
    }

    static Dictionary<string, object> Row(RunResult run, params (string Key, object Value)[] extra)
    {
        var row = new Dictionary<string, object> { ["model"] = run.Name };
        foreach (var (k, v) in extra) row[k] = v;
        row["epochs"] = run.Report.Epochs.Count;
        row["final_train_loss"] = Math.Round(run.Report.Epochs.Count > 0 ? run.Report.Epochs[^1].TrainLoss : double.NaN, 4);
        row["validation_accuracy"] = Math.Round(run.ValidationAccuracy, 4);
        row["test_accuracy"] = Math.Round(run.TestAccuracy, 4);
        row["train_seconds"] = Math.Round(run.Seconds, 1);
        return row;
    }

    static void PrintTable(string title, List<Dictionary<string, object>> rows)
    {
        var table = new Table { Title = new TableTitle(Markup.Escape(title)) };
        foreach (var key in rows[0].Keys) table.AddColumn(key);
        foreach (var row in rows) table.AddRow([.. row.Values.Select(v => Markup.Escape(Convert.ToString(v, CultureInfo.InvariantCulture) ?? ""))]);
        AnsiConsole.Write(table);
    }

    static void Plot(string path, string title, string yLabel, List<(string Name, double[] Values)> curves)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (curveName, values) in curves)
        {
            var line = plot.Add.Scatter(Enumerable.Range(1, values.Length).Select(e => (double)e).ToArray(), values);
            line.LegendText = curveName;
        }
        plot.Title(title); plot.XLabel("epoch"); plot.YLabel(yLabel);
        plot.ShowLegend();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 560);
        AnsiConsole.MarkupLine($"Wrote {Markup.Escape(path)}.");
    }

    /// <summary>Test-set metrics from ML.NET's multiclass evaluator, fed the model's class probabilities.</summary>
    static MulticlassClassificationMetrics EvaluateWithMlNet(ImageClassifier model, ImageDataset test)
    {
        var probabilities = ImageTrainer.Predict(model, test);
        int k = model.Config.Classes;
        var rows = new ScoredImage[test.Count];
        for (int i = 0; i < test.Count; i++)
        {
            var score = probabilities.AsSpan(i * k, k).ToArray();
            rows[i] = new ScoredImage { Label = (uint)test.Labels[i], Score = score, PredictedLabel = (uint)System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(score) };
        }
        var ml = new MLContext(seed: 0);
        return ml.MulticlassClassification.Evaluate(ml.Data.LoadFromEnumerable(rows));
    }

    sealed class ScoredImage
    {
        [KeyType(10)] public uint Label { get; set; }            // LoadFromEnumerable takes key values as 0-based indices
        [VectorType(10)] public float[] Score { get; set; } = [];
        [KeyType(10)] public uint PredictedLabel { get; set; }
    }

    sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
