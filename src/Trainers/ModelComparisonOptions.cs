using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet;

/// <summary>The metric a model comparison ranks by, read from ML.NET's evaluator for the task.</summary>
public enum ComparisonMetric
{
    /// <summary>Binary classification: accuracy (higher is better).</summary>
    Accuracy,
    /// <summary>Binary classification: area under the ROC curve (higher is better).</summary>
    AreaUnderRocCurve,
    /// <summary>Binary classification: F1 score (higher is better).</summary>
    F1Score,
    /// <summary>Binary (calibrated models only) or multiclass classification: log-loss (lower is better).</summary>
    LogLoss,
    /// <summary>Multiclass classification: micro-accuracy, the share of rows right (higher is better).</summary>
    MicroAccuracy,
    /// <summary>Multiclass classification: macro-accuracy, the mean of per-class accuracies (higher is better).</summary>
    MacroAccuracy,
    /// <summary>Regression: R² (higher is better).</summary>
    RSquared,
    /// <summary>Regression: mean absolute error (lower is better).</summary>
    MeanAbsoluteError,
    /// <summary>Regression: root mean squared error (lower is better).</summary>
    RootMeanSquaredError,
}

/// <summary>Settings of <see cref="DeepSeqCatalog.CompareModels(IEnumerable{ModelCandidate}, IDataView, IDataView, ModelComparisonOptions)"/>.</summary>
public sealed class ModelComparisonOptions
{
    /// <summary>Default values of <see cref="ModelComparisonOptions"/>.</summary>
    public static class Defaults
    {
        /// <summary>"Label".</summary>
        public const string LabelColumnName = "Label";
        /// <summary><see cref="SequenceTaskKind.BinaryClassification"/>.</summary>
        public const SequenceTaskKind Task = SequenceTaskKind.BinaryClassification;
        /// <summary><see cref="ComparisonMetric.Accuracy"/>.</summary>
        public const ComparisonMetric Metric = ComparisonMetric.Accuracy;
        /// <summary>3: the three best single models are combined by averaging and by stacking.</summary>
        public const int EnsembleSize = 3;
        /// <summary>5: folds of the cross-fitting that scores a stacked ensemble on data its combiner did not see.</summary>
        public const int StackingFolds = 5;
        /// <summary>1.</summary>
        public const int Seed = 1;
    }

    /// <summary>Name of the label column: Boolean (binary), a key (multiclass) or Single (regression) (default "Label").</summary>
    public string LabelColumnName = Defaults.LabelColumnName;
    /// <summary>What the candidates predict; it picks ML.NET's evaluator (default binary classification).</summary>
    public SequenceTaskKind Task = Defaults.Task;
    /// <summary>The metric to rank by; it must belong to <see cref="Task"/> (default accuracy).</summary>
    public ComparisonMetric Metric = Defaults.Metric;
    /// <summary>
    /// Total time for training and scoring every candidate; null = no limit (default). Each candidate's fit gets an
    /// equal share of what is left when it starts; one that runs past its share is stopped (see
    /// <see cref="ModelCandidate"/>) and reported as over budget, and the others go on.
    /// </summary>
    public TimeSpan? TimeBudget;
    /// <summary>
    /// Binary classification only: how many of the best single models to combine into two more candidates — their
    /// probabilities averaged, and stacked by a logistic regression on their scores; 0 or 1 = none (default 3).
    /// </summary>
    public int EnsembleSize = Defaults.EnsembleSize;
    /// <summary>Folds of the cross-fitting that scores a stacked ensemble honestly on the validation rows, at least 2 (default 5).</summary>
    public int StackingFolds = Defaults.StackingFolds;
    /// <summary>Seed of each candidate's <see cref="MLContext"/>, of the cross-validation folds and of the stacking folds (default 1): the same seed, the same leaderboard.</summary>
    public int Seed = Defaults.Seed;
    /// <summary>Receives a report when a candidate starts, when it finishes (with its leaderboard entry) and during its training where the candidate reports it.</summary>
    public IProgress<ModelComparisonProgress>? Progress;
    /// <summary>Stops the comparison: the running candidate is stopped, the rest are reported as skipped, and the result holds what finished.</summary>
    public CancellationToken CancellationToken;

    internal ModelComparisonOptions Clone() => (ModelComparisonOptions)MemberwiseClone();

