using System.ComponentModel;
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using static DeepSeq.MLNet.ModelComparison;

namespace DeepSeq.MLNet;

/// <summary>
/// The two ensembles of a binary comparison's best single models, ranked like any candidate:
/// <list type="bullet">
/// <item>averaged — p = mean of the members' probabilities (the finite ones), Score = logit(p);</item>
/// <item>stacked — a logistic regression on the members' scores, fitted on the ranking rows' predictions. To rank it
/// on rows its combiner did not see, its metric comes from cross-fitting: the rows are split into
/// <see cref="ModelComparisonOptions.StackingFolds"/> parts and each part is scored by a combiner fitted on the others.</item>
/// </list>
/// Both are measured from the members' kept predictions (no member scores again); the model itself is assembled
/// from stock transforms only when asked for, so it saves and loads like any ML.NET model.
/// </summary>
internal sealed class ModelEnsembles
{
    const string ScoresColumn = "__DeepSeq_EnsembleScores", ProbabilitiesColumn = "__DeepSeq_EnsembleProbabilities", MemberPrefix = "__DeepSeq_Member";

    readonly MLContext _ml;
    readonly ModelComparisonOptions _o;
    readonly IReadOnlyList<Fold> _folds;
    readonly Dictionary<string, (CandidateKind Kind, List<Run> Members)> _ensembles = [];
    readonly Dictionary<string, ITransformer> _built = [];
    readonly List<ModelComparisonEntry> _entries = [];

    public ModelEnsembles(MLContext ml, IReadOnlyList<Run> runs, IReadOnlyList<Fold> folds, ModelComparisonOptions o)
    {
        (_ml, _o, _folds) = (ml, o, folds);
        if (o.Task != SequenceTaskKind.BinaryClassification || o.EnsembleSize < 2) return;
        var best = runs.Where(r => r.Status == CandidateStatus.Completed && r.Predictions.Count == folds.Count)
            .OrderBy(r => o.LowerIsBetter ? r.Metrics.Average() : -r.Metrics.Average()).ToList();
        var calibrated = best.Where(r => r.Predictions[0].Probabilities is not null).Take(o.EnsembleSize).ToList();
        var any = best.Take(o.EnsembleSize).ToList();
        var names = runs.Select(r => r.Candidate.Name).ToHashSet();
        if (calibrated.Count >= 2) Add(CandidateKind.Averaged, $"Average of top {calibrated.Count}", calibrated, names);
        if (any.Count >= 2) Add(CandidateKind.Stacked, $"Stacking of top {any.Count}", any, names);
    }

    /// <summary>The ensembles' leaderboard entries.</summary>
    public IEnumerable<ModelComparisonEntry> Entries() => _entries;

    void Add(CandidateKind kind, string name, List<Run> members, HashSet<string> taken)
    {
        while (taken.Contains(name)) name += " (ensemble)";
        _ensembles[name] = (kind, members);
        var clock = Stopwatch.StartNew();
        var entry = new ModelComparisonEntry
        {
            Name = name, Kind = kind, Members = [.. members.Select(m => m.Candidate.Name)],
            TrainingTime = members.Aggregate(TimeSpan.Zero, (t, m) => t + m.TrainingTime),
            // Every row passes through each member in turn: the times per row add up.
            ScoringRowsPerSecond = 1 / members.Sum(m => m.ScoringSeconds / Math.Max(1, m.ScoredRows)),
            ModelSizeBytes = members.Sum(m => m.ModelSize),
        };
        try
        {
            var metrics = new List<double>();
            for (int f = 0; f < _folds.Count; f++)
            {
                var predictions = members.Select(m => m.Predictions[f]).ToList();
                var (score, probability) = kind == CandidateKind.Averaged ? Average(predictions) : CrossFitStack(predictions, f);
                metrics.Add(Evaluate(predictions[0].Labels, score, probability));
            }
            _entries.Add(entry with
            {
                Status = CandidateStatus.Completed, Metric = metrics.Average(), MetricStandardDeviation = StandardDeviation(metrics), FoldMetrics = metrics,
                TrainingTime = entry.TrainingTime + (kind == CandidateKind.Stacked ? clock.Elapsed : TimeSpan.Zero),
            });
        }
        catch (Exception e) { _entries.Add(entry with { Status = CandidateStatus.Failed, Reason = Message(e) }); }
    }

