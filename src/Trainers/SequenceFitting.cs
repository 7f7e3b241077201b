using System.Globalization;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace DeepSeq.MLNet;

/// <summary>How the feature column is read: token ids (with the embedding's row count) or numeric steps of some width.</summary>
internal readonly record struct InputLayout(bool Tokens, int EmbeddingRows, int FeaturesPerStep);

/// <summary>What the three sequence trainers share: schema checks, reading rows, training, and the transformer chain.</summary>
internal static class SequenceFitting
{
    sealed class ClassName { public string Name = ""; }

    static string ExpectedLabel(SequenceTaskKind task) => task switch
    {
        SequenceTaskKind.BinaryClassification => "Boolean",
        SequenceTaskKind.MulticlassClassification => "Key",
        _ => "Single",
    };

    // ML.NET's own wording for schema errors.
    static ArgumentOutOfRangeException Missing(string role, string name) => new("inputSchema", $"Could not find {role} column '{name}'");
    static ArgumentOutOfRangeException Mismatch(string role, string name, string expected, string got) =>
        new("inputSchema", $"Schema mismatch for {role} column '{name}': expected {expected}, got {got}");

    const string ExpectedFeature = "vector of Key<UInt32> (token ids) or vector of Single (steps × features)";

    // One rule for both views of a schema (a fitted DataViewSchema, an unfitted SchemaShape): true for token
    // input, false for numeric input, null when the type fits neither.
    static bool? FeatureKind(DataViewType? itemType, bool isKey, bool isVector)
    {
        if (!isVector || itemType is null) return null;
        if (isKey && itemType.RawType == typeof(uint)) return true;
        if (!isKey && itemType is NumberDataViewType && itemType.RawType == typeof(float)) return false;
        return null;
    }

    static bool LabelFits(SequenceTaskKind task, DataViewType? itemType, bool isKey) => task switch
    {
        SequenceTaskKind.BinaryClassification => itemType is BooleanDataViewType,
        SequenceTaskKind.MulticlassClassification => isKey,
        _ => !isKey && itemType is NumberDataViewType && itemType.RawType == typeof(float),
    };

