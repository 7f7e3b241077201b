// Model comparison within a time budget; the winner is chosen on the validation split and its test accuracy is
// reported once, at the end.
// --task text (default), IMDB: DeepSeq recurrent models (LSTM, GRU, peephole LSTM, coupled LSTM, BiLSTM with attention pooling)
// against n-gram models from ML.NET parts (NB-LR word 1–2-grams, TF-IDF + logistic regression (L-BFGS, SDCA), TF-IDF + averaged
// perceptron), then a seeded successive-halving search over recurrent models, then the averaged and stacked
// ensembles of the best five.
// --task images, Fashion-MNIST: a ResNet-8 and a plain CNN-8 against LightGBM on the raw pixels (30,000 training
// images drawn with the seed unless --train-rows says otherwise).
//   dotnet run -c Release --project samples/ModelComparison                      the default run (--budget 22, then about 4 minutes of ensembles and test scoring)
//   dotnet run -c Release --project samples/ModelComparison -- --budget 10 --json board.json
//   dotnet run -c Release --project samples/ModelComparison -- --task images     (--budget 30)
// Options: --budget MINUTES (text: training and ranking, split 60/40 between the comparison and the search)  --task text|images
//          --json PATH  --csv PATH  --chart PATH (PNG)  --model PATH (the winner, saved)  --seed N  --trials N (text)
//          --train-rows N (use N training rows drawn with the seed; for text a quick check, not figures to quote)  --data DIR
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepSeq.MLNet;
using DeepSeq.Samples;
using Microsoft.ML;
using Microsoft.ML.Transforms.Text;
using Spectre.Console;

var o = CommandLine.Parse(args);
if (o is null) return 2;
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200; // a log file: keep table rows on one line
return o.Task == "images" ? ImageComparison.Run(o, o.BudgetMinutes ?? ImageComparison.DefaultBudgetMinutes) : TextComparison.Run(o, o.BudgetMinutes ?? TextComparison.DefaultBudgetMinutes);

sealed record CommandLine
{
    public double? BudgetMinutes;
    public int Seed = 1, Trials = 9;
    public int? TrainRows;
    public string Task = "text", Chart = "model-comparison.png", Csv = "model-comparison.csv", Model = "model-comparison-best.zip";
    public string? Json, Data;

    public static CommandLine? Parse(string[] args)
    {
        var o = new CommandLine();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--budget": o.BudgetMinutes = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--seed": o.Seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--trials": o.Trials = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--train-rows": o.TrainRows = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--task": o.Task = Next().ToLowerInvariant(); break;
                    case "--data": o.Data = Next(); break;
                    case "--json": o.Json = Next(); break;
                    case "--csv": o.Csv = Next(); break;
                    case "--chart": o.Chart = Next(); break;
                    case "--model": o.Model = Next(); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'. See the top of samples/ModelComparison/Program.cs.");
                }
            }
            if (o.BudgetMinutes is { } b && !(b > 0)) throw new ArgumentException("--budget must be a positive number of minutes.");
            if (o.Task is not ("text" or "images")) throw new ArgumentException($"Unknown task '{o.Task}': use text or images.");
            if (o.TrainRows is < 100) throw new ArgumentException("--train-rows must be at least 100.");
            return o;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine(e.Message);
            return null;
        }
    }
}

static class TextComparison
{
    // The recurrent models' shared settings: sized so that an epoch over the 22,803 training reviews takes about
    // two minutes on a busy 2-core machine (small and short: 48 units, the first 200 tokens); weight averaging and early stopping on the validation split.
    static SequenceBinaryClassificationTrainer.Options Recurrent(SequenceCell cell, bool bidirectional, PoolingMode pooling, IProgress<SequenceTrainingProgress> progress, int seed) => new()
    {
        FeatureColumnName = "Tokens", Cell = cell, Bidirectional = bidirectional, Pooling = pooling, HiddenSize = 48, EmbeddingSize = 64,
        MaxLength = 200, Epochs = 2, LearningRate = 3e-3f, LearningRateDecay = 0.7f, WeightAveraging = 0.998f, Dropout = 0.5f,
        EarlyStoppingPatience = 1, Seed = seed, Progress = progress,
    };