    static (float[] Score, float[] Probability) Average(List<FoldPredictions> members)
    {
        int n = members[0].Labels.Length;
        var score = new float[n];
        var probability = new float[n];
        for (int i = 0; i < n; i++) (probability[i], score[i]) = ProbabilityAverage.Mean(members.Select(m => m.Probabilities![i]));
        return (score, probability);
    }

    /// <summary>Each row scored by a combiner fitted on the other parts of the same rows (parts drawn from the seed).</summary>
    (float[] Score, float[] Probability) CrossFitStack(List<FoldPredictions> members, int fold)
    {
        var labels = members[0].Labels;
        var features = Features(members);
        int n = labels.Length, parts = Math.Min(_o.StackingFolds, n);
        var rng = new Random(_o.Seed + fold);
        var part = new int[n];
        var order = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        for (int i = 0; i < n; i++) part[order[i]] = i % parts;
        var score = new float[n];
        var probability = new float[n];
        for (int p = 0; p < parts; p++)
        {
            var held = Enumerable.Range(0, n).Where(i => part[i] == p).ToArray();
            var stacker = FitStacker(labels, features, Enumerable.Range(0, n).Where(i => part[i] != p));
            var scored = stacker.Transform(StackRows(labels, features, held));
            var s = scored.GetColumn<float>(Columns.Score).ToArray();
            var q = scored.GetColumn<float>(Columns.Probability).ToArray();
            for (int j = 0; j < held.Length; j++) (score[held[j]], probability[held[j]]) = (s[j], q[j]);
        }
        return (score, probability);
    }

    static float[][] Features(IReadOnlyList<FoldPredictions> members) =>
        [.. Enumerable.Range(0, members[0].Labels.Length).Select(i => members.Select(m => m.Scores[i]).ToArray())];

    sealed class StackRow
    {
        public bool Label;
        [ColumnName(ScoresColumn)] public float[] Scores = [];
    }