    /// <summary>
    /// Checks the columns of a schema and how the feature column is to be read. Numeric input needs its layout
    /// declared (<see cref="SequenceOptions.FeaturesPerStep"/> or a <c>Vector&lt;Single, *, F&gt;</c> type): a
    /// numeric vector is not guessed to be a sequence (a bag of words from FeaturizeText would otherwise train
    /// as thousands of one-value steps).
    /// </summary>
    public static InputLayout CheckSchema(DataViewSchema schema, SequenceOptions o, SequenceTaskKind task, bool needLabel)
    {
        var feature = schema.GetColumnOrNull(o.FeatureColumnName) ?? throw Missing("feature", o.FeatureColumnName);
        var vector = feature.Type as VectorDataViewType;
        bool tokens = FeatureKind(vector?.ItemType, vector?.ItemType is KeyDataViewType, vector is not null)
            ?? throw Mismatch("feature", o.FeatureColumnName, ExpectedFeature, feature.Type.ToString() ?? "");
        if (needLabel)
        {
            var label = schema.GetColumnOrNull(o.LabelColumnName) ?? throw Missing("label", o.LabelColumnName);
            if (label.Type is VectorDataViewType || !LabelFits(task, label.Type, label.Type is KeyDataViewType))
                throw Mismatch("label", o.LabelColumnName, ExpectedLabel(task), label.Type.ToString() ?? "");
        }
        if (tokens)
        {
            if (o.FeaturesPerStep is not null)
                throw new ArgumentException($"FeaturesPerStep applies to numeric input; the feature column '{o.FeatureColumnName}' holds token ids. Leave FeaturesPerStep unset.", nameof(o.FeaturesPerStep));
            return new InputLayout(true, checked((int)((KeyDataViewType)vector!.ItemType).Count + 1), 1); // keys 1…V; 0 = unknown
        }
        if (o.EmbeddingSize is not null)
            throw new ArgumentException($"EmbeddingSize applies to token input; the feature column '{o.FeatureColumnName}' holds numeric values. Leave EmbeddingSize unset.", nameof(o.EmbeddingSize));
        int? declared = vector!.Dimensions.Length == 2 && vector.Dimensions[1] > 0 ? vector.Dimensions[1] : null;
        int f = o.FeaturesPerStep ?? declared ?? throw new ArgumentException(
            $"The feature column '{o.FeatureColumnName}' is a vector of {(vector.IsKnownSize ? $"{vector.Size:N0} " : "")}Single values, and DeepSeq does not guess how " +
            "numeric values make a sequence: set FeaturesPerStep to the number of values per time step (a row of T steps holds T × FeaturesPerStep values), " +
            "or give the column a steps × features type (Vector<Single, *, F>)." +
            (vector.IsKnownSize && feature.HasSlotNames() ? " Its fixed size and slot names look like a bag of features (e.g. from FeaturizeText), not a sequence: for text, use mlContext.DeepSeq().TokenizeText." : ""),
            nameof(o.FeaturesPerStep));
        if (declared is int d && d != f)
            throw new ArgumentException($"FeaturesPerStep is {f}, but the feature column '{o.FeatureColumnName}' declares {d} values per step.", nameof(o.FeaturesPerStep));
        if (vector.IsKnownSize && vector.Size % f != 0)
            throw new ArgumentException($"The feature column '{o.FeatureColumnName}' holds {vector.Size} values per row, not a multiple of FeaturesPerStep = {f}.", nameof(o.FeaturesPerStep));
        return new InputLayout(false, 0, f);
    }

    /// <summary>The output shape, from the same chain of stock estimators the trained model uses.</summary>
    public static SchemaShape OutputShape(MLContext ml, SchemaShape input, SequenceOptions o, SequenceTaskKind task)
    {
        if (!TryFind(input, o.FeatureColumnName, out var feature)) throw Missing("feature", o.FeatureColumnName);
        bool tokens = FeatureKind(feature.ItemType, feature.IsKey, feature.Kind is SchemaShape.Column.VectorKind.Vector or SchemaShape.Column.VectorKind.VariableVector)
            ?? throw Mismatch("feature", o.FeatureColumnName, ExpectedFeature, feature.ItemType?.ToString() ?? "");
        if (TryFind(input, o.LabelColumnName, out var label)
            && (label.Kind != SchemaShape.Column.VectorKind.Scalar || !LabelFits(task, label.ItemType, label.IsKey)))
            throw Mismatch("label", o.LabelColumnName, ExpectedLabel(task), label.ItemType?.ToString() ?? "");
        var taken = input.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        return Chain(ml, o.FeatureColumnName, tokens, task, ModelFormat.Prefix, ["a", "b"], taken).GetOutputSchema(input);
    }

    static bool TryFind(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        foreach (var c in shape)
            if (c.Name == name) { column = c; return true; }
        column = default;
        return false;
    }

    /// <summary>Reads, trains, and wraps the trained model in its transformer chain.</summary>
    public static SequenceModelTransformer Fit(MLContext ml, IDataView data, IDataView? validationData, SequenceOptions o, SequenceTaskKind task)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (validationData is not null && o.ValidationFraction > 0)
            throw new ArgumentException("Pass validation data or set ValidationFraction, not both.", nameof(validationData));
        var host = ((IHostEnvironment)ml).Register($"DeepSeq.Sequence{task}");
        using var ch = host.Start("Training");
        var layout = CheckSchema(data.Schema, o, task, needLabel: true);
        var classNames = task == SequenceTaskKind.MulticlassClassification ? ClassNames(data.Schema[o.LabelColumnName]) : [];
        if (task == SequenceTaskKind.MulticlassClassification && (classNames.Length < 2 || classNames.Length > DeepSeqColumns.MaxClasses))
            throw new ArgumentOutOfRangeException("inputSchema", $"The label column '{o.LabelColumnName}' has {classNames.Length} classes; a DeepSeq multiclass model supports 2 to {DeepSeqColumns.MaxClasses}.");
        if (validationData is not null) CheckSameEncoding(data.Schema, validationData.Schema, o, task, layout);