    static IEstimator<ITransformer> Tokens(MLContext ml) => ml.DeepSeq().TokenizeText("Tokens", "Text", maximumVocabularySize: 20_000);

    // TF-IDF over word unigrams and bigrams, L2-normalised (no character n-grams): the scikit-learn reference's features.
    static IEstimator<ITransformer> TfIdf(MLContext ml) => ml.Transforms.Text.FeaturizeText("Features", new TextFeaturizingEstimator.Options
    {
        WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true, Weighting = NgramExtractingEstimator.WeightingCriteria.TfIdf },
        CharFeatureExtractor = null,
        Norm = TextFeaturizingEstimator.NormFunction.L2,
    }, "Text").AppendCacheCheckpoint(ml); // the trainers make many passes: featurize once

    /// <summary>The default <c>--budget</c> for the text task, in minutes: the ensembles and the test scoring come on top (about 4 minutes in the last full run).</summary>
    public const double DefaultBudgetMinutes = 22;

    public static int Run(CommandLine o, double budgetMinutes)
    {
        var total = Stopwatch.StartNew();
        var json = ImdbData.Ensure(o.Data ?? ImdbData.DefaultDirectory, m => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(m)}[/]"));
        var (trainRows, validRows, testRows) = ImdbData.Load(json);
        if (o.TrainRows is int n) // a seeded sample: the file is ordered by label
        {
            var rng = new Random(o.Seed);
            trainRows = [.. trainRows.OrderBy(_ => rng.Next()).Take(n)];
        }
        AnsiConsole.MarkupLine($"IMDB: [bold]{trainRows.Count:N0}[/] train, {validRows.Count:N0} validation, {testRows.Count:N0} test reviews (split by FNV-1a hash). Budget {budgetMinutes:0.#} min.");

        var ml = new MLContext(seed: o.Seed);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var valid = ml.Data.LoadFromEnumerable(validRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var budget = TimeSpan.FromMinutes(budgetMinutes);
        var live = new LiveStatus();

        // 1. The named candidates, 60 % of the budget.
        var candidates = new List<ModelCandidate>
        {
            ModelCandidate.NaiveBayesLogisticRegression("NB-LR, word 1–2-grams"),
            ModelCandidate.Create("TF-IDF + L-BFGS logistic regression", c => TfIdf(c).Append(c.BinaryClassification.Trainers.LbfgsLogisticRegression(l1Regularization: 0, l2Regularization: 0.03f))),
            ModelCandidate.Create("TF-IDF + averaged perceptron", c => TfIdf(c).Append(c.BinaryClassification.Trainers.AveragedPerceptron(numberOfIterations: 10))),
            ModelCandidate.Create("TF-IDF + SDCA logistic regression", c => TfIdf(c).Append(c.BinaryClassification.Trainers.SdcaLogisticRegression())),
            ModelCandidate.Create("LSTM", Tokens, Recurrent(SequenceCell.Lstm, false, PoolingMode.MaxMean, live, o.Seed)),
            ModelCandidate.Create("GRU", Tokens, Recurrent(SequenceCell.Gru, false, PoolingMode.MaxMean, live, o.Seed)),
            ModelCandidate.Create("Peephole LSTM", Tokens, Recurrent(SequenceCell.PeepholeLstm, false, PoolingMode.MaxMean, live, o.Seed)),
            ModelCandidate.Create("Coupled LSTM", Tokens, Recurrent(SequenceCell.CoupledLstm, false, PoolingMode.MaxMean, live, o.Seed)),
            ModelCandidate.Create("BiLSTM, attention pooling", Tokens, Recurrent(SequenceCell.Lstm, true, PoolingMode.Attention, live, o.Seed)),
        };
        var options = new ModelComparisonOptions { Metric = ComparisonMetric.Accuracy, Seed = o.Seed, EnsembleSize = 0, Progress = live, TimeBudget = budget * 0.6 };
        var compared = live.Run("Comparison", () => ml.DeepSeq().CompareModels(candidates, train, valid, options));
        Board.Show("Named candidates (validation accuracy)", compared);

        // 2. The search, on what is left of the budget.
        var space = new SequenceSearchSpace { HiddenSizes = [32, 48, 64], Poolings = [PoolingMode.Max, PoolingMode.MaxMean, PoolingMode.Attention] };
        var baseOptions = Recurrent(SequenceCell.Lstm, false, PoolingMode.MaxMean, live, o.Seed);
        var searchOptions = options.Clone(budget - compared.Elapsed); // the comparison's unspent time goes to the search
        var searched = live.Run("Search", () => ml.DeepSeq().SearchSequenceModels(space, Tokens, baseOptions, train, valid, searchOptions, new ModelSearchOptions { Trials = o.Trials }));
        Board.Show("Search: successive halving (validation accuracy)", searched);

        // 3. Every model that completed, with the averaged and stacked ensembles of the best five, ranked on validation.
        var trained = Board.Completed(compared, searched);
        // Five members: the n-gram models alone lead the board, and the recurrent models' different errors are what the ensembles gain from.
        var finalOptions = new ModelComparisonOptions { Metric = ComparisonMetric.Accuracy, Seed = o.Seed, EnsembleSize = 5, Progress = live };
        var final = live.Run("Ensembles", () => ml.DeepSeq().CompareModels(trained, train, valid, finalOptions));
        Board.Show("Leaderboard (validation accuracy; ensembles of the best five)", final);

        var best = final.Best ?? throw new InvalidOperationException("No model completed.");
        AnsiConsole.MarkupLine($"Winner on validation: [bold]{Markup.Escape(best.Name)}[/] ({best.Metric:F4}). Scoring the test split once …");
        var metrics = ml.BinaryClassification.Evaluate(final.BestModel.Transform(test));
        var whole = total.Elapsed;
        AnsiConsole.MarkupLine($"[bold]Test accuracy {metrics.Accuracy:F4}[/], AUC {metrics.AreaUnderRocCurve:F4}, F1 {metrics.F1Score:F4} ({testRows.Count:N0} reviews). Whole run {whole.TotalMinutes:F1} min.");
        Board.Save(o, final, [compared, searched], new()
        {
            ["task"] = "text", ["budget_minutes"] = budgetMinutes, ["seed"] = o.Seed, ["train_rows"] = trainRows.Count, ["total_seconds"] = Math.Round(whole.TotalSeconds, 1),
            ["winner"] = best.Name, ["test_accuracy"] = metrics.Accuracy, ["test_auc"] = metrics.AreaUnderRocCurve, ["test_f1"] = metrics.F1Score,
            ["comparison"] = JsonNode.Parse(compared.ToJson()), ["search"] = JsonNode.Parse(searched.ToJson()),
        });
        return 0;
    }

}

