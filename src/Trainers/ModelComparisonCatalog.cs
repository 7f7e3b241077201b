using Microsoft.ML;

namespace DeepSeq.MLNet;

public sealed partial class DeepSeqCatalog
{
    /// <summary>
    /// Trains every candidate on <paramref name="trainData"/>, ranks it on <paramref name="validationData"/> with
    /// ML.NET's evaluator, and returns the leaderboard: the metric, training time, scoring throughput and saved size
    /// of each, best first, with the averaged and stacked ensembles of the best (binary classification). A candidate
    /// that throws, diverges or runs past its share of <see cref="ModelComparisonOptions.TimeBudget"/> is reported
    /// with its reason and the others go on. Candidates may use the validation rows for early stopping: keep a test
    /// split apart for the final figure.
    /// </summary>
    /// <param name="candidates">Named candidates with unique names (see <see cref="ModelCandidate"/>).</param>
    /// <param name="trainData">The rows to train on.</param>
    /// <param name="validationData">The rows to rank on (same schema).</param>
    /// <param name="options">Task, label, metric, budget, ensembles, seed, progress; null = defaults (binary accuracy, no time limit).</param>
    /// <example>
    /// <code>
    /// var result = ml.DeepSeq().CompareModels(
    /// [
    ///     ModelCandidate.Create("TF-IDF + SDCA", c => c.Transforms.Text.FeaturizeText("Features", "Text")
    ///         .Append(c.BinaryClassification.Trainers.SdcaLogisticRegression())),
    ///     ModelCandidate.Create("BiLSTM", c => c.DeepSeq().TokenizeText("Tokens", "Text"),
    ///         new SequenceBinaryClassificationTrainer.Options { FeatureColumnName = "Tokens", Epochs = 3 }),
    /// ], train, validation, new ModelComparisonOptions { TimeBudget = TimeSpan.FromMinutes(10) });
    /// Console.WriteLine($"{result.Best?.Name}: {result.Best?.Metric:F4}");
    /// result.SaveBestModel("best.zip");
    /// </code>
    /// </example>
    public ModelComparisonResult CompareModels(IEnumerable<ModelCandidate> candidates, IDataView trainData, IDataView validationData, ModelComparisonOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(trainData);
        ArgumentNullException.ThrowIfNull(validationData);
        var o = Checked(options);
        return ModelComparison.Compare(_ml, [.. candidates], [new ModelComparison.Fold(trainData, validationData, validationData)], trainData, o);
    }

    /// <summary>
    /// As <see cref="CompareModels(IEnumerable{ModelCandidate}, IDataView, IDataView, ModelComparisonOptions)"/>
    /// with k-fold cross-validation: each candidate is trained on k − 1 folds and scored on the one left out (the
    /// folds are the same for every candidate, drawn from the seed), and the leaderboard gives the metric's mean and
    /// standard deviation across folds. The stacked ensemble's combiner is fitted on the out-of-fold predictions; a
    /// model asked of the result is refitted on every row on first use.
    /// </summary>
    /// <param name="candidates">Named candidates with unique names; not <see cref="ModelCandidate.Trained"/>.</param>
    /// <param name="data">All the rows.</param>
    /// <param name="numberOfFolds">k, at least 2.</param>
    /// <param name="options">Task, label, metric, budget, ensembles, seed, progress; null = defaults.</param>
    public ModelComparisonResult CompareModels(IEnumerable<ModelCandidate> candidates, IDataView data, int numberOfFolds, ModelComparisonOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(data);
        if (numberOfFolds < 2) throw new ArgumentOutOfRangeException(nameof(numberOfFolds), numberOfFolds, $"{nameof(numberOfFolds)} must be at least 2.");
        var o = Checked(options);
        var folds = _ml.Data.CrossValidationSplit(data, numberOfFolds, seed: o.Seed).Select(s => new ModelComparison.Fold(s.TrainSet, null, s.TestSet)).ToList();
        return ModelComparison.Compare(_ml, [.. candidates], folds, data, o);
    }