        int seed = o.Seed ?? host.Rand.Next();
        var warnings = new List<string>();
        var train = Rows.Read(data, o, task, layout, "training");
        var validation = validationData is null ? null : Rows.Read(validationData, o, task, layout, "validation");
        if (o.ValidationFraction > 0)
        {
            (train, validation) = train.Split(o.ValidationFraction, seed);
            ch.Info(MessageSensitivity.None, $"Held out {validation.Count:N0} of {train.Count + validation.Count:N0} rows (ValidationFraction = {o.ValidationFraction}) for validation.");
        }
        foreach (var rows in new[] { train, validation })
            if (rows?.Skipped > 0)
                warnings.Add($"Skipped {rows.Skipped:N0} {rows.Which} row{(rows.Skipped == 1 ? "" : "s")} with no {(layout.Tokens ? "tokens (empty, whitespace-only or punctuation-only text, or null)" : "steps")}; " +
                    "at scoring, such a row gets NaN scores, a missing value that ML.NET's evaluators skip.");
        if (train.Count == 0) throw new InvalidOperationException($"The training data has no row with {(layout.Tokens ? "tokens" : "steps")} to train on.");

        int outputs = task == SequenceTaskKind.MulticlassClassification ? classNames.Length : 1;
        var config = new SequenceModelConfig
        {
            VocabularySize = layout.EmbeddingRows, EmbeddingSize = o.EmbeddingSize ?? SequenceOptions.Defaults.EmbeddingSize,
            FeatureSize = layout.Tokens ? 0 : layout.FeaturesPerStep, Cell = CoreMapping.Cell(o), HiddenSize = o.HiddenSize, Layers = o.Layers,
            Bidirectional = o.Bidirectional, Merge = CoreMapping.Merge(o.Merge ?? SequenceOptions.Defaults.Merge), Pooling = CoreMapping.Pooling(o.Pooling),
            AttentionSize = o.AttentionSize ?? SequenceOptions.Defaults.AttentionSize, Dropout = o.Dropout, Outputs = outputs,
        };
        var model = new SequenceModel(config, seed);
        model.Initialize(new Random(seed), CoreMapping.Initializer(o.Initializer), o.UnitForgetBias ?? SequenceOptions.Defaults.UnitForgetBias);
        ch.Info(MessageSensitivity.None, $"Training a {(o.Bidirectional ? "bidirectional " : "")}{o.Cell} ({o.Layers}×{o.HiddenSize}, {model.Parameters.Sum(p => p.Value.Length):N0} weights) on {train.Count:N0} sequences" +
            (validation is null ? "" : $", validating on {validation.Count:N0}") + $", {o.Epochs} epochs.");

