// IMDB sentiment with DeepSeq.MLNet, side by side with ML.NET's own FeaturizeText + SDCA logistic regression.
//   dotnet run -c Release --project samples/Sentiment                       train, evaluate, compare, save
//   dotnet run -c Release --project samples/Sentiment -- --predict "text"   load the saved model and explain
// Options: --epochs N  --cell lstm|gru|rnn|peephole|coupled  --hidden N  --layers N  --bidirectional true|false
//          --pooling maxmean|max|mean|last|attention  --embedding N  --max-length N  --batch-size N  --learning-rate X
//          --lr-decay X (per epoch)  --averaging X (weight moving-average decay, 0 = off)  --keep-end (of reviews longer than --max-length)  --dropout X  --vocabulary N  --seed N  --model PATH  --json PATH  --data DIR  --no-baseline
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeq.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Sentiment;
using Spectre.Console;

var opts = CommandLine.Parse(args);
if (opts is null) return 2;
return opts.Predict is not null ? Predictor.Run(opts) : Trainer.Run(opts);

sealed record CommandLine
{
    public int Epochs = 6, Hidden = SequenceOptions.Defaults.HiddenSize, Layers = 1, Embedding = SequenceOptions.Defaults.EmbeddingSize;
    public int MaxLength = SequenceOptions.Defaults.MaxLength, BatchSize = SequenceOptions.Defaults.BatchSize, Vocabulary = 20_000, Seed = 1;
    public float LearningRate = SequenceOptions.Defaults.LearningRate, LearningRateDecay = 0.7f, Averaging = 0.998f, Dropout = SequenceOptions.Defaults.Dropout;
    public SequenceCell Cell = SequenceCell.Lstm;
    public bool Bidirectional = true, Baseline = true, KeepEnd;
    public PoolingMode Pooling = PoolingMode.MaxMean;
    public string Model = "sentiment-model.zip", Data = ImdbData.DefaultDirectory;
    public string? Json, Predict;

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
                    case "--hidden": o.Hidden = Int(); break;
                    case "--layers": o.Layers = Int(); break;
                    case "--embedding": o.Embedding = Int(); break;
                    case "--max-length": o.MaxLength = Int(); break;
                    case "--batch-size": o.BatchSize = Int(); break;
                    case "--vocabulary": o.Vocabulary = Int(); break;
                    case "--seed": o.Seed = Int(); break;
                    case "--learning-rate": o.LearningRate = Float(); break;
                    case "--dropout": o.Dropout = Float(); break;
                    case "--lr-decay": o.LearningRateDecay = Float(); break;
                    case "--averaging": o.Averaging = Float(); break;
                    case "--bidirectional": o.Bidirectional = bool.Parse(Next()); break;
                    case "--no-baseline": o.Baseline = false; break;
                    case "--keep-end": o.KeepEnd = true; break;
                    case "--model": o.Model = Next(); break;
                    case "--json": o.Json = Next(); break;
                    case "--data": o.Data = Next(); break;
                    case "--predict": o.Predict = Next(); break;
                    case "--cell":
                        o.Cell = Next().ToLowerInvariant() switch
                        {
                            "lstm" => SequenceCell.Lstm, "gru" => SequenceCell.Gru, "rnn" => SequenceCell.Rnn,
                            "peephole" => SequenceCell.PeepholeLstm, "coupled" => SequenceCell.CoupledLstm,
                            var c => throw new ArgumentException($"Unknown cell '{c}': use lstm, gru, rnn, peephole or coupled."),
                        };
                        break;
                    case "--pooling": o.Pooling = Enum.Parse<PoolingMode>(Next(), ignoreCase: true); break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'. See the top of samples/Sentiment/Program.cs.");
                }
            }
            return o;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine(e.Message);
            return null;
        }
    }
}

