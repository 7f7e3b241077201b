using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace DeepSeq.MLNet;

/// <summary>What a token of a sequence-to-sequence model is.</summary>
public enum TextTokenUnit
{
    /// <summary>Each character is a token (spelling → pronunciation, transliteration).</summary>
    Character,
    /// <summary>Words separated by white space, punctuation split off (translation).</summary>
    Word,
}

/// <summary>How the decoder attends to the encoded source.</summary>
public enum AttentionMode
{
    /// <summary>No attention: the plain encoder–decoder, which passes only the encoder's final state.</summary>
    None,
    /// <summary>e = vᵀ·tanh(W_q·h + W_k·m) (Bahdanau et al. 2015).</summary>
    Additive,
    /// <summary>e = h·m (Luong et al. 2015); needs the encoder's output size (2 × EncoderHiddenSize when bidirectional) to equal DecoderHiddenSize.</summary>
    Dot,
    /// <summary>e = h·W·m (Luong et al. 2015).</summary>
    General,
}

/// <summary>The decoder cells.</summary>
public enum DecoderCell
{
    /// <summary>LSTM.</summary>
    Lstm,
    /// <summary>GRU.</summary>
    Gru,
}

/// <summary>
/// Trains an encoder–decoder with attention that maps a source text column to a predicted target text column
/// (translation, spelling → pronunciation, any text-to-text task). Outputs the predicted text (in
/// <see cref="Options.OutputColumnName"/>), <c>Score</c> (Σ log p of the predicted tokens and the end token),
/// <c>Attention</c> (the target steps × source steps matrix, row-major, one row per predicted token and one for the
/// end token), and the tokens it refers to: <c>SourceTokens</c> (as the encoder read them) and <c>PredictedTokens</c>.
/// A row with empty source text gets an empty prediction, a NaN <c>Score</c> and an empty matrix.
/// </summary>
/// <remarks>
/// | Trainer characteristic | |
/// |---|---|
/// | Machine learning task | Sequence to sequence (text → text) |
/// | Input columns | Source text, target text (training); source text (scoring) |
/// | Is normalization required? | No |
/// | Is caching required? | No: the data is read once into memory |
/// | Required NuGet in addition to Microsoft.ML | DeepSeq.MLNet (pure managed) |
/// | Exportable to ONNX | No |
///
/// Vocabularies are built from the training data. Training is teacher-forced with token cross-entropy; after each
/// epoch the validation data (if given) is decoded greedily, and training stops early on its exact-match rate,
/// keeping the best epoch's weights.
/// </remarks>
public sealed class SequenceToSequenceTrainer : IEstimator<SequenceToSequenceTransformer>
{
    /// <summary>The fixed names of the output columns besides the predicted text.</summary>
    public static IReadOnlyList<string> OutputColumns { get; } = ["Score", "Attention", "SourceTokens", "PredictedTokens"];

    /// <summary>Options of <see cref="SequenceToSequenceTrainer"/>.</summary>
    public sealed class Options
    {
        /// <summary>The defaults of every option.</summary>
        public static class Defaults
        {
            /// <summary>Source text column.</summary>
            public const string SourceColumnName = "Source";
            /// <summary>Target text column.</summary>
            public const string TargetColumnName = "Target";
            /// <summary>Predicted text column.</summary>
            public const string OutputColumnName = "Translation";
            /// <summary>Tokens: words.</summary>
            public const TextTokenUnit Tokens = TextTokenUnit.Word;
            /// <summary>Most tokens kept per vocabulary.</summary>
            public const int MaximumVocabularySize = 20_000;
            /// <summary>Fewest occurrences of a kept token.</summary>
            public const int MinimumCount = 1;
            /// <summary>Embedding size.</summary>
            public const int EmbeddingSize = 128;
            /// <summary>Encoder cell.</summary>
            public const SequenceCell EncoderCell = SequenceCell.Lstm;
            /// <summary>Encoder units per direction.</summary>
            public const int EncoderHiddenSize = 256;
            /// <summary>Encoder layers.</summary>
            public const int EncoderLayers = 1;
            /// <summary>Bidirectional encoder.</summary>
            public const bool Bidirectional = true;
            /// <summary>Decoder cell.</summary>
            public const DecoderCell Decoder = DecoderCell.Lstm;
            /// <summary>Decoder units.</summary>
            public const int DecoderHiddenSize = 256;
            /// <summary>Attention.</summary>
            public const AttentionMode Attention = AttentionMode.Additive;
            /// <summary>Input feeding.</summary>
            public const bool InputFeeding = true;
            /// <summary>Dropout.</summary>
            public const float Dropout = 0.2f;
            /// <summary>Beam width (1: greedy).</summary>
            public const int BeamWidth = 1;
            /// <summary>Length penalty exponent of beam search.</summary>
            public const float LengthPenalty = 1f;
            /// <summary>Epochs.</summary>
            public const int Epochs = 10;
            /// <summary>Batch size.</summary>
            public const int BatchSize = 64;
            /// <summary>Adam's learning rate.</summary>
            public const float LearningRate = 1e-3f;
            /// <summary>Longest source and target in training, in tokens.</summary>
            public const int MaxLength = 100;
            /// <summary>Epochs without a better validation score before stopping.</summary>
            public const int EarlyStoppingPatience = 2;
        }