    internal bool LowerIsBetter => Metric is ComparisonMetric.LogLoss or ComparisonMetric.MeanAbsoluteError or ComparisonMetric.RootMeanSquaredError;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException($"Set {nameof(LabelColumnName)}.", nameof(LabelColumnName));
        if (!Enum.IsDefined(Task)) throw new ArgumentOutOfRangeException(nameof(Task), Task, $"{nameof(Task)} is not a SequenceTaskKind.");
        bool fits = Task switch
        {
            SequenceTaskKind.BinaryClassification => Metric is ComparisonMetric.Accuracy or ComparisonMetric.AreaUnderRocCurve or ComparisonMetric.F1Score or ComparisonMetric.LogLoss,
            SequenceTaskKind.MulticlassClassification => Metric is ComparisonMetric.MicroAccuracy or ComparisonMetric.MacroAccuracy or ComparisonMetric.LogLoss,
            _ => Metric is ComparisonMetric.RSquared or ComparisonMetric.MeanAbsoluteError or ComparisonMetric.RootMeanSquaredError,
        };
        if (!fits) throw new ArgumentException($"{nameof(Metric)} = {Metric} does not apply to {nameof(Task)} = {Task}.", nameof(Metric));
        if (TimeBudget is { } budget && budget <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(TimeBudget), budget, $"{nameof(TimeBudget)} must be positive (null = no limit).");
        if (EnsembleSize < 0) throw new ArgumentOutOfRangeException(nameof(EnsembleSize), EnsembleSize, $"{nameof(EnsembleSize)} must be non-negative (0 = no ensembles).");
        if (StackingFolds < 2) throw new ArgumentOutOfRangeException(nameof(StackingFolds), StackingFolds, $"{nameof(StackingFolds)} must be at least 2.");
    }
}

/// <summary>What a candidate's fit receives: the data, a fresh seeded context, and the signal to stop.</summary>
public sealed class ModelCandidateContext
{
    internal ModelCandidateContext(MLContext context, IDataView trainData, IDataView? validationData, CancellationToken cancellationToken, int fold)
        => (Context, TrainData, ValidationData, CancellationToken, Fold) = (context, trainData, validationData, cancellationToken, fold);

    /// <summary>A context for this fit alone, seeded with <see cref="ModelComparisonOptions.Seed"/>; the comparison cancels it when the fit runs past its share of the budget.</summary>
    public MLContext Context { get; }
    /// <summary>The rows to train on.</summary>
    public IDataView TrainData { get; }
    /// <summary>With a train/validation split: the validation rows, for early stopping (they are also the rows the candidate is ranked on). Null in cross-validation, whose held-out fold a fit never sees.</summary>
    public IDataView? ValidationData { get; }
    /// <summary>Cancelled when the fit runs past its share of the budget or the comparison is cancelled; a fit that stops early and returns a model is still ranked.</summary>
    public CancellationToken CancellationToken { get; }
    /// <summary>0-based fold (0 with a train/validation split).</summary>
    public int Fold { get; }

    internal List<string> Notes { get; } = [];

    /// <summary>Adds a line to the candidate's note on the leaderboard, e.g. the setting the fit chose.</summary>
    public void AddNote(string note)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(note);
        lock (Notes) Notes.Add(note);
    }
}