    IDataView StackRows(bool[] labels, float[][] features, IEnumerable<int> rows)
    {
        var schema = SchemaDefinition.Create(typeof(StackRow));
        schema[ScoresColumn].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features[0].Length); // the combiner needs a known size
        return _ml.Data.LoadFromEnumerable(rows.Select(i => new StackRow { Label = labels[i], Scores = features[i] }).ToList(), schema);
    }

    ITransformer FitStacker(bool[] labels, float[][] features, IEnumerable<int> rows) =>
        _ml.BinaryClassification.Trainers.LbfgsLogisticRegression(nameof(StackRow.Label), ScoresColumn).Fit(StackRows(labels, features, rows));

    sealed class ScoredRow
    {
        public bool Label;
        public float Score, Probability;
        public bool PredictedLabel;
    }

    double Evaluate(bool[] labels, float[] score, float[] probability)
    {
        var rows = labels.Select((l, i) => new ScoredRow { Label = l, Score = score[i], Probability = probability[i], PredictedLabel = probability[i] > 0.5f }).ToList();
        return ModelComparison.Evaluate(_ml, _ml.Data.LoadFromEnumerable(rows), nameof(ScoredRow.Label), _o, calibrated: true);
    }

    /// <summary>
    /// The ensemble as one transformer: each member's chain, its Score or Probability copied aside, the copies
    /// concatenated, then the combiner (the logistic regression, or the probability average) writing Score,
    /// Probability and PredictedLabel, and the helper columns dropped. The stacked combiner is fitted on every
    /// ranking row's prediction (all folds' held-out rows with cross-validation).
    /// </summary>
    public ITransformer? Model(string name, Func<string, ITransformer?> single, IDataView allRows)
    {
        if (_built.TryGetValue(name, out var built)) return built;
        if (!_ensembles.TryGetValue(name, out var ensemble)) return null;
        var (kind, members) = ensemble;
        var models = members.Select(m => single(m.Candidate.Name)!).ToList();
        var data = _ml.Data.TakeRows(allRows, 64);
        var chain = new List<ITransformer>();
        void Add(ITransformer t) { chain.Add(t); data = t.Transform(data); }
        var copies = new List<string>();
        for (int i = 0; i < models.Count; i++)
        {
            Add(models[i]);
            copies.Add(MemberPrefix + i);
            Add(_ml.Transforms.CopyColumns(copies[i], kind == CandidateKind.Stacked ? Columns.Score : Columns.Probability).Fit(data));
        }
        string combined = kind == CandidateKind.Stacked ? ScoresColumn : ProbabilitiesColumn;
        Add(_ml.Transforms.Concatenate(combined, [.. copies]).Fit(data));
        if (kind == CandidateKind.Stacked)
        {
            var predictions = Enumerable.Range(0, _folds.Count).Select(f => members.Select(m => m.Predictions[f]).ToList()).ToList();
            var labels = predictions.SelectMany(p => p[0].Labels).ToArray();
            var features = predictions.SelectMany(Features).ToArray();
            Add(FitStacker(labels, features, Enumerable.Range(0, labels.Length)));
        }
        else Add(_ml.Transforms.CustomMapping(new ProbabilityAverage().GetMapping(), ProbabilityAverage.ContractName).Fit(data));
        Add(_ml.Transforms.DropColumns([.. copies, combined]).Fit(data));
        return _built[name] = new TransformerChain<ITransformer>([.. chain]);
    }
}

/// <summary>Input of the probability average: the members' probabilities.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ProbabilityAverageInput
{
    /// <summary>The members' probabilities of the positive class.</summary>
    [ColumnName("__DeepSeq_EnsembleProbabilities"), VectorType] public float[] Probabilities = [];
}

/// <summary>Output of the probability average, as ML.NET's binary evaluator expects.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ProbabilityAverageOutput
{
    /// <summary>logit(<see cref="Probability"/>).</summary>
    public float Score;
    /// <summary>The mean of the members' finite probabilities (NaN if none is finite).</summary>
    public float Probability;
    /// <summary><see cref="Probability"/> &gt; 0.5.</summary>
    public bool PredictedLabel;
}

/// <summary>The row mapping of an averaged ensemble, saved by contract name so a saved ensemble loads with <c>mlContext.Model.Load</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class ProbabilityAverage : CustomMappingFactory<ProbabilityAverageInput, ProbabilityAverageOutput>
{
    internal const string ContractName = "DeepSeq.ProbabilityAverage.v1";

    /// <summary>The mapping: mean of the finite probabilities, its logit, and the label it predicts.</summary>
    public override Action<ProbabilityAverageInput, ProbabilityAverageOutput> GetMapping() => (input, output) =>
    {
        (output.Probability, output.Score) = Mean(input.Probabilities);
        output.PredictedLabel = output.Probability > 0.5f;
    };

    /// <summary>The mean of the finite probabilities (NaN if none) and its logit (clamped away from ±∞).</summary>
    internal static (float Probability, float Score) Mean(IEnumerable<float> probabilities)
    {
        double sum = 0; int count = 0;
        foreach (float p in probabilities)
            if (float.IsFinite(p)) { sum += p; count++; }
        if (count == 0) return (float.NaN, float.NaN);
        float mean = (float)(sum / count), q = Math.Clamp(mean, 1e-7f, 1 - 1e-7f);
        return (mean, MathF.Log(q / (1 - q)));
    }
}