        /// <summary>Source text column (default "Source").</summary>
        public string SourceColumnName = Defaults.SourceColumnName;
        /// <summary>Target text column, needed for training only (default "Target").</summary>
        public string TargetColumnName = Defaults.TargetColumnName;
        /// <summary>Predicted text column (default "Translation").</summary>
        public string OutputColumnName = Defaults.OutputColumnName;
        /// <summary>Source tokens (default words).</summary>
        public TextTokenUnit SourceTokens = Defaults.Tokens;
        /// <summary>Target tokens (default words).</summary>
        public TextTokenUnit TargetTokens = Defaults.Tokens;
        /// <summary>Lower-case text before tokenising (default true).</summary>
        public bool LowerCase = true;
        /// <summary>Most tokens kept per vocabulary, the most frequent (default 20,000).</summary>
        public int MaximumVocabularySize = Defaults.MaximumVocabularySize;
        /// <summary>Fewest occurrences of a kept token (default 1); rarer ones become unknown.</summary>
        public int MinimumCount = Defaults.MinimumCount;
        /// <summary>Embedding size of source and target tokens (default 128).</summary>
        public int EmbeddingSize = Defaults.EmbeddingSize;
        /// <summary>Encoder cell (default LSTM; any sequence cell).</summary>
        public SequenceCell EncoderCell = Defaults.EncoderCell;
        /// <summary>Encoder units per direction (default 256).</summary>
        public int EncoderHiddenSize = Defaults.EncoderHiddenSize;
        /// <summary>Stacked encoder layers (default 1).</summary>
        public int EncoderLayers = Defaults.EncoderLayers;
        /// <summary>Read the source in both directions (default true).</summary>
        public bool Bidirectional = Defaults.Bidirectional;
        /// <summary>Decoder cell (default LSTM).</summary>
        public DecoderCell DecoderCell = Defaults.Decoder;
        /// <summary>Decoder units (default 256).</summary>
        public int DecoderHiddenSize = Defaults.DecoderHiddenSize;
        /// <summary>Attention (default additive).</summary>
        public AttentionMode Attention = Defaults.Attention;
        /// <summary>Additive attention size; null: the decoder's hidden size.</summary>
        public int? AttentionSize;
        /// <summary>Feed the attentional vector into the next decoder step (default true; with attention only).</summary>
        public bool InputFeeding = Defaults.InputFeeding;
        /// <summary>Feed the source reversed (default false).</summary>
        public bool ReverseSource;
        /// <summary>Feed the source twice (default false).</summary>
        public bool RepeatSource;
        /// <summary>Dropout rate (default 0.2).</summary>
        public float Dropout = Defaults.Dropout;
        /// <summary>Beam width at scoring (default 1: greedy).</summary>
        public int BeamWidth = Defaults.BeamWidth;
        /// <summary>Beam search ranks finished outputs by Σ log p / length^LengthPenalty (default 1; 0: none).</summary>
        public float LengthPenalty = Defaults.LengthPenalty;
        /// <summary>Longest output in tokens; null: 2 × the source length + 10.</summary>
        public int? MaxOutputLength;
        /// <summary>Passes over the data (default 10).</summary>
        public int Epochs = Defaults.Epochs;
        /// <summary>Pairs per batch (default 64).</summary>
        public int BatchSize = Defaults.BatchSize;
        /// <summary>Adam's learning rate (default 1e-3).</summary>
        public float LearningRate = Defaults.LearningRate;
        /// <summary>Learning-rate factor per epoch (default 1: constant).</summary>
        public float LearningRateDecay = 1f;
        /// <summary>Longest source and target used in training, in tokens (default 100; longer ones are cut).</summary>
        public int MaxLength = Defaults.MaxLength;
        /// <summary>Epochs without a better validation exact-match rate before stopping (default 2; 0: never).</summary>
        public int EarlyStoppingPatience = Defaults.EarlyStoppingPatience;
        /// <summary>Seed; null: from the MLContext.</summary>
        public int? Seed;
        /// <summary>Threads (default 0: one per core).</summary>
        public int NumberOfThreads;
        /// <summary>Called during training (batches and epochs).</summary>
        public IProgress<SequenceTrainingProgress>? Progress;
        /// <summary>Stops training; the best epoch so far is kept.</summary>
        public CancellationToken CancellationToken;