/// <summary>
/// A named model to compare: any ML.NET estimator (DeepSeq's or ML.NET's own), a function that fits one, or a model
/// already trained. Fits run on a worker thread; one past its share of the budget is asked to stop through
/// <see cref="ModelCandidateContext.CancellationToken"/> and by cancelling its context (ML.NET's trainers check
/// that between iterations) and, if it does not stop within a grace period, is abandoned (its thread
/// runs on in the background) and reported as over budget.
/// </summary>
public sealed class ModelCandidate
{
    ModelCandidate(string name, Func<ModelCandidateContext, ITransformer>? fit, ITransformer? trained, TimeSpan trainingTime)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A candidate needs a name.", nameof(name));
        (Name, FitFunction, TrainedModel, TrainedTime) = (name, fit, trained, trainingTime);
    }

    /// <summary>The name on the leaderboard; unique within a comparison.</summary>
    public string Name { get; }
    internal Func<ModelCandidateContext, ITransformer>? FitFunction { get; }
    internal ITransformer? TrainedModel { get; }
    internal TimeSpan TrainedTime { get; }
    /// <summary>A note shown on the leaderboard, e.g. the settings a search chose.</summary>
    public string? Description { get; set; }

    /// <summary>
    /// An estimator built for each fit on the fit's own context — the form the comparison can stop when it runs
    /// past its share (ML.NET's trainers check their context's cancellation between iterations).
    /// </summary>
    /// <example><c>ModelCandidate.Create("SDCA", ml => ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()))</c></example>
    public static ModelCandidate Create(string name, Func<MLContext, IEstimator<ITransformer>> estimator)
    {
        ArgumentNullException.ThrowIfNull(estimator);
        return new(name, c => estimator(c.Context).Fit(c.TrainData), null, TimeSpan.Zero);
    }

    /// <summary>A ready-made estimator. It is fitted as is, so the comparison cannot cancel it: prefer the overload that builds it on the fit's context.</summary>
    public static ModelCandidate Create(string name, IEstimator<ITransformer> estimator)
    {
        ArgumentNullException.ThrowIfNull(estimator);
        return new(name, c => estimator.Fit(c.TrainData), null, TimeSpan.Zero);
    }

    /// <summary>Full control: a function that trains on <see cref="ModelCandidateContext.TrainData"/> (and may use the validation rows for early stopping) and returns the model.</summary>
    public static ModelCandidate Create(string name, Func<ModelCandidateContext, ITransformer> fit)
    {
        ArgumentNullException.ThrowIfNull(fit);
        return new(name, fit, null, TimeSpan.Zero);
    }

    /// <summary>
    /// A DeepSeq sequence model behind a featurizer (e.g. <c>ml => ml.DeepSeq().TokenizeText("Tokens", "Text")</c>):
    /// the featurizer is fitted on the training rows, the trainer stops early on the validation rows when there are
    /// some (keeping its best epoch), and the budget stops it through its cancellation token, keeping its best
    /// weights so far. The task follows the options' type.
    /// </summary>
    public static ModelCandidate Create(string name, Func<MLContext, IEstimator<ITransformer>> featurizer, SequenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(featurizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var copy = options.Clone();
        return new(name, c => FitSequence(c, featurizer, copy), null, TimeSpan.Zero);
    }

    /// <summary>
    /// A DeepSeq image classifier behind a featurizer that makes its key label (e.g.
    /// <c>ml => ml.Transforms.Conversion.MapValueToKey("Label")</c>); the budget stops it through its cancellation
    /// token between steps, keeping its best weights so far. Rank it with a multiclass metric.
    /// </summary>
    public static ModelCandidate Create(string name, Func<MLContext, IEstimator<ITransformer>> featurizer, ImageClassificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(featurizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var copy = options.Clone();
        return new(name, c =>
        {
            var o = copy.Clone();
            o.CancellationToken = c.CancellationToken;
            return featurizer(c.Context).Append(c.Context.DeepSeq().ImageClassification(o)).Fit(c.TrainData);
        }, null, TimeSpan.Zero);
    }

    /// <summary>
    /// NB-LR over word n-grams (Wang and Manning's NB-SVM, 2012, with a logistic loss), binary classification from
    /// stock ML.NET parts: word 1…<paramref name="ngramLength"/>-gram counts of the lower-cased text, each scaled by
    /// the size of its log-count ratio between the classes (from the training rows only), L2-normalised per row, then
    /// an L-BFGS logistic regression whose L2 penalty is the one of <paramref name="l2Penalties"/> (default 0.01, 0.03,
    /// 0.1) with the best validation accuracy — the middle one in cross-validation. The leaderboard notes the choice.
    /// </summary>
    public static ModelCandidate NaiveBayesLogisticRegression(string name, string textColumnName = "Text", string labelColumnName = ModelComparisonOptions.Defaults.LabelColumnName,
        int ngramLength = 2, float[]? l2Penalties = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(textColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(labelColumnName);
        ArgumentOutOfRangeException.ThrowIfLessThan(ngramLength, 1);
        float[] penalties = l2Penalties is null ? NbLogisticRegression.DefaultPenalties : [.. l2Penalties];
        if (penalties.Length == 0 || penalties.Any(p => !(p >= 0) || float.IsInfinity(p)))
            throw new ArgumentOutOfRangeException(nameof(l2Penalties), "Give at least one L2 penalty, each finite and non-negative.");
        return new(name, c => NbLogisticRegression.Fit(c, textColumnName, labelColumnName, ngramLength, penalties), null, TimeSpan.Zero);
    }

    /// <summary>A model trained elsewhere (e.g. the winner of a search), ranked on the validation rows; its training time is reported as given. Not for cross-validation.</summary>
    public static ModelCandidate Trained(string name, ITransformer model, TimeSpan trainingTime)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (trainingTime < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(trainingTime), trainingTime, "trainingTime must be non-negative.");
        return new(name, null, model, trainingTime);
    }

    static ITransformer FitSequence(ModelCandidateContext c, Func<MLContext, IEstimator<ITransformer>> featurizer, SequenceOptions options)
    {
        var featurize = featurizer(c.Context).Fit(c.TrainData);
        var o = options.Clone();
        o.CancellationToken = c.CancellationToken;
        var task = o switch
        {
            SequenceBinaryClassificationTrainer.Options => SequenceTaskKind.BinaryClassification,
            SequenceMulticlassClassificationTrainer.Options => SequenceTaskKind.MulticlassClassification,
            _ => SequenceTaskKind.Regression,
        };
        var validation = c.ValidationData is null ? null : featurize.Transform(c.ValidationData);
        var model = SequenceFitting.Fit(c.Context, featurize.Transform(c.TrainData), validation, o, task);
        return new TransformerChain<ITransformer>(featurize, model);
    }
}

/// <summary>Where a comparison stands.</summary>
/// <param name="Candidate">The candidate's name.</param>
/// <param name="Index">0-based position of the candidate.</param>
/// <param name="Count">Candidates in the comparison (ensembles not counted).</param>
/// <param name="Fold">0-based fold.</param>
/// <param name="Folds">Folds per candidate (1 with a train/validation split).</param>
/// <param name="Stage">"training", "scoring" or "done".</param>
/// <param name="Elapsed">Time since the comparison started.</param>
/// <param name="Finished">With <paramref name="Stage"/> "done": the candidate's leaderboard entry.</param>
public sealed record ModelComparisonProgress(string Candidate, int Index, int Count, int Fold, int Folds, string Stage, TimeSpan Elapsed, ModelComparisonEntry? Finished);
