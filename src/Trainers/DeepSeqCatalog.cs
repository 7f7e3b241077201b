using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet;

/// <summary>Entry point: <c>mlContext.DeepSeq()</c>.</summary>
public static class MLContextExtensions
{
    /// <summary>The DeepSeq trainers and text featurizer for this context (logging and seed come from it).</summary>
    public static DeepSeqCatalog DeepSeq(this MLContext mlContext) => new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));
}

/// <summary>
/// Recurrent sequence trainers for ML.NET — RNN, LSTM (standard, peephole, coupled), GRU, bidirectional —
/// trained from scratch on the CPU in managed code, and a text-to-token featurizer.
/// </summary>
/// <example>
/// <code>
/// var ml = new MLContext(seed: 1);
/// var pipeline = ml.DeepSeq().TokenizeText("Tokens", "Text")
///     .Append(ml.DeepSeq().BinaryClassification("Label", "Tokens", epochs: 3));
/// var model = pipeline.Fit(train);
/// var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
/// </code>
/// </example>
public sealed partial class DeepSeqCatalog
{
    readonly MLContext _ml;

    internal DeepSeqCatalog(MLContext ml) => _ml = ml;

    /// <summary>
    /// Text → token ids for the sequence trainers: lower-cases, strips diacritics and punctuation, splits on
    /// whitespace, and keeps the <paramref name="maximumVocabularySize"/> most frequent words seen at least
    /// <paramref name="minimumCount"/> times (ids 1…V by frequency; other words become 0, "unknown").
    /// The result is a vector of keys whose <c>KeyValues</c> annotation holds the vocabulary. Empty, null,
    /// whitespace-only and punctuation-only text all give an empty vector, which the trainers skip and score as a
    /// missing value.
    /// </summary>
    /// <param name="outputColumnName">The column of token keys.</param>
    /// <param name="inputColumnName">The text column; null: the same name as the output.</param>
    /// <param name="maximumVocabularySize">Most words kept (default 20,000).</param>
    /// <param name="minimumCount">Fewest occurrences of a kept word (default 2).</param>
    public TextTokenizingEstimator TokenizeText(string outputColumnName, string? inputColumnName = null,
        int maximumVocabularySize = TextTokenizingEstimator.Defaults.MaximumVocabularySize, int minimumCount = TextTokenizingEstimator.Defaults.MinimumCount)
        => new(_ml, outputColumnName, inputColumnName ?? outputColumnName, maximumVocabularySize, minimumCount);

