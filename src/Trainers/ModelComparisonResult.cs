using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;

namespace DeepSeq.MLNet;

/// <summary>How a candidate's run ended.</summary>
public enum CandidateStatus
{
    /// <summary>Trained and scored; ranked by its metric.</summary>
    Completed,
    /// <summary>Its fit or scoring threw; <see cref="ModelComparisonEntry.Reason"/> says what.</summary>
    Failed,
    /// <summary>Training diverged with no usable weights, or the model scores non-finite values.</summary>
    Diverged,
    /// <summary>Its fit ran past its share of the time budget and did not return a model.</summary>
    OverBudget,
    /// <summary>Not run: the budget was spent or the comparison was cancelled before its turn.</summary>
    Skipped,
    /// <summary>A search trial stopped early by successive halving (its metric is the last rung it reached).</summary>
    Eliminated,
}

/// <summary>What a leaderboard row is.</summary>
public enum CandidateKind
{
    /// <summary>One model.</summary>
    Single,
    /// <summary>The mean of its members' probabilities.</summary>
    Averaged,
    /// <summary>A logistic regression on its members' scores, fitted on the validation rows (cross-fitted to rank it).</summary>
    Stacked,
}

/// <summary>One row of a comparison's leaderboard.</summary>
public sealed record ModelComparisonEntry
{
    /// <summary>The candidate's name.</summary>
    public required string Name { get; init; }
    /// <summary>One model or an ensemble.</summary>
    public CandidateKind Kind { get; init; }
    /// <summary>How its run ended.</summary>
    public CandidateStatus Status { get; init; }
    /// <summary>Why it failed, was stopped or skipped, or a note on a completed run (e.g. stopped at its time share with its best weights kept); null if none.</summary>
    public string? Reason { get; init; }
    /// <summary>The candidate's description (e.g. a search's settings), or null.</summary>
    public string? Description { get; init; }
    /// <summary>Ensembles: the members' names, best first; empty for a single model.</summary>
    public IReadOnlyList<string> Members { get; init; } = [];
    /// <summary>1-based rank among completed entries (0 for the others).</summary>
    public int Rank { get; init; }
    /// <summary>The ranking metric's mean over the folds (NaN when not completed).</summary>
    public double Metric { get; init; } = double.NaN;
    /// <summary>The sample standard deviation of the metric across folds (0 with one fold).</summary>
    public double MetricStandardDeviation { get; init; }
    /// <summary>The metric on each fold.</summary>
    public IReadOnlyList<double> FoldMetrics { get; init; } = [];
    /// <summary>Total training time over the folds (an ensemble: its members' plus the combiner's).</summary>
    public TimeSpan TrainingTime { get; init; }
    /// <summary>Rows scored per second through <c>Transform</c> on the ranking rows (an ensemble: its members' combined rate).</summary>
    public double ScoringRowsPerSecond { get; init; }
    /// <summary>Size of the model as saved by <c>mlContext.Model.Save</c>, in bytes (0 when not completed).</summary>
    public long ModelSizeBytes { get; init; }
}

/// <summary>
/// The outcome of a model comparison: the leaderboard (completed entries by metric, best first, then the others),
/// the best model, and writers for CSV and JSON.
/// </summary>
public sealed class ModelComparisonResult
{
    readonly MLContext _ml;
    readonly DataViewSchema _inputSchema;
    readonly Func<string, ITransformer?> _model;

    internal ModelComparisonResult(MLContext ml, DataViewSchema inputSchema, ComparisonMetric metric, IReadOnlyList<ModelComparisonEntry> leaderboard,
        TimeSpan elapsed, Func<string, ITransformer?> model)
        => (_ml, _inputSchema, Metric, Leaderboard, Elapsed, _model) = (ml, inputSchema, metric, leaderboard, elapsed, model);

