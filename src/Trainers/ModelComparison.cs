using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet;

/// <summary>
/// Trains and scores named candidates fold by fold within a time budget, ranks them with ML.NET's evaluators, and
/// adds the ensembles of the best (binary classification). Every fit runs on its own worker thread with its own
/// seeded <see cref="MLContext"/>, so one that throws, diverges or overruns is reported and the rest go on.
/// </summary>
internal static class ModelComparison
{
    /// <summary>The output columns ML.NET's trainers and evaluators share.</summary>
    internal static class Columns
    {
        public const string Score = "Score", Probability = "Probability", PredictedLabel = "PredictedLabel";
    }

    /// <summary>One fold: the rows a fit trains on, the rows it may stop early on (null in cross-validation), the rows it is ranked on.</summary>
    internal sealed record Fold(IDataView Train, IDataView? Validation, IDataView Evaluation);

    /// <summary>A candidate's outputs on one fold's ranking rows, in row order (binary only): what the ensembles combine.</summary>
    internal sealed record FoldPredictions(bool[] Labels, float[] Scores, float[]? Probabilities);

    /// <summary>A single candidate's figures over its folds.</summary>
    internal sealed class Run(ModelCandidate candidate)
    {
        public ModelCandidate Candidate { get; } = candidate;
        public List<double> Metrics { get; } = [];
        public List<FoldPredictions> Predictions { get; } = [];
        public TimeSpan TrainingTime;
        public double ScoringSeconds;
        public long ScoredRows, ModelSize;
        public CandidateStatus Status = CandidateStatus.Completed;
        public string? Reason;
        public ITransformer? Model; // train/validation: the fitted model; cross-validation: refitted on first use
    }

    public static ModelComparisonResult Compare(MLContext ml, IReadOnlyList<ModelCandidate> candidates, IReadOnlyList<Fold> folds, IDataView allRows, ModelComparisonOptions o)
    {
        var clock = Stopwatch.StartNew();
        CheckNames(candidates);
        if (folds.Count > 1 && candidates.FirstOrDefault(c => c.TrainedModel is not null) is { } trained)
            throw new ArgumentException($"'{trained.Name}' is an already trained model, which cross-validation cannot refit on each fold; compare it with a train/validation split.", nameof(candidates));
        var schema = allRows.Schema;
        CheckLabel(schema, o);

        var runs = new List<Run>();
        for (int i = 0; i < candidates.Count; i++)
        {
            var run = new Run(candidates[i]);
            runs.Add(run);
            for (int f = 0; f < folds.Count && run.Status == CandidateStatus.Completed; f++)
            {
                TimeSpan? share = null;
                if (o.TimeBudget is { } budget)
                {
                    var left = budget - clock.Elapsed;
                    if (left <= TimeSpan.Zero) { (run.Status, run.Reason) = (CandidateStatus.Skipped, "the time budget was spent before its turn"); break; }
                    share = left / ((candidates.Count - i) * folds.Count - f);
                }
                if (o.CancellationToken.IsCancellationRequested) { (run.Status, run.Reason) = (CandidateStatus.Skipped, "the comparison was cancelled before its turn"); break; }
                o.Progress?.Report(new(run.Candidate.Name, i, candidates.Count, f, folds.Count, "training", clock.Elapsed, null));
                var fit = FitWithin(run.Candidate, folds[f], f, share, o);
                run.TrainingTime += fit.Time;
                if (fit.Model is null) { (run.Status, run.Reason) = (fit.Status, fit.Reason); break; }
                run.Reason ??= fit.Reason;
                o.Progress?.Report(new(run.Candidate.Name, i, candidates.Count, f, folds.Count, "scoring", clock.Elapsed, null));
                try
                {
                    Score(ml, run, fit.Model, folds[f].Evaluation, o);
                    if (f == 0)
                    {
                        try { run.ModelSize = SavedSize(ml, fit.Model, schema); }
                        catch (Exception e) { run.Reason = (run.Reason is null ? "" : run.Reason + " ") + "Its size is unknown: it cannot be saved (" + Message(e) + ")."; }
                    }
                    if (folds.Count == 1) run.Model = fit.Model;
                }
                catch (DivergedException e) { (run.Status, run.Reason) = (CandidateStatus.Diverged, Message(e)); }
                catch (Exception e) { (run.Status, run.Reason) = (CandidateStatus.Failed, "scoring failed: " + Message(e)); }
            }
            o.Progress?.Report(new(run.Candidate.Name, i, candidates.Count, folds.Count - 1, folds.Count, "done", clock.Elapsed, Entry(run)));
        }

        var entries = runs.Select(Entry).ToList();
        var ensembles = new ModelEnsembles(ml, runs, folds, o);
        entries.AddRange(ensembles.Entries());
        var ranked = Rank(entries, o.LowerIsBetter);

        // Cross-validation keeps no fold's model: the one asked for is refitted on every row.
        var byName = runs.ToDictionary(r => r.Candidate.Name);
        ITransformer? Single(string name)
        {
            var run = byName[name];
            if (run.Model is null && run.Status == CandidateStatus.Completed)
                run.Model = FitWithin(run.Candidate, new Fold(allRows, null, allRows), 0, null, o).Model
                    ?? throw new InvalidOperationException($"Refitting '{name}' on all the rows failed.");
            return run.Model;
        }
        return new ModelComparisonResult(ml, schema, o.Metric, ranked, clock.Elapsed,
            name => byName.ContainsKey(name) ? Single(name) : ensembles.Model(name, Single, allRows));
    }