        internal Options Clone() => (Options)MemberwiseClone();

        internal void Validate()
        {
            static ArgumentOutOfRangeException Range(string field, object? value, string rule) => new(field, value, $"{field} {rule}.");
            foreach (var (name, value) in new[] { (nameof(SourceColumnName), SourceColumnName), (nameof(TargetColumnName), TargetColumnName), (nameof(OutputColumnName), OutputColumnName) })
                if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"Set {name}.", name);
            if (OutputColumns.Contains(OutputColumnName)) throw new ArgumentException($"OutputColumnName '{OutputColumnName}' is taken by another output column ({string.Join(", ", OutputColumns)}).", nameof(OutputColumnName));
            if (!Enum.IsDefined(SourceTokens)) throw Range(nameof(SourceTokens), SourceTokens, "must be Character or Word");
            if (!Enum.IsDefined(TargetTokens)) throw Range(nameof(TargetTokens), TargetTokens, "must be Character or Word");
            if (MaximumVocabularySize < 1) throw Range(nameof(MaximumVocabularySize), MaximumVocabularySize, "must be at least 1");
            if (MinimumCount < 1) throw Range(nameof(MinimumCount), MinimumCount, "must be at least 1");
            if (EmbeddingSize < 1) throw Range(nameof(EmbeddingSize), EmbeddingSize, "must be at least 1");
            if (!Enum.IsDefined(EncoderCell)) throw Range(nameof(EncoderCell), EncoderCell, "is not a SequenceCell");
            if (EncoderHiddenSize < 1) throw Range(nameof(EncoderHiddenSize), EncoderHiddenSize, "must be at least 1");
            if (EncoderLayers < 1) throw Range(nameof(EncoderLayers), EncoderLayers, "must be at least 1");
            if (!Enum.IsDefined(DecoderCell)) throw Range(nameof(DecoderCell), DecoderCell, "must be Lstm or Gru");
            if (DecoderHiddenSize < 1) throw Range(nameof(DecoderHiddenSize), DecoderHiddenSize, "must be at least 1");
            if (!Enum.IsDefined(Attention)) throw Range(nameof(Attention), Attention, "is not an AttentionMode");
            if (AttentionSize is < 1) throw Range(nameof(AttentionSize), AttentionSize, "must be at least 1");
            if (AttentionSize is not null && Attention != AttentionMode.Additive) throw new ArgumentException($"AttentionSize applies to Attention = Additive; this trainer has Attention = {Attention}. Leave AttentionSize unset.", nameof(AttentionSize));
            int memory = Bidirectional ? 2 * EncoderHiddenSize : EncoderHiddenSize;
            if (Attention == AttentionMode.Dot && memory != DecoderHiddenSize)
                throw new ArgumentException($"Attention = Dot needs the encoder's output size ({memory}) to equal DecoderHiddenSize ({DecoderHiddenSize}); use General or Additive, or change the sizes.", nameof(Attention));
            if (!(Dropout >= 0 && Dropout < 1)) throw Range(nameof(Dropout), Dropout, "must be in [0, 1)");
            if (BeamWidth < 1) throw Range(nameof(BeamWidth), BeamWidth, "must be at least 1 (1: greedy)");
            if (!(LengthPenalty >= 0) || !float.IsFinite(LengthPenalty)) throw Range(nameof(LengthPenalty), LengthPenalty, "must be finite and non-negative");
            if (MaxOutputLength is < 1) throw Range(nameof(MaxOutputLength), MaxOutputLength, "must be at least 1 (null: 2 × the source length + 10)");
            if (Epochs < 1) throw Range(nameof(Epochs), Epochs, "must be at least 1");
            if (BatchSize < 1) throw Range(nameof(BatchSize), BatchSize, "must be at least 1");
            if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw Range(nameof(LearningRate), LearningRate, "must be positive and finite");
            if (!(LearningRateDecay > 0 && LearningRateDecay <= 1)) throw Range(nameof(LearningRateDecay), LearningRateDecay, "must be in (0, 1]");
            if (MaxLength < 1) throw Range(nameof(MaxLength), MaxLength, "must be at least 1");
            if (EarlyStoppingPatience < 0) throw Range(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative");
            if (NumberOfThreads < 0) throw Range(nameof(NumberOfThreads), NumberOfThreads, "must be non-negative (0: one per core)");
        }
    }