        var coreTask = CoreMapping.ToCore(task);
        var progress = new LoggingProgress(ch, o.Progress);
        var report = SequenceTrainer.Train(model, coreTask, train.ToDataset(layout), validation?.ToDataset(layout), CoreMapping.Training(o, seed, progress));
        warnings.InsertRange(0, report.Warnings);
        if (report.BestEpoch > 0 && report.Epochs.FirstOrDefault(e => e.Epoch == report.BestEpoch) is { } kept
            && train.ConstantPredictorLoss(task, outputs) is double baseline && kept.TrainLoss > baseline)
            warnings.Add($"The kept epoch's training loss ({kept.TrainLoss:G4}) is above {baseline:G4}, the loss of always predicting the training labels' " +
                $"{(task == SequenceTaskKind.Regression ? "mean" : "distribution")}: the model learned nothing from the sequences. Try a lower LearningRate.");
        report = report with { Warnings = warnings };
        foreach (var w in warnings) ch.Warning(MessageSensitivity.None, w);
        if (report.Divergence is not null) ch.Warning(MessageSensitivity.None, report.Divergence);
        if (report.Cancelled) ch.Warning(MessageSensitivity.None, $"Training was cancelled; kept the weights of epoch {report.BestEpoch}.");
        if (report.BestEpoch == 0)
            throw new InvalidOperationException(report.Divergence ?? "Training stopped before completing an epoch; no weights to keep.");
        ch.Info(MessageSensitivity.None, $"Kept the weights of epoch {report.BestEpoch}; training took {report.Duration:hh\\:mm\\:ss}.");