    /// <summary>
    /// Searches a space of models by successive halving within <see cref="ModelComparisonOptions.TimeBudget"/>: draws
    /// <see cref="ModelSearchOptions.Trials"/> candidates from <paramref name="sample"/> (seeded by
    /// <see cref="ModelComparisonOptions.Seed"/>, so the same seed draws the same trials), trains all on a share of the
    /// training rows, and keeps the best 1/η by the metric on <paramref name="validationData"/> for the next round on
    /// η times the rows, until the last round trains on every row. The leaderboard ranks the finalists and lists the
    /// trials stopped early with the round that stopped them.
    /// </summary>
    /// <param name="sample">Draws trial <c>index</c> from the random source (e.g. an image model's depth, width and activation).</param>
    /// <param name="trainData">The rows to train on.</param>
    /// <param name="validationData">The rows to rank on; never the test split.</param>
    /// <param name="options">Task, label, metric, budget, seed, progress (ensembles are not formed in a search); null = defaults.</param>
    /// <param name="search">Trials and η; null = defaults (9 trials, η = 3).</param>
    public ModelComparisonResult SearchModels(Func<Random, int, ModelCandidate> sample, IDataView trainData, IDataView validationData,
        ModelComparisonOptions? options = null, ModelSearchOptions? search = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(trainData);
        ArgumentNullException.ThrowIfNull(validationData);
        var s = search ?? new ModelSearchOptions();
        s.Validate();
        return ModelSearch.Search(_ml, sample, trainData, validationData, Checked(options), s);
    }

    /// <summary>
    /// <see cref="SearchModels"/> over DeepSeq sequence models: each trial is <paramref name="baseOptions"/> with a
    /// cell, direction, hidden size, layer count, pooling, dropout and learning rate drawn from
    /// <paramref name="space"/>, behind <paramref name="featurizer"/> (e.g. <c>ml => ml.DeepSeq().TokenizeText("Tokens", "Text")</c>).
    /// The options' type sets the task (binary, multiclass, regression); each trial stops early on the validation rows.
    /// </summary>
    public ModelComparisonResult SearchSequenceModels(SequenceSearchSpace space, Func<MLContext, IEstimator<ITransformer>> featurizer, SequenceOptions baseOptions,
        IDataView trainData, IDataView validationData, ModelComparisonOptions? options = null, ModelSearchOptions? search = null)
    {
        NotNull(space, featurizer, baseOptions);
        space.Validate();
        baseOptions.Validate();
        return SearchModels((random, index) => space.Sample(random, index, featurizer, baseOptions), trainData, validationData, options, search);
    }

    /// <summary>
    /// <see cref="SearchModels"/> over DeepSeq image classifiers: each trial is <paramref name="baseOptions"/> with a
    /// depth, stage widths, activation, residual or plain network and learning rate drawn from <paramref name="space"/>,
    /// behind <paramref name="featurizer"/>, which makes the key label (e.g. <c>ml => ml.Transforms.Conversion.MapValueToKey("Label")</c>).
    /// Ranked by a multiclass metric: <paramref name="options"/> defaults to multiclass classification by micro-accuracy.
    /// </summary>
    public ModelComparisonResult SearchImageModels(ImageSearchSpace space, Func<MLContext, IEstimator<ITransformer>> featurizer, ImageClassificationOptions baseOptions,
        IDataView trainData, IDataView validationData, ModelComparisonOptions? options = null, ModelSearchOptions? search = null)
    {
        NotNull(space, featurizer, baseOptions);
        space.Validate();
        baseOptions.Validate();
        options ??= new ModelComparisonOptions { Task = SequenceTaskKind.MulticlassClassification, Metric = ComparisonMetric.MicroAccuracy };
        if (options.Task != SequenceTaskKind.MulticlassClassification)
            throw new ArgumentException($"An image search ranks multiclass classifiers: set {nameof(ModelComparisonOptions.Task)} = {SequenceTaskKind.MulticlassClassification} and a multiclass {nameof(ModelComparisonOptions.Metric)}.", nameof(options));
        return SearchModels((random, index) => space.Sample(random, index, featurizer, baseOptions), trainData, validationData, options, search);
    }

    static void NotNull(object space, object featurizer, object baseOptions)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(featurizer);
        ArgumentNullException.ThrowIfNull(baseOptions);
    }

    static ModelComparisonOptions Checked(ModelComparisonOptions? options)
    {
        var o = (options ?? new ModelComparisonOptions()).Clone(); // later changes to the caller's object do not reach this run
        o.Validate();
        return o;
    }
}