static class Trainer
{
    public static int Run(CommandLine o)
    {
        var json = ImdbData.Ensure(o.Data, m => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(m)}[/]"));
        var (trainRows, validRows, testRows) = ImdbData.Load(json);
        AnsiConsole.MarkupLine($"IMDB: [bold]{trainRows.Count:N0}[/] train, {validRows.Count:N0} validation, {testRows.Count:N0} test reviews (split by FNV-1a hash).");

        var ml = new MLContext(seed: o.Seed);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var valid = ml.Data.LoadFromEnumerable(validRows);
        var test = ml.Data.LoadFromEnumerable(testRows);

        var clock = Stopwatch.StartNew();
        var tokenizer = ml.DeepSeq().TokenizeText("Tokens", "Text", maximumVocabularySize: o.Vocabulary).Fit(train);
        var options = new SequenceBinaryClassificationTrainer.Options
        {
            FeatureColumnName = "Tokens", Cell = o.Cell, HiddenSize = o.Hidden, Layers = o.Layers, Bidirectional = o.Bidirectional,
            EmbeddingSize = o.Embedding, Pooling = o.Pooling, Dropout = o.Dropout, Epochs = o.Epochs, BatchSize = o.BatchSize,
            LearningRate = o.LearningRate, LearningRateDecay = o.LearningRateDecay, MaxLength = o.MaxLength, KeepEnd = o.KeepEnd, WeightAveraging = o.Averaging, Seed = o.Seed,
        };
        SequenceModelTransformer sequenceModel = null!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask("Training", maxValue: 1.0);
                options.Progress = new Reporter(p =>
                {
                    bar.Value = ((p.Epoch - 1) + (double)p.Batch / p.Batches) / p.Epochs;
                    bar.Description = $"Epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:F4} {p.SequencesPerSecond:F0} seq/s" +
                        (p.ValidationMetric is double acc ? $" val acc {acc:F4}" : "");
                    if (p.Batch == p.Batches) // once per epoch, after validation
                        AnsiConsole.MarkupLine($"  epoch {p.Epoch}: train loss {p.Loss:F4}, validation accuracy {p.ValidationMetric:F4}, {p.SequencesPerSecond:F0} reviews/s, ETA {p.Remaining:mm\\:ss}");
                });
                sequenceModel = ml.DeepSeq().BinaryClassification(options).Fit(tokenizer.Transform(train), tokenizer.Transform(valid));
                bar.Value = 1;
            });
        double trainSeconds = clock.Elapsed.TotalSeconds;
        var report = sequenceModel.TrainingReport;
        if (report.Divergence is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(report.Divergence)}[/]");
        foreach (var warning in report.Warnings) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(warning)}[/]");
        var model = new TransformerChain<ITransformer>(tokenizer, sequenceModel);

        AnsiConsole.MarkupLine($"Trained in {trainSeconds:F0} s; kept epoch {report.BestEpoch}. Scoring the test set …");
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));

        CalibratedBinaryClassificationMetrics? baseline = null;
        double baselineSeconds = 0;
        if (o.Baseline)
        {
            AnsiConsole.MarkupLine("Training ML.NET's FeaturizeText + SdcaLogisticRegression on the same split …");
            var baselineClock = Stopwatch.StartNew();
            // The cache lets SDCA shuffle and make its passes without featurizing the text again each time.
            var sdca = ml.Transforms.Text.FeaturizeText("Features", "Text")
                .AppendCacheCheckpoint(ml)
                .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(train);
            baselineSeconds = baselineClock.Elapsed.TotalSeconds;
            baseline = ml.BinaryClassification.Evaluate(sdca.Transform(test));
        }

        var table = new Table().AddColumns("IMDB test (24,776 reviews)", "Accuracy", "AUC", "F1", "Train time");
        string name = $"DeepSeq {(o.Bidirectional ? "Bi" : "")}{o.Cell} {o.Hidden}, {o.Pooling} pooling";
        table.AddRow(name, $"{metrics.Accuracy:F4}", $"{metrics.AreaUnderRocCurve:F4}", $"{metrics.F1Score:F4}", $"{trainSeconds:F0} s");
        if (baseline is not null)
            table.AddRow("ML.NET FeaturizeText + SDCA logistic regression", $"{baseline.Accuracy:F4}", $"{baseline.AreaUnderRocCurve:F4}", $"{baseline.F1Score:F4}", $"{baselineSeconds:F0} s");
        AnsiConsole.Write(table);

        ml.Model.Save(model, train.Schema, o.Model);
        AnsiConsole.MarkupLine($"Saved the model to [bold]{Markup.Escape(Path.GetFullPath(o.Model))}[/]; try --predict \"a review\".");
        if (o.Json is not null)
        {
            var result = new Dictionary<string, object?>
            {
                ["test_accuracy"] = metrics.Accuracy, ["test_auc"] = metrics.AreaUnderRocCurve, ["test_f1"] = metrics.F1Score,
                ["train_seconds"] = Math.Round(trainSeconds, 1), ["baseline_accuracy"] = baseline?.Accuracy,
                ["best_epoch"] = report.BestEpoch,
                ["epochs"] = report.Epochs.Select(e => new { e.Epoch, e.TrainLoss, e.ValidationLoss, validation_accuracy = e.ValidationMetric, seconds = e.Duration.TotalSeconds }),
            };
            File.WriteAllText(o.Json, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;
    }

    sealed class Reporter(Action<SequenceTrainingProgress> report) : IProgress<SequenceTrainingProgress>
    {
        public void Report(SequenceTrainingProgress value) => report(value);
    }
}