        var saved = SavedSequenceModel.From(model, coreTask, classNames, o.MaxLength, o.KeepEnd, layout.FeaturesPerStep) with { Report = report };
        var taken = data.Schema.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var chain = Chain(ml, o.FeatureColumnName, layout.Tokens, task, ModelFormat.Write(saved), classNames, taken).Fit(data);
        return new SequenceModelTransformer(chain, CoreMapping.Model(saved));
    }

    /// <summary>Validation data must encode features (and classes) as the training data does: same vocabulary, same step width, same labels.</summary>
    static void CheckSameEncoding(DataViewSchema train, DataViewSchema validation, SequenceOptions o, SequenceTaskKind task, InputLayout layout)
    {
        var other = CheckSchema(validation, o, task, needLabel: true);
        if (other.Tokens != layout.Tokens)
            throw new ArgumentException($"The validation data's feature column '{o.FeatureColumnName}' holds {(other.Tokens ? "token ids" : "numeric values")}; the training data's holds {(layout.Tokens ? "token ids" : "numeric values")}.", "validationData");
        if (other != layout || (layout.Tokens && !SameKeyValues(train[o.FeatureColumnName], validation[o.FeatureColumnName])))
            throw new ArgumentException(layout.Tokens
                ? $"The validation data's tokens in '{o.FeatureColumnName}' come from another vocabulary ({other.EmbeddingRows - 1:N0} words, against {layout.EmbeddingRows - 1:N0} in training, or the same count in another order): tokenize it with the tokenizer fitted on the training data (the same transformer), or set ValidationFraction instead."
                : $"The validation data has {other.FeaturesPerStep} values per step in '{o.FeatureColumnName}'; the training data has {layout.FeaturesPerStep}.", "validationData");
        if (task == SequenceTaskKind.MulticlassClassification && !ClassNames(train[o.LabelColumnName]).SequenceEqual(ClassNames(validation[o.LabelColumnName])))
            throw new ArgumentException($"The validation data's label column '{o.LabelColumnName}' has other classes (or another key order) than the training data's: map both with the same MapValueToKey transformer.", "validationData");
    }

    static bool SameKeyValues(DataViewSchema.Column a, DataViewSchema.Column b)
    {
        var x = KeyValues(a);
        var y = KeyValues(b);
        if (x is null || y is null) return x is null && y is null;
        return x.Length == y.Length && x.AsSpan().SequenceEqual(y);
    }

    static string[]? KeyValues(DataViewSchema.Column column)
    {
        if (column.Annotations.Schema.GetColumnOrNull("KeyValues") is not { Type: VectorDataViewType { ItemType: TextDataViewType } }) return null;
        VBuffer<ReadOnlyMemory<char>> values = default;
        column.Annotations.GetValue("KeyValues", ref values);
        return [.. values.DenseValues().Select(v => v.ToString())];
    }

    static string[] ClassNames(DataViewSchema.Column label)
    {
        int count = checked((int)((KeyDataViewType)label.Type).Count);
        var names = Enumerable.Range(1, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        if (KeyValues(label) is { } values)
            for (int i = 0; i < Math.Min(count, values.Length); i++) names[i] = values[i];
        return names;
    }

    /// <summary>Labelled sequences read once into memory; rows with no tokens or steps are skipped and counted.</summary>
    sealed class Rows(string which)
    {
        public readonly List<int[]> Tokens = [];
        public readonly List<float[]> Values = [];
        public readonly List<float> Labels = [];
        public string Which { get; } = which;
        public int Skipped { get; private set; }
        public int Count => Labels.Count;

        public static Rows Read(IDataView data, SequenceOptions o, SequenceTaskKind task, InputLayout layout, string which)
        {
            var rows = new Rows(which);
            var labelColumn = data.Schema[o.LabelColumnName];
            var featureColumn = data.Schema[o.FeatureColumnName];
            using var cursor = data.GetRowCursor([labelColumn, featureColumn]);
            var labelGetter = LabelGetter(cursor, labelColumn, task);
            var tokenGetter = layout.Tokens ? cursor.GetGetter<VBuffer<uint>>(featureColumn) : null;
            var valueGetter = layout.Tokens ? null : cursor.GetGetter<VBuffer<float>>(featureColumn);
            VBuffer<uint> keyBuffer = default; VBuffer<float> valueBuffer = default;
            long row = -1;
            while (cursor.MoveNext())
            {
                row++;
                float label = labelGetter();
                if (float.IsNaN(label)) throw new InvalidOperationException($"Row {row} of the {which} data has a missing label in column '{o.LabelColumnName}'.");
                if (task == SequenceTaskKind.Regression && !float.IsFinite(label))
                    throw new InvalidOperationException($"Row {row} of the {which} data has an infinite label in column '{o.LabelColumnName}'.");
                if (layout.Tokens)
                {
                    tokenGetter!(ref keyBuffer);
                    if (keyBuffer.Length == 0) { rows.Skipped++; continue; }
                    var ids = new int[keyBuffer.Length];
                    int k = 0;
                    foreach (uint key in keyBuffer.DenseValues()) ids[k++] = (int)key;
                    rows.Tokens.Add(ids);
                }
                else
                {
                    valueGetter!(ref valueBuffer);
                    var values = valueBuffer.DenseValues().ToArray();
                    if (values.Length == 0) { rows.Skipped++; continue; }
                    if (values.Length % layout.FeaturesPerStep != 0)
                        throw new InvalidOperationException($"Row {row} of the {which} data has {values.Length} values in column '{o.FeatureColumnName}', not a multiple of FeaturesPerStep = {layout.FeaturesPerStep}.");
                    if (!values.All(float.IsFinite))
                        throw new InvalidOperationException($"Row {row} of the {which} data has a NaN or infinite value in column '{o.FeatureColumnName}'.");
                    rows.Values.Add(values);
                }
                rows.Labels.Add(label);
            }
            if (row < 0) throw new InvalidOperationException($"The {which} data has no rows.");
            return rows;
        }

        /// <summary>Holds out a seeded random <paramref name="fraction"/> of the rows (at least one, leaving at least one).</summary>
        public (Rows Train, Rows Validation) Split(float fraction, int seed)
        {
            if (Count < 2) throw new InvalidOperationException($"ValidationFraction needs at least two training rows with tokens or steps; there are {Count}.");
            var heldOut = new HashSet<int>(HeldOut(Count, fraction, seed));
            var train = new Rows(Which) { Skipped = Skipped };
            var validation = new Rows("held-out validation");
            for (int i = 0; i < Count; i++)
            {
                var target = heldOut.Contains(i) ? validation : train;
                if (Tokens.Count > 0) target.Tokens.Add(Tokens[i]); else target.Values.Add(Values[i]);
                target.Labels.Add(Labels[i]);
            }
            return (train, validation);
        }

        public SequenceDataset ToDataset(InputLayout layout) =>
            layout.Tokens ? SequenceDataset.FromTokens(Tokens, Labels) : SequenceDataset.FromValues(Values, layout.FeaturesPerStep, Labels);

        /// <summary>The training loss of a model that ignores the sequences and predicts the labels' distribution (or mean); null when it is 0.</summary>
        public double? ConstantPredictorLoss(SequenceTaskKind task, int classes)
        {
            double loss;
            if (task == SequenceTaskKind.Regression)
            {
                double mean = Labels.Average(x => (double)x);
                loss = Labels.Average(x => (x - mean) * (x - mean));
            }
            else
            {
                var counts = new double[Math.Max(2, classes)];
                foreach (float y in Labels) counts[(int)y]++;
                loss = -counts.Where(c => c > 0).Sum(c => c / Count * Math.Log(c / Count));
            }
            return loss > 1e-9 ? loss : null;
        }
    }

    /// <summary>Which of <paramref name="count"/> rows (with tokens or steps, in data order) a seed holds out, ascending.</summary>
    internal static int[] HeldOut(int count, float fraction, int seed)
    {
        int held = Math.Clamp((int)Math.Round(fraction * count), 1, count - 1);
        var order = Enumerable.Range(0, count).ToArray();
        new Random(unchecked(seed * 31 + 17)).Shuffle(order);
        return [.. order.Take(held).Order()];
    }

    // Labels as floats: binary 0/1, multiclass key − 1 (NaN when missing), regression as is.
    static Func<float> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column column, SequenceTaskKind task)
    {
        switch (task)
        {
            case SequenceTaskKind.BinaryClassification:
            {
                var g = cursor.GetGetter<bool>(column); bool v = false;
                return () => { g(ref v); return v ? 1f : 0f; };
            }
            case SequenceTaskKind.MulticlassClassification:
            {
                var g = cursor.GetGetter<uint>(column); uint v = 0;
                return () => { g(ref v); return v == 0 ? float.NaN : v - 1; };
            }
            default:
            {
                var g = cursor.GetGetter<float>(column); float v = 0;
                return () => { g(ref v); return v; };
            }
        }
    }

    /// <summary>
    /// The stock transforms that carry a trained model (see design: persistence through Model.Save): a constant
    /// key, the model text from a value mapping, the input under a fixed name, the row mapping of the (input kind,
    /// output kind) pair, and for multiclass the scalar class probabilities renamed to the class names and
    /// concatenated into <c>Score</c> (so its slot names are the class names) and the predicted class as a key.
    /// <paramref name="taken"/> are the column names of the input, which a class name must not take.
    /// </summary>
    public static IEstimator<ITransformer> Chain(MLContext ml, string featureColumn, bool tokens, SequenceTaskKind task, string blob,
        IReadOnlyList<string> classNames, IReadOnlySet<string> taken)
    {
        var t = ml.Transforms;
        var helpers = new List<string> { DeepSeqColumns.Key, DeepSeqColumns.Model, DeepSeqColumns.Input };
        var chain = t.CustomMapping(new KeyFactory().GetMapping(), KeyFactory.ContractName)
            .Append(t.Conversion.MapValue(DeepSeqColumns.Model, [new KeyValuePair<string, string>("m", blob)], DeepSeqColumns.Key))
            .Append(tokens
                ? (IEstimator<ITransformer>)t.Conversion.ConvertType(DeepSeqColumns.Input, featureColumn, DataKind.UInt32) // key → its id
                : t.CopyColumns(DeepSeqColumns.Input, featureColumn))
            .Append(tokens ? RowMappingOf<TokenIdsInput>(ml, task, classNames.Count) : RowMappingOf<NumericStepsInput>(ml, task, classNames.Count));
        if (task != SequenceTaskKind.MulticlassClassification) return chain.Append(t.DropColumns([.. helpers]));

        var columns = ClassColumnNames(classNames, taken);
        var keyData = ml.Data.LoadFromEnumerable(classNames.Select(n => new ClassName { Name = n }));
        helpers.AddRange(Enumerable.Range(0, Capacity(classNames.Count)).Select(DeepSeqColumns.Probability));
        helpers.AddRange(columns);
        helpers.Add(DeepSeqColumns.PredictedName);
        return chain
            .Append(t.Conversion.ConvertType([.. columns.Select((c, i) => new InputOutputColumnPair(c, DeepSeqColumns.Probability(i)))], DataKind.Single))
            .Append(t.Concatenate("Score", columns))
            .Append(t.Conversion.MapValueToKey("PredictedLabel", DeepSeqColumns.PredictedName, keyData: keyData))
            .Append(t.DropColumns([.. helpers]));
    }

    static int Capacity(int classes) =>
        classes <= ClassProbabilities16.Capacity ? ClassProbabilities16.Capacity : classes <= ClassProbabilities128.Capacity ? ClassProbabilities128.Capacity : ClassProbabilities1023.Capacity;

    // One generic row mapping per (input kind, output kind); the output kind follows the task (and the class count).
    static IEstimator<ITransformer> RowMappingOf<TInput>(MLContext ml, SequenceTaskKind task, int classes) where TInput : class, IRowInput, new() =>
        task switch
        {
            SequenceTaskKind.BinaryClassification => RowMappingOf<TInput, BinaryScores>(ml),
            SequenceTaskKind.Regression => RowMappingOf<TInput, RegressionValue>(ml),
            _ => Capacity(classes) switch
            {
                ClassProbabilities16.Capacity => RowMappingOf<TInput, ClassProbabilities16>(ml),
                ClassProbabilities128.Capacity => RowMappingOf<TInput, ClassProbabilities128>(ml),
                _ => RowMappingOf<TInput, ClassProbabilities1023>(ml),
            },
        };

    static IEstimator<ITransformer> RowMappingOf<TInput, TOutput>(MLContext ml) where TInput : class, IRowInput, new() where TOutput : class, IRowOutput, new()
        => ml.Transforms.CustomMapping(RowMapping<TInput, TOutput>.Action, RowMapping<TInput, TOutput>.ContractName);

    /// <summary>
    /// The column name each class's probability takes before the concatenation into Score, which makes it that
    /// slot's name: the class name itself, unless it is empty, repeated, or the name of an input or output
    /// column (which the chain's final drop would remove) — then with a suffix.
    /// </summary>
    internal static string[] ClassColumnNames(IReadOnlyList<string> classNames, IReadOnlySet<string> taken)
    {
        var used = new HashSet<string>(taken, StringComparer.Ordinal) { "Score", "PredictedLabel", "AttentionWeights" };
        var result = new string[classNames.Count];
        for (int i = 0; i < result.Length; i++)
        {
            string name = classNames[i].Length == 0 ? "(empty)" : classNames[i].StartsWith("__DeepSeq_", StringComparison.Ordinal) ? "class " + classNames[i] : classNames[i];
            string candidate = name;
            for (int n = 2; !used.Add(candidate); n++) candidate = $"{name} (class{(n == 2 ? "" : $" {n - 1}")})";
            result[i] = candidate;
        }
        return result;
    }

    /// <summary>Logs each epoch to the ML.NET channel and forwards every report to the user's callback.</summary>
    sealed class LoggingProgress(IChannel channel, IProgress<SequenceTrainingProgress>? user) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Batch == p.Batches)
                channel.Info(MessageSensitivity.None,
                    $"Epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}" +
                    (p.ValidationLoss is double vl ? $", validation loss {vl:F4}, metric {p.ValidationMetric:F4}" : "") +
                    $", {p.SequencesPerSecond:F0} sequences/s, elapsed {p.Elapsed:hh\\:mm\\:ss}");
            user?.Report(CoreMapping.Progress(p));
        }
    }
}