/// <summary>The leaderboard as a table, and the files every task writes.</summary>
static class Board
{
    /// <summary>The options with a new budget (at least 10 s; null = none) and no ensembles.</summary>
    public static ModelComparisonOptions Clone(this ModelComparisonOptions o, TimeSpan? budget) => new()
    {
        LabelColumnName = o.LabelColumnName, Task = o.Task, Metric = o.Metric, EnsembleSize = 0, Seed = o.Seed, Progress = o.Progress,
        TimeBudget = budget is { } b && b < TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : budget,
    };

    /// <summary>Every model that completed in the phases, as trained candidates to rank together; the phases' notes stay on the board.</summary>
    public static List<ModelCandidate> Completed(params ModelComparisonResult[] phases) =>
        [.. phases.SelectMany(p => p.Leaderboard.Where(e => e.Status == CandidateStatus.Completed).Select(e =>
        {
            var candidate = ModelCandidate.Trained(e.Name, p.GetModel(e.Name), e.TrainingTime);
            candidate.Description = e.Reason ?? e.Description;
            return candidate;
        }))];

    public static void Show(string title, ModelComparisonResult result)
    {
        string metric = result.Metric == ComparisonMetric.MicroAccuracy ? "Micro-accuracy" : result.Metric.ToString();
        var table = new Table().Title(title).AddColumns("#", "Model", "Status", metric, "Train", "Rows/s", "Size", "Note");
        foreach (var e in result.Leaderboard)
            table.AddRow(e.Rank == 0 ? "" : e.Rank.ToString(CultureInfo.InvariantCulture), Markup.Escape(e.Name), e.Status.ToString(),
                double.IsNaN(e.Metric) ? "" : e.Metric.ToString("F4", CultureInfo.InvariantCulture) + (e.FoldMetrics.Count > 1 ? $" ± {e.MetricStandardDeviation:F4}" : ""),
                $"{e.TrainingTime.TotalSeconds:F0} s", e.ScoringRowsPerSecond > 0 ? $"{e.ScoringRowsPerSecond:N0}" : "", e.ModelSizeBytes > 0 ? $"{e.ModelSizeBytes / 1e6:F1} MB" : "",
                Markup.Escape(e.Reason ?? e.Description ?? (e.Members.Count > 0 ? string.Join(" + ", e.Members) : "")));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape(title)}: {result.Elapsed.TotalMinutes:F1} min[/]");
    }

    /// <summary>Saves the winner, the leaderboard (CSV), the chart and, with <c>--json</c>, <paramref name="report"/> with the leaderboard added.</summary>
    public static void Save(CommandLine o, ModelComparisonResult final, ModelComparisonResult[] phases, JsonObject report)
    {
        final.SaveBestModel(o.Model);
        final.WriteCsv(o.Csv);
        Chart.Write(o.Chart, final, phases);
        AnsiConsole.MarkupLine($"Saved the winner to {Markup.Escape(o.Model)}, the leaderboard to {Markup.Escape(o.Csv)}, the chart to {Markup.Escape(o.Chart)}.");
        if (o.Json is null) return;
        report["leaderboard"] = JsonNode.Parse(final.ToJson());
        File.WriteAllText(o.Json, report.ToJsonString(new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}

/// <summary>One line of live progress: the comparison's stage and the recurrent model's epoch, batch and loss.</summary>
sealed class LiveStatus : IProgress<ModelComparisonProgress>, IProgress<SequenceTrainingProgress>
{
    ProgressTask? _bar;
    string _stage = "";

    public T Run<T>(string phase, Func<T> work)
    {
        T result = default!;
        AnsiConsole.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                _bar = ctx.AddTask(phase, maxValue: 1.0);
                result = work();
                _bar.Value = 1;
            });
        _bar = null;
        return result;
    }

    public void Report(ModelComparisonProgress p)
    {
        _stage = $"{p.Candidate} ({p.Index + 1}/{p.Count}) {p.Stage}";
        if (_bar is { } bar) { bar.Description = Markup.Escape(_stage); bar.Value = (p.Index + (p.Stage == "done" ? 1.0 : 0.0)) / p.Count; }
        if (p.Finished is { } e)
            AnsiConsole.MarkupLine($"  {Markup.Escape(e.Name)}: {e.Status}{(double.IsNaN(e.Metric) ? "" : $", validation accuracy {e.Metric:F4}")}, {e.TrainingTime.TotalSeconds:F0} s" +
                (e.Reason is null ? "" : $" [grey]({Markup.Escape(e.Reason)})[/]"));
    }

    public void Report(SequenceTrainingProgress p)
    {
        if (_bar is { } bar)
            bar.Description = Markup.Escape($"{_stage}: epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:F3} {p.SequencesPerSecond:F0} seq/s" +
                (p.ValidationMetric is double acc ? $" val {acc:F3}" : ""));
    }
}