static class Predictor
{
    sealed class Scored // filled by ML.NET
    {
        public float Probability = float.NaN;
        public bool PredictedLabel = false;
        public float[] AttentionWeights = [];
    }

    public static int Run(CommandLine o)
    {
        if (!File.Exists(o.Model))
        {
            Console.Error.WriteLine($"No model at {o.Model}: train one first (run without --predict), or pass --model PATH.");
            return 1;
        }
        var ml = new MLContext();
        var model = ml.Model.Load(o.Model, out _);
        var input = ml.Data.LoadFromEnumerable([new Review { Text = o.Predict! }]);
        var scored = model.Transform(input);
        Scored row;
        try { row = ml.Data.CreateEnumerable<Scored>(scored, false).Single(); }
        catch (Exception e) when (e.GetBaseException() is InvalidOperationException inner)
        {
            Console.Error.WriteLine(inner.Message);
            return 1;
        }
        AnsiConsole.MarkupLine($"{(row.PredictedLabel ? "[green]positive[/]" : "[red]negative[/]")} (probability of positive {row.Probability:F3})");
        if (row.AttentionWeights.Length == 0)
        {
            AnsiConsole.MarkupLine("[grey]This model does not use attention pooling (train with --pooling attention to see which words weighed most).[/]");
            return 0;
        }
        // The words the model read, from the token keys and the vocabulary in their KeyValues annotation.
        var tokens = scored.Schema["Tokens"];
        VBuffer<ReadOnlyMemory<char>> vocabulary = default;
        tokens.Annotations.GetValue("KeyValues", ref vocabulary);
        var words = vocabulary.DenseValues().Select(w => w.ToString()).ToArray();
        using var cursor = scored.GetRowCursor([tokens]);
        var getter = cursor.GetGetter<VBuffer<uint>>(tokens);
        VBuffer<uint> keys = default;
        cursor.MoveNext();
        getter(ref keys);
        var read = keys.DenseValues().Select(k => k == 0 ? "<unknown>" : words[k - 1]).ToArray();
        var top = read.Select((w, i) => (Word: w, Weight: i < row.AttentionWeights.Length ? row.AttentionWeights[i] : 0f))
            .OrderByDescending(x => x.Weight).Take(8);
        var table = new Table().AddColumns("Word", "Attention");
        foreach (var (word, weight) in top) table.AddRow(Markup.Escape(word), $"{weight:F3}");
        AnsiConsole.Write(table);
        return 0;
    }
}