    readonly MLContext _ml;
    readonly Options _options;

    internal SequenceToSequenceTrainer(MLContext ml, Options options)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone(); // later changes to the caller's object do not reach this trainer
    }

    /// <summary>Reads the pairs, builds the vocabularies, trains, and returns the model as a transformer.</summary>
    public SequenceToSequenceTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="trainData"/>, decoding <paramref name="validationData"/> (source and target text)
    /// after every epoch: training stops early on its exact-match rate and keeps the best epoch's weights.
    /// </summary>
    public SequenceToSequenceTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var o = _options;
        var host = ((IHostEnvironment)_ml).Register("DeepSeq.SequenceToSequence");
        using var ch = host.Start("Training");
        CheckSchema(trainData.Schema, o, needTarget: true);
        if (validationData is not null) CheckSchema(validationData.Schema, o, needTarget: true);
        int seed = o.Seed ?? host.Rand.Next();

        var (trainSources, trainTargets) = ReadPairs(trainData, o);
        var source = Seq2SeqVocabulary.Build(trainSources, Unit(o.SourceTokens), o.LowerCase, splitPunctuation: o.SourceTokens == TextTokenUnit.Word, o.MaximumVocabularySize, o.MinimumCount);
        var target = Seq2SeqVocabulary.Build(trainTargets, Unit(o.TargetTokens), o.LowerCase, splitPunctuation: o.TargetTokens == TextTokenUnit.Word, o.MaximumVocabularySize, o.MinimumCount);
        var (train, skipped) = Dataset(trainSources, trainTargets, source, target);
        if (train.Count == 0) throw new InvalidOperationException("The training data has no row with both source and target tokens to train on.");
        if (skipped > 0) ch.Warning(MessageSensitivity.None, $"Skipped {skipped:N0} training row{(skipped == 1 ? "" : "s")} with no source or no target tokens.");
        Seq2SeqDataset? validation = null;
        if (validationData is not null)
        {
            var (vs, vt) = ReadPairs(validationData, o);
            validation = Dataset(vs, vt, source, target).Data;
        }

        var config = new Seq2SeqConfig
        {
            SourceVocabularySize = source.Size, TargetVocabularySize = target.Size, EmbeddingSize = o.EmbeddingSize, EncoderCell = Cell(o.EncoderCell),
            EncoderHiddenSize = o.EncoderHiddenSize, EncoderLayers = o.EncoderLayers, Bidirectional = o.Bidirectional,
            DecoderCell = new RecurrentCellSpec(o.DecoderCell == DecoderCell.Gru ? RecurrentCellKind.Gru : RecurrentCellKind.Lstm),
            DecoderHiddenSize = o.DecoderHiddenSize, Attention = (AttentionKind)(int)o.Attention, AttentionSize = o.AttentionSize ?? 0,
            InputFeeding = o.InputFeeding, Dropout = o.Dropout, ReverseSource = o.ReverseSource, RepeatSource = o.RepeatSource,
        };
        var model = new Seq2SeqModel(config, seed);
        model.Initialize(new Random(seed));
        ch.Info(MessageSensitivity.None, $"Training an encoder–decoder ({o.Attention} attention, {model.Parameters.Sum(p => p.Value.Length):N0} weights; vocabularies {source.Size:N0} source, {target.Size:N0} target ids) on {train.Count:N0} pairs" +
            (validation is null ? "" : $", validating on {validation.Count:N0}") + $", {o.Epochs} epochs.");
        var report = Seq2SeqTrainer.Train(model, train, validation, new Seq2SeqTrainingOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, LearningRateDecay = o.LearningRateDecay,
            EarlyStoppingPatience = o.EarlyStoppingPatience, Seed = seed, NumberOfThreads = o.NumberOfThreads,
            MaxSourceLength = o.MaxLength, MaxTargetLength = o.MaxLength, CancellationToken = o.CancellationToken,
            Progress = new Reporter(p =>
            {
                if (p.Batch == p.Batches)
                    ch.Info(MessageSensitivity.None, $"Epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}" +
                        (p.ValidationLoss is double vl ? $", validation loss {vl:F4}, exact match {p.ValidationMetric:F4}" : "") + $", {p.SequencesPerSecond:F0} pairs/s");
                o.Progress?.Report(CoreMapping.Progress(p));
            }),
        });
        foreach (var w in report.Warnings) ch.Warning(MessageSensitivity.None, w);
        if (report.Divergence is not null) ch.Warning(MessageSensitivity.None, report.Divergence);
        if (report.BestEpoch == 0) throw new InvalidOperationException(report.Divergence ?? "Training stopped before completing an epoch; no weights to keep.");
        ch.Info(MessageSensitivity.None, $"Kept the weights of epoch {report.BestEpoch}; training took {report.Duration:hh\\:mm\\:ss}.");

        var decoding = new Seq2SeqDecoding { BeamWidth = o.BeamWidth, LengthPenalty = o.LengthPenalty, MaxOutputLength = o.MaxOutputLength ?? 0 };
        var textModel = new Seq2SeqTextModel(model, source, target, decoding);
        var chain = Chain(_ml, o, ModelFormat.WriteText(textModel.Save())).Fit(trainData);
        return new SequenceToSequenceTransformer(chain, textModel, CoreMapping.Report(report));
    }

    /// <summary>The schema of the data the trained model produces.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var source = inputSchema.FirstOrDefault(c => c.Name == _options.SourceColumnName);
        if (source.Name is null) throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find source column '{_options.SourceColumnName}'");
        if (source.Kind != SchemaShape.Column.VectorKind.Scalar || source.ItemType is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Schema mismatch for source column '{_options.SourceColumnName}': expected String, got {source.ItemType}");
        return Chain(_ml, _options, ModelFormat.Prefix).GetOutputSchema(inputSchema);
    }

    /// <summary>
    /// The stock transforms that carry the model (see the sequence trainers): a constant key, the model text from a
    /// value mapping, the source under a fixed name, the text-to-text row mapping, the prediction renamed.
    /// </summary>
    internal static IEstimator<ITransformer> Chain(MLContext ml, Options o, string blob)
    {
        var t = ml.Transforms;
        return t.CustomMapping(new KeyFactory().GetMapping(), KeyFactory.ContractName)
            .Append(t.Conversion.MapValue(DeepSeqColumns.Model, [new KeyValuePair<string, string>("m", blob)], DeepSeqColumns.Key))
            .Append(t.CopyColumns(DeepSeqColumns.Input, o.SourceColumnName))
            .Append(t.CustomMapping(new TextToTextMapping().GetMapping(), TextToTextMapping.ContractName))
            .Append(t.CopyColumns(o.OutputColumnName, DeepSeqColumns.PredictedName))
            .Append(t.DropColumns(DeepSeqColumns.Key, DeepSeqColumns.Model, DeepSeqColumns.Input, DeepSeqColumns.PredictedName));
    }

    static void CheckSchema(DataViewSchema schema, Options o, bool needTarget)
    {
        foreach (var (role, name) in needTarget ? new[] { ("source", o.SourceColumnName), ("target", o.TargetColumnName) } : [("source", o.SourceColumnName)])
        {
            var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find {role} column '{name}'");
            if (column.Type is not TextDataViewType)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Schema mismatch for {role} column '{name}': expected String, got {column.Type}");
        }
    }

    static (List<string> Sources, List<string> Targets) ReadPairs(IDataView data, Options o)
    {
        var sources = new List<string>(); var targets = new List<string>();
        var s = data.Schema[o.SourceColumnName]; var t = data.Schema[o.TargetColumnName];
        using var cursor = data.GetRowCursor([s, t]);
        var sg = cursor.GetGetter<ReadOnlyMemory<char>>(s); var tg = cursor.GetGetter<ReadOnlyMemory<char>>(t);
        ReadOnlyMemory<char> sv = default, tv = default;
        while (cursor.MoveNext())
        {
            sg(ref sv); tg(ref tv);
            sources.Add(sv.ToString()); targets.Add(tv.ToString());
        }
        return (sources, targets);
    }

    static (Seq2SeqDataset Data, int Skipped) Dataset(List<string> sources, List<string> targets, Seq2SeqVocabulary source, Seq2SeqVocabulary target)
    {
        var data = new Seq2SeqDataset();
        int skipped = 0;
        for (int i = 0; i < sources.Count; i++)
        {
            var s = source.Encode(sources[i]); var y = target.Encode(targets[i]);
            if (s.Length == 0 || y.Length == 0) { skipped++; continue; }
            data.Add(s, y);
        }
        return (data, skipped);
    }

    static Seq2SeqTokenization Unit(TextTokenUnit u) => u == TextTokenUnit.Character ? Seq2SeqTokenization.Character : Seq2SeqTokenization.Word;

    static RecurrentCellSpec Cell(SequenceCell c) => c switch
    {
        SequenceCell.Rnn => new RecurrentCellSpec(RecurrentCellKind.Rnn),
        SequenceCell.Lstm => new RecurrentCellSpec(RecurrentCellKind.Lstm),
        SequenceCell.PeepholeLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.All },
        SequenceCell.CoupledLstm => new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true },
        _ => new RecurrentCellSpec(RecurrentCellKind.Gru),
    };

    sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}

/// <summary>
/// A trained sequence-to-sequence model as an ML.NET transformer: a chain of stock transforms (the weights live in
/// a value mapping), so <c>mlContext.Model.Save</c>/<c>Load</c> and <c>PredictionEngine</c> work unchanged.
/// </summary>
public sealed class SequenceToSequenceTransformer : ITransformer
{
    readonly ITransformer _chain;
    readonly Seq2SeqTextModel _model;

    internal SequenceToSequenceTransformer(ITransformer chain, Seq2SeqTextModel model, SequenceTrainingReport report)
    {
        _chain = chain; _model = model; TrainingReport = report;
    }

    /// <summary>Per-epoch training figures (validation metric: greedy exact-match rate), the epoch kept, divergence and warnings.</summary>
    public SequenceTrainingReport TrainingReport { get; }
    /// <summary>The source vocabulary's tokens (ids 4, 5, …; 0–3 are padding, unknown, begin and end).</summary>
    public IReadOnlyList<string> SourceVocabulary => _model.Source.Tokens;
    /// <summary>The target vocabulary's tokens.</summary>
    public IReadOnlyList<string> TargetVocabulary => _model.Target.Tokens;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;
    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);
    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);
    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => _chain.Transform(input);
    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);
}
