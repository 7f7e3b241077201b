using System.Diagnostics;
using DeepSeq.Core.Models;
using DeepSeq.MLNet;
using Microsoft.ML;
using System.Text.Json.Nodes;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;
using ResidualCnn;
using Spectre.Console;

/// <summary>
/// <c>--task images</c>: Fashion-MNIST (<c>docs/protocols.md</c>), a seeded sample of the training split, a residual
/// and a plain CNN of the same depth from <c>ImageClassification</c> against LightGBM on the raw pixels; ranked on the
/// validation split, then a seeded successive-halving search over depth, width and activation; the winner of both is
/// scored on the test split once. Multiclass, so no ensembles.
/// </summary>
static class ImageComparison
{
    /// <summary>Training images drawn with the seed unless <c>--train-rows</c> says otherwise: small enough for the CNNs' epochs to fit the default budget.</summary>
    public const int DefaultTrainRows = 30_000;
    /// <summary>The default <c>--budget</c> for the image task, in minutes.</summary>
    public const double DefaultBudgetMinutes = 30;
    const int Side = 28;

    sealed class ImageRow
    {
        public uint Label;
        [VectorType(Side * Side)] public float[] Pixels = [];
    }

    static List<ImageRow> Rows(ImageDataset d)
    {
        int size = d.ImageSize;
        return [.. Enumerable.Range(0, d.Count).Select(i => new ImageRow { Label = (uint)d.Labels[i], Pixels = d.Pixels.AsSpan(i * size, size).ToArray() })];
    }

    static IEstimator<ITransformer> Key(MLContext ml) => ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue);

    // ResNet-8 sized (one basic block per stage of 16, 32, 64 channels): an epoch over the default sample takes
    // about 40 s on an idle 2-core machine; the budget stops a fit between steps, keeping its best epoch.
    static ImageClassificationOptions Cnn(bool residual, int epochs, IProgress<SequenceTrainingProgress> progress, int seed) => new()
    {
        FeatureColumnName = "Pixels", Height = Side, Width = Side, Channels = 1, StageWidths = [16, 32, 64], BlocksPerStage = 1, Residual = residual,
        Epochs = epochs, Seed = seed, Progress = progress,
    };

    public static int Run(CommandLine o, double budgetMinutes)
    {
        var total = Stopwatch.StartNew();
        var (all, testSet) = FashionMnist.Load(o.Data, m => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(m)}[/]"));
        var (trainSet, validSet) = FashionMnist.Split(all);
        var rng = new Random(o.Seed);
        trainSet = trainSet.Subset([.. Enumerable.Range(0, trainSet.Count).OrderBy(_ => rng.Next()).Take(o.TrainRows ?? DefaultTrainRows)]);
        AnsiConsole.MarkupLine($"Fashion-MNIST: [bold]{trainSet.Count:N0}[/] train (drawn with the seed), {validSet.Count:N0} validation, {testSet.Count:N0} test images. Budget {budgetMinutes:0.#} min.");

        var ml = new MLContext(seed: o.Seed);
        var train = ml.Data.LoadFromEnumerable(Rows(trainSet));
        var valid = ml.Data.LoadFromEnumerable(Rows(validSet));
        var test = ml.Data.LoadFromEnumerable(Rows(testSet));
        var live = new LiveStatus();
        var candidates = new List<ModelCandidate>
        {
            // One thread: on the busy 2-core machine, 400 images took 8 s so, and over 70 s (stopped) with LightGBM's default threads.
            ModelCandidate.Create("LightGBM, raw pixels", c => Key(c).Append(c.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
            {
                FeatureColumnName = "Pixels", NumberOfIterations = 100, NumberOfThreads = 1,
            }))),
            ModelCandidate.Create("ResNet-8", Key, Cnn(residual: true, 5, live, o.Seed)),
            ModelCandidate.Create("Plain CNN-8", Key, Cnn(residual: false, 5, live, o.Seed)),
        };
        var budget = TimeSpan.FromMinutes(budgetMinutes);
        var options = new ModelComparisonOptions
        {
            Task = SequenceTaskKind.MulticlassClassification, Metric = ComparisonMetric.MicroAccuracy, Seed = o.Seed, Progress = live, TimeBudget = budget * 0.6,
        };
        var compared = live.Run("Comparison", () => ml.DeepSeq().CompareModels(candidates, train, valid, options));
        Board.Show("Named candidates (validation micro-accuracy)", compared);

        // 2. The search over depth, width and activation, on what is left of the budget, 3 epochs a trial. The space
        // is sized so that a trial's one-cycle schedule fits its share of a round: cut at its peak learning rate, a
        // network's batch-norm running statistics lag its weights and it scores near chance (24/48/96-wide ResNet-14s,
        // 4 epochs, did so in a 25-minute run).
        var space = new ImageSearchSpace { BlocksPerStage = [1, 2], StageWidths = [[8, 16, 32], [16, 32, 64]] };
        var searchOptions = options.Clone(budget - compared.Elapsed);
        var searched = live.Run("Search", () => ml.DeepSeq().SearchImageModels(space, Key, Cnn(residual: true, 3, live, o.Seed), train, valid, searchOptions, new ModelSearchOptions { Trials = o.Trials }));
        Board.Show("Search: successive halving (validation micro-accuracy)", searched);

        // 3. Every model that completed on one board (multiclass: no ensembles).
        var final = live.Run("Ranking", () => ml.DeepSeq().CompareModels(Board.Completed(compared, searched), train, valid, options.Clone(budget: null)));
        Board.Show("Leaderboard (validation micro-accuracy)", final);

        var best = final.Best ?? throw new InvalidOperationException("No model completed.");
        AnsiConsole.MarkupLine($"Winner on validation: [bold]{Markup.Escape(best.Name)}[/] ({best.Metric:F4}). Scoring the test split once …");
        var metrics = ml.MulticlassClassification.Evaluate(final.BestModel.Transform(test));
        var whole = total.Elapsed;
        AnsiConsole.MarkupLine($"[bold]Test accuracy {metrics.MicroAccuracy:F4}[/] (macro {metrics.MacroAccuracy:F4}, log-loss {metrics.LogLoss:F4}; {testSet.Count:N0} images). Whole run {whole.TotalMinutes:F1} min.");
        Board.Save(o, final, [compared, searched], new()
        {
            ["task"] = "images", ["budget_minutes"] = budgetMinutes, ["seed"] = o.Seed, ["train_rows"] = trainSet.Count, ["total_seconds"] = Math.Round(whole.TotalSeconds, 1),
            ["winner"] = best.Name, ["test_accuracy"] = metrics.MicroAccuracy, ["test_macro_accuracy"] = metrics.MacroAccuracy, ["test_log_loss"] = metrics.LogLoss,
            ["comparison"] = JsonNode.Parse(compared.ToJson()), ["search"] = JsonNode.Parse(searched.ToJson()),
        });
        return 0;
    }
}