    /// <summary>Completed entries by metric (best first, ties in candidate order), then the rest in the order they ran.</summary>
    internal static List<ModelComparisonEntry> Rank(IEnumerable<ModelComparisonEntry> entries, bool lowerIsBetter)
    {
        var list = entries.ToList();
        var done = list.Where(e => e.Status == CandidateStatus.Completed)
            .OrderBy(e => lowerIsBetter ? e.Metric : -e.Metric) // OrderBy is stable: ties keep their order
            .Select((e, i) => e with { Rank = i + 1 });
        return [.. done, .. list.Where(e => e.Status != CandidateStatus.Completed).Select(e => e with { Rank = 0 })];
    }

    static void CheckNames(IReadOnlyList<ModelCandidate> candidates)
    {
        if (candidates.Count == 0) throw new ArgumentException("Give at least one candidate.", nameof(candidates));
        var seen = new HashSet<string>();
        foreach (var c in candidates)
        {
            if (c is null) throw new ArgumentException("A candidate is null.", nameof(candidates));
            if (!seen.Add(c.Name)) throw new ArgumentException($"Two candidates are named '{c.Name}'; names must be unique.", nameof(candidates));
        }
    }

    static void CheckLabel(DataViewSchema schema, ModelComparisonOptions o)
    {
        var label = schema.GetColumnOrNull(o.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException("trainData", $"Could not find label column '{o.LabelColumnName}'");
        bool fits = o.Task switch
        {
            SequenceTaskKind.BinaryClassification => label.Type is BooleanDataViewType,
            SequenceTaskKind.MulticlassClassification => label.Type is KeyDataViewType || label.Type is NumberDataViewType || label.Type is TextDataViewType,
            _ => label.Type == NumberDataViewType.Single,
        };
        if (!fits) throw new ArgumentOutOfRangeException("trainData", $"Schema mismatch for label column '{o.LabelColumnName}': {o.Task} cannot use {label.Type}");
    }

    internal sealed record FitOutcome(ITransformer? Model, TimeSpan Time, CandidateStatus Status, string? Reason);

    /// <summary>
    /// Fits on a worker thread and waits at most <paramref name="share"/>; past it, cancels the fit's token and its
    /// context and waits a grace period (a tenth of the share, 10 s to 60 s) for the fit to stop.
    /// </summary>
    internal static FitOutcome FitWithin(ModelCandidate c, Fold fold, int foldIndex, TimeSpan? share, ModelComparisonOptions o)
    {
        if (c.TrainedModel is { } trained) return new(trained, c.TrainedTime, CandidateStatus.Completed, null);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(o.CancellationToken);
        var context = new ModelCandidateContext(new MLContext(o.Seed), fold.Train, fold.Validation, stop.Token, foldIndex);
        ITransformer? model = null;
        Exception? error = null;
        var clock = Stopwatch.StartNew();
        var worker = new Thread(() =>
        {
            try { model = c.FitFunction!(context); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "DeepSeq comparison: " + c.Name };
        worker.Start();

        bool stopped = false;
        while (!worker.Join(TimeSpan.FromMilliseconds(50)))
            if (share is { } s && clock.Elapsed > s || o.CancellationToken.IsCancellationRequested) { stopped = true; break; }
        string why = o.CancellationToken.IsCancellationRequested ? "the comparison was cancelled" : $"it ran past its share of the budget ({Seconds(share ?? TimeSpan.Zero)})";
        if (stopped)
        {
            stop.Cancel();
            CancelExecution(context.Context);
            var grace = TimeSpan.FromSeconds(Math.Clamp((share ?? TimeSpan.Zero).TotalSeconds / 10, 10, 60));
            if (!worker.Join(grace))
                return new(null, clock.Elapsed, CandidateStatus.OverBudget, $"stopped: {why}, and it did not stop within {Seconds(grace)}; abandoned (its thread runs on in the background)");
        }
        var time = clock.Elapsed;
        if (error is not null)
        {
            string message = Message(error);
            if (stopped) return new(null, time, CandidateStatus.OverBudget, $"stopped: {why}; {message}");
            bool diverged = message.Contains("diverged", StringComparison.OrdinalIgnoreCase) || message.Contains("non-finite", StringComparison.OrdinalIgnoreCase);
            return new(null, time, diverged ? CandidateStatus.Diverged : CandidateStatus.Failed, message);
        }
        if (model is null) return new(null, time, CandidateStatus.Failed, "the fit returned no model");
        List<string> notes;
        lock (context.Notes) notes = [.. context.Notes];
        if (stopped) notes.Add($"stopped after {Seconds(time)}: {why}; kept the weights it had");
        notes.AddRange(Divergences(context.Context, model));
        return new(model, time, CandidateStatus.Completed, notes.Count == 0 ? null : string.Join(" ", notes));
    }

    // Sequence models report divergence in their training report; an image model's fit throws when no epoch completed.
    static IEnumerable<string> Divergences(MLContext ml, ITransformer model) =>
        [.. new DeepSeqCatalog(ml).GetTrainedModels(model).Select(m => m.TrainingReport?.Divergence).OfType<string>()];

    // ML.NET's trainers check their host between iterations, and MLContext signals it through its ICancelable
    // interface, which ML.NET 5 keeps internal: reach it by reflection; without it a fit is only abandoned.
    static readonly System.Reflection.MethodInfo? Cancel =
        typeof(MLContext).GetInterfaces().FirstOrDefault(i => i.FullName == "Microsoft.ML.Runtime.ICancelable")?.GetMethod("CancelExecution");

    static void CancelExecution(MLContext context)
    {
        try { Cancel?.Invoke(context, null); }
        catch (System.Reflection.TargetInvocationException) { } // stopping is best effort; the grace period still applies
    }

    /// <summary>Scores the ranking rows once (timed, cached), evaluates them and keeps the binary outputs for the ensembles.</summary>
    static void Score(MLContext ml, Run run, ITransformer model, IDataView rows, ModelComparisonOptions o)
    {
        var scored = model.Transform(rows);
        if (scored.Schema.GetColumnOrNull(Columns.Score) is null)
            throw new InvalidOperationException($"the model outputs no '{Columns.Score}' column, so ML.NET's evaluator cannot rank it");
        string[] names = [o.LabelColumnName, Columns.Score, Columns.Probability, Columns.PredictedLabel];
        names = [.. names.Where(n => scored.Schema.GetColumnOrNull(n) is not null).Distinct()];
        var cached = ml.Data.Cache(scored, names);
        var clock = Stopwatch.StartNew();
        long count = 0;
        using (var cursor = cached.GetRowCursor(names.Select(n => cached.Schema[n])))
            while (cursor.MoveNext()) count++;
        run.ScoringSeconds += clock.Elapsed.TotalSeconds;
        run.ScoredRows += count;

        bool calibrated = scored.Schema.GetColumnOrNull(Columns.Probability) is not null;
        if (o.Task == SequenceTaskKind.BinaryClassification)
        {
            var p = new FoldPredictions(cached.GetColumn<bool>(o.LabelColumnName).ToArray(), cached.GetColumn<float>(Columns.Score).ToArray(),
                calibrated ? cached.GetColumn<float>(Columns.Probability).ToArray() : null);
            if (p.Scores.Count(float.IsFinite) * 2 < p.Scores.Length)
                throw new DivergedException($"{p.Scores.Length - p.Scores.Count(float.IsFinite)} of {p.Scores.Length} scores are not finite");
            run.Predictions.Add(p);
        }
        double metric = Evaluate(ml, cached, o.LabelColumnName, o, calibrated);
        if (double.IsNaN(metric)) throw new DivergedException($"{o.Metric} is not a number: the model's scores are not finite");
        run.Metrics.Add(metric);
    }

    sealed class DivergedException(string message) : Exception(message);

    /// <summary>The ranking metric from ML.NET's evaluator for the task.</summary>
    internal static double Evaluate(MLContext ml, IDataView scored, string label, ModelComparisonOptions o, bool calibrated)
    {
        switch (o.Task)
        {
            case SequenceTaskKind.BinaryClassification:
                if (o.Metric == ComparisonMetric.LogLoss && !calibrated)
                    throw new InvalidOperationException("LogLoss needs a Probability column, and this model is not calibrated");
                BinaryClassificationMetrics m = calibrated ? ml.BinaryClassification.Evaluate(scored, label) : ml.BinaryClassification.EvaluateNonCalibrated(scored, label);
                return o.Metric switch
                {
                    ComparisonMetric.Accuracy => m.Accuracy,
                    ComparisonMetric.AreaUnderRocCurve => m.AreaUnderRocCurve,
                    ComparisonMetric.F1Score => m.F1Score,
                    _ => ((CalibratedBinaryClassificationMetrics)m).LogLoss,
                };
            case SequenceTaskKind.MulticlassClassification:
                var mc = ml.MulticlassClassification.Evaluate(scored, label);
                return o.Metric switch { ComparisonMetric.MicroAccuracy => mc.MicroAccuracy, ComparisonMetric.MacroAccuracy => mc.MacroAccuracy, _ => mc.LogLoss };
            default:
                var r = ml.Regression.Evaluate(scored, label);
                return o.Metric switch { ComparisonMetric.RSquared => r.RSquared, ComparisonMetric.MeanAbsoluteError => r.MeanAbsoluteError, _ => r.RootMeanSquaredError };
        }
    }

    static long SavedSize(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, schema, stream);
        return stream.Length;
    }

    static ModelComparisonEntry Entry(Run run) => new()
    {
        Name = run.Candidate.Name, Kind = CandidateKind.Single, Status = run.Status, Reason = run.Reason, Description = run.Candidate.Description,
        Metric = run.Status == CandidateStatus.Completed ? run.Metrics.Average() : double.NaN,
        MetricStandardDeviation = StandardDeviation(run.Metrics), FoldMetrics = [.. run.Metrics],
        TrainingTime = run.TrainingTime, ScoringRowsPerSecond = run.ScoringSeconds > 0 ? run.ScoredRows / run.ScoringSeconds : 0,
        ModelSizeBytes = run.Status == CandidateStatus.Completed ? run.ModelSize : 0,
    };

    /// <summary>Sample standard deviation (n − 1); 0 for fewer than two values.</summary>
    internal static double StandardDeviation(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return 0;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    internal static string Message(Exception e)
    {
        var inner = e is DivergedException ? e : e.GetBaseException();
        return inner is DivergedException ? "diverged: " + inner.Message : $"{inner.GetType().Name}: {inner.Message}";
    }

    internal static string Seconds(TimeSpan t) => $"{t.TotalSeconds:F1} s";
}