    /// <summary>The metric the leaderboard ranks by.</summary>
    public ComparisonMetric Metric { get; }
    /// <summary>Completed entries by metric, best first; then the failed, stopped, eliminated and skipped ones in the order they ran.</summary>
    public IReadOnlyList<ModelComparisonEntry> Leaderboard { get; }
    /// <summary>Wall-clock time of the whole comparison.</summary>
    public TimeSpan Elapsed { get; }
    /// <summary>The best completed entry, or null if none completed.</summary>
    public ModelComparisonEntry? Best => Leaderboard.FirstOrDefault(e => e.Status == CandidateStatus.Completed);

    /// <summary>The best model, ready to <c>Transform</c> and save (an ensemble is assembled from stock transforms on first use).</summary>
    /// <exception cref="InvalidOperationException">No candidate completed.</exception>
    public ITransformer BestModel => Best is { } best ? GetModel(best.Name) : throw new InvalidOperationException("No candidate completed, so there is no best model; see the leaderboard's reasons.");

    /// <summary>The trained model of a completed entry (with cross-validation: refitted on all the rows).</summary>
    /// <exception cref="ArgumentException">No completed entry has that name.</exception>
    public ITransformer GetModel(string name)
    {
        var entry = Leaderboard.FirstOrDefault(e => e.Name == name && e.Status == CandidateStatus.Completed)
            ?? throw new ArgumentException($"No completed entry is named '{name}'.", nameof(name));
        return _model(entry.Name) ?? throw new InvalidOperationException($"The model of '{entry.Name}' was not kept.");
    }

    /// <summary>Saves the best model with <c>mlContext.Model.Save</c> and the input schema of the data it was compared on.</summary>
    public void SaveBestModel(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _ml.Model.Save(BestModel, _inputSchema, path);
    }

    /// <summary>The leaderboard as CSV (invariant culture, one header line).</summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("rank,name,kind,status,metric,metric_mean,metric_std,folds,training_seconds,scoring_rows_per_second,model_bytes,members,reason\n");
        static string Quote(string? s) => s is null ? "" : s.IndexOfAny([',', '"', '\n']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
        foreach (var e in Leaderboard)
            csv.Append(CultureInfo.InvariantCulture, $"{e.Rank},{Quote(e.Name)},{e.Kind},{e.Status},{Metric},{e.Metric:R},{e.MetricStandardDeviation:R},{e.FoldMetrics.Count},")
               .Append(CultureInfo.InvariantCulture, $"{e.TrainingTime.TotalSeconds:F2},{e.ScoringRowsPerSecond:F1},{e.ModelSizeBytes},{Quote(string.Join(" + ", e.Members))},{Quote(e.Reason)}\n");
        return csv.ToString();
    }

    /// <summary>The leaderboard and the comparison's settings as indented JSON (non-finite metrics as null).</summary>
    public string ToJson()
    {
        static double? Finite(double x) => double.IsFinite(x) ? x : null;
        var json = new
        {
            metric = Metric.ToString(),
            elapsed_seconds = Math.Round(Elapsed.TotalSeconds, 2),
            best = Best?.Name,
            leaderboard = Leaderboard.Select(e => new
            {
                rank = e.Rank, name = e.Name, kind = e.Kind.ToString(), status = e.Status.ToString(), reason = e.Reason, description = e.Description,
                members = e.Members, metric = Finite(e.Metric), metric_std = Finite(e.MetricStandardDeviation), fold_metrics = e.FoldMetrics.Select(Finite),
                training_seconds = Math.Round(e.TrainingTime.TotalSeconds, 2), scoring_rows_per_second = Math.Round(e.ScoringRowsPerSecond, 1), model_bytes = e.ModelSizeBytes,
            }),
        };
        // Relaxed escaping: names such as "TF-IDF + SDCA" stay readable ('+' would become \u002B).
        return JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    /// <summary>Writes <see cref="ToCsv"/> to <paramref name="path"/>.</summary>
    public void WriteCsv(string path) => File.WriteAllText(path, ToCsv());
    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>.</summary>
    public void WriteJson(string path) => File.WriteAllText(path, ToJson());
}