    /// <summary>A bidirectional recurrent binary classifier (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Boolean label column.</param>
    /// <param name="featureColumnName">Token ids (a vector of keys, e.g. from <see cref="TokenizeText"/>); for numeric steps use the options overload, which declares FeaturesPerStep.</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's initial learning rate.</param>
    public SequenceBinaryClassificationTrainer BinaryClassification(string labelColumnName = SequenceOptions.Defaults.LabelColumnName, string featureColumnName = SequenceOptions.Defaults.FeatureColumnName,
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = SequenceOptions.Defaults.Bidirectional, PoolingMode pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => new(_ml, Fill(new SequenceBinaryClassificationTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate), camelCaseNames: true);

    /// <summary>A recurrent binary classifier with every option; the options are checked (and copied) here.</summary>
    public SequenceBinaryClassificationTrainer BinaryClassification(SequenceBinaryClassificationTrainer.Options options) => new(_ml, options);

    /// <summary>A bidirectional recurrent multiclass classifier (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Key label column (from <c>MapValueToKey</c>).</param>
    /// <param name="featureColumnName">Token ids (a vector of keys, e.g. from <see cref="TokenizeText"/>); for numeric steps use the options overload, which declares FeaturesPerStep.</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's initial learning rate.</param>
    public SequenceMulticlassClassificationTrainer MulticlassClassification(string labelColumnName = SequenceOptions.Defaults.LabelColumnName, string featureColumnName = SequenceOptions.Defaults.FeatureColumnName,
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = SequenceOptions.Defaults.Bidirectional, PoolingMode pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => new(_ml, Fill(new SequenceMulticlassClassificationTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate), camelCaseNames: true);

    /// <summary>A recurrent multiclass classifier with every option; the options are checked (and copied) here.</summary>
    public SequenceMulticlassClassificationTrainer MulticlassClassification(SequenceMulticlassClassificationTrainer.Options options) => new(_ml, options);

    /// <summary>A bidirectional recurrent regressor (defaults in <see cref="SequenceOptions.Defaults"/>).</summary>
    /// <param name="labelColumnName">Single label column.</param>
    /// <param name="featureColumnName">Token ids (a vector of keys, e.g. from <see cref="TokenizeText"/>); for numeric steps use the options overload, which declares FeaturesPerStep.</param>
    /// <param name="cell">Recurrent cell.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="layers">Stacked layers.</param>
    /// <param name="bidirectional">Read both directions.</param>
    /// <param name="pooling">Pooling over time.</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Adam's initial learning rate.</param>
    public SequenceRegressionTrainer Regression(string labelColumnName = SequenceOptions.Defaults.LabelColumnName, string featureColumnName = SequenceOptions.Defaults.FeatureColumnName,
        SequenceCell cell = SequenceOptions.Defaults.Cell, int hiddenSize = SequenceOptions.Defaults.HiddenSize, int layers = SequenceOptions.Defaults.Layers,
        bool bidirectional = SequenceOptions.Defaults.Bidirectional, PoolingMode pooling = SequenceOptions.Defaults.Pooling, int epochs = SequenceOptions.Defaults.Epochs,
        float learningRate = SequenceOptions.Defaults.LearningRate)
        => new(_ml, Fill(new SequenceRegressionTrainer.Options(), labelColumnName, featureColumnName, cell, hiddenSize, layers, bidirectional, pooling, epochs, learningRate), camelCaseNames: true);

    /// <summary>A recurrent regressor with every option; the options are checked (and copied) here.</summary>
    public SequenceRegressionTrainer Regression(SequenceRegressionTrainer.Options options) => new(_ml, options);

    /// <summary>
    /// A residual CNN image classifier (ResNet-20 by default: three stages of 16, 32, 64 channels, 3 basic blocks
    /// each, batch norm, ReLU, flip and crop augmentation, SGD with Nesterov momentum and a one-cycle schedule).
    /// </summary>
    /// <param name="labelColumnName">Key label column (from <c>MapValueToKey</c>).</param>
    /// <param name="featureColumnName">Pixels: <c>ExtractPixels</c>' output, or a Single vector with the size set in the options overload.</param>
    /// <param name="blocksPerStage">Basic blocks per stage (3: ResNet-20, 9: ResNet-56).</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="activation">Activation between layers.</param>
    public ImageClassificationTrainer ImageClassification(string labelColumnName = ImageClassificationOptions.Defaults.LabelColumnName,
        string featureColumnName = ImageClassificationOptions.Defaults.FeatureColumnName, int blocksPerStage = ImageClassificationOptions.Defaults.BlocksPerStage,
        int epochs = ImageClassificationOptions.Defaults.Epochs, float learningRate = ImageClassificationOptions.Defaults.LearningRate,
        ImageActivation activation = ImageClassificationOptions.Defaults.Activation)
        => new(_ml, new ImageClassificationOptions
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, BlocksPerStage = blocksPerStage, Epochs = epochs,
            LearningRate = learningRate, Activation = activation,
        });

    /// <summary>A residual CNN image classifier with every option; the options are checked (and copied) here.</summary>
    public ImageClassificationTrainer ImageClassification(ImageClassificationOptions options) => new(_ml, options);

    /// <summary>
    /// An encoder–decoder with attention from a source text column to a predicted target text column, with the
    /// sequence score and the attention matrix of each prediction (defaults in <see cref="SequenceToSequenceTrainer.Options.Defaults"/>).
    /// </summary>
    /// <param name="outputColumnName">The predicted text.</param>
    /// <param name="sourceColumnName">The source text.</param>
    /// <param name="targetColumnName">The target text (training).</param>
    /// <param name="tokens">Character or word tokens, for both sides.</param>
    /// <param name="attention">Attention over the source (None: the plain encoder–decoder).</param>
    /// <param name="beamWidth">Beam width at scoring (1: greedy).</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <example>
    /// <code>
    /// var pipeline = ml.DeepSeq().SequenceToSequence("Pronunciation", "Word", "Phonemes", tokens: TextTokenUnit.Character, epochs: 10);
    /// var model = pipeline.Fit(train);
    /// var engine = ml.Model.CreatePredictionEngine&lt;WordRow, PronunciationRow&gt;(model);
    /// </code>
    /// </example>
    public SequenceToSequenceTrainer SequenceToSequence(string outputColumnName = SequenceToSequenceTrainer.Options.Defaults.OutputColumnName,
        string sourceColumnName = SequenceToSequenceTrainer.Options.Defaults.SourceColumnName, string targetColumnName = SequenceToSequenceTrainer.Options.Defaults.TargetColumnName,
        TextTokenUnit tokens = SequenceToSequenceTrainer.Options.Defaults.Tokens, AttentionMode attention = SequenceToSequenceTrainer.Options.Defaults.Attention,
        int beamWidth = SequenceToSequenceTrainer.Options.Defaults.BeamWidth, int epochs = SequenceToSequenceTrainer.Options.Defaults.Epochs)
        => new(_ml, new SequenceToSequenceTrainer.Options
        {
            OutputColumnName = outputColumnName, SourceColumnName = sourceColumnName, TargetColumnName = targetColumnName,
            SourceTokens = tokens, TargetTokens = tokens, Attention = attention, BeamWidth = beamWidth, Epochs = epochs,
        });

    /// <summary>An encoder–decoder with attention, every setting in <paramref name="options"/>.</summary>
    public SequenceToSequenceTrainer SequenceToSequence(SequenceToSequenceTrainer.Options options) => new(_ml, options);

    /// <summary>
    /// The trained sequence model inside <paramref name="transformer"/> — a <see cref="SequenceModelTransformer"/>, a
    /// chain holding one, or a model loaded with <c>mlContext.Model.Load</c> — with its architecture, class names,
    /// weights by name and training report.
    /// </summary>
    /// <exception cref="ArgumentException">The transformer holds no DeepSeq model, or several (use <see cref="GetTrainedModels"/>).</exception>
    public TrainedSequenceModel GetTrainedModel(ITransformer transformer)
    {
        var models = GetTrainedModels(transformer);
        return models.Count == 1 ? models[0]
            : throw new ArgumentException(models.Count == 0 ? "The transformer holds no DeepSeq model." : $"The transformer holds {models.Count} DeepSeq models; use GetTrainedModels.", nameof(transformer));
    }

    /// <summary>
    /// Loads a model saved with <c>mlContext.Model.Save</c>, as <c>mlContext.Model.Load</c> does, and returns it with
    /// the block scoring of a fitted model: its <c>Transform</c> reads rows ahead and scores the DeepSeq sequence
    /// models inside in batches (several times the row-by-row throughput of a stock chain as <c>Model.Load</c>
    /// returns it). Columns, values and row order are the same; saving it writes the same stock chain, so the
    /// file stays loadable with <c>Model.Load</c> alone.
    /// </summary>
    /// <param name="filePath">The saved model (a .zip from <c>Model.Save</c>).</param>
    /// <param name="inputSchema">The input schema saved with the model, as <c>Model.Load</c> gives it.</param>
    public ITransformer LoadModel(string filePath, out DataViewSchema inputSchema) => new BlockScoredModel(_ml.Model.Load(filePath, out inputSchema));

    /// <summary>Loads a model from a stream; see <see cref="LoadModel(string, out DataViewSchema)"/>.</summary>
    /// <param name="stream">A readable, seekable stream holding a model saved with <c>Model.Save</c>.</param>
    /// <param name="inputSchema">The input schema saved with the model.</param>
    public ITransformer LoadModel(Stream stream, out DataViewSchema inputSchema) => new BlockScoredModel(_ml.Model.Load(stream, out inputSchema));

    /// <summary>
    /// Every trained sequence model inside <paramref name="transformer"/>, in chain order (see <see cref="GetTrainedModel"/>);
    /// image and sequence-to-sequence models in the chain are not listed.
    /// </summary>
    public IReadOnlyList<TrainedSequenceModel> GetTrainedModels(ITransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var found = new List<TrainedSequenceModel>();
        Collect(transformer, found);
        return found;
    }

    // A fitted model carries its TrainedSequenceModel; a loaded one is a chain of stock transforms whose value
    // mapping from the constant key holds the model text: map the key through it and read the text back.
    void Collect(ITransformer t, List<TrainedSequenceModel> found)
    {
        switch (t)
        {
            case SequenceModelTransformer s: found.Add(s.Model); return;
            case BlockScoredModel loaded: Collect(loaded.Chain, found); return;
            case ValueMappingTransformer map when ModelText(map) is { } text:
                // Image and translation models share the saved format; this lists the sequence classifiers.
                if (ModelFormat.ReadText(text) is { Family: SavedSequenceModel.Family } saved) found.Add(CoreMapping.Model(SavedSequenceModel.FromSaved(saved)));
                return;
            case IEnumerable<ITransformer> chain: foreach (var inner in chain) Collect(inner, found); return;
        }
    }

    sealed class KeyRow { [ColumnName(DeepSeqColumns.Key)] public string Key = "m"; }

    string? ModelText(ValueMappingTransformer map)
    {
        var key = _ml.Data.LoadFromEnumerable([new KeyRow()]);
        DataViewSchema output;
        try { output = map.GetOutputSchema(key.Schema); }
        catch (ArgumentException) { return null; } // a value mapping of other columns
        if (output.GetColumnOrNull(DeepSeqColumns.Model) is not { Type: TextDataViewType } column) return null;
        var text = map.Transform(key).GetColumn<string>(column).Single();
        return text.StartsWith("DeepSeq.v", StringComparison.Ordinal) ? text : null;
    }

    static T Fill<T>(T o, string label, string features, SequenceCell cell, int hiddenSize, int layers, bool bidirectional, PoolingMode pooling, int epochs, float learningRate)
        where T : SequenceOptions
    {
        o.LabelColumnName = label; o.FeatureColumnName = features; o.Cell = cell; o.HiddenSize = hiddenSize; o.Layers = layers;
        o.Bidirectional = bidirectional; o.Pooling = pooling; o.Epochs = epochs; o.LearningRate = learningRate;
        return o;
    }
}
