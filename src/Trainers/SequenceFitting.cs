using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace DeepSeq.MLNet;

/// <summary>What the three sequence trainers share: schema checks, reading rows, training, and the transformer chain.</summary>
internal static class SequenceFitting
{
    sealed class ClassName { public string Name = ""; }

    static string ExpectedLabel(SequenceTask task) => task switch
    {
        SequenceTask.BinaryClassification => "Boolean",
        SequenceTask.MulticlassClassification => "Key",
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

    static bool LabelFits(SequenceTask task, DataViewType? itemType, bool isKey) => task switch
    {
        SequenceTask.BinaryClassification => itemType is BooleanDataViewType,
        SequenceTask.MulticlassClassification => isKey,
        _ => !isKey && itemType is NumberDataViewType && itemType.RawType == typeof(float),
    };

    /// <summary>Checks the columns of a schema; returns true for token input, false for numeric input.</summary>
    public static bool CheckSchema(DataViewSchema schema, SequenceOptions o, SequenceTask task, bool needLabel)
    {
        var feature = schema.GetColumnOrNull(o.FeatureColumnName) ?? throw Missing("feature", o.FeatureColumnName);
        var itemType = (feature.Type as VectorDataViewType)?.ItemType;
        bool tokens = FeatureKind(itemType, itemType is KeyDataViewType, feature.Type is VectorDataViewType)
            ?? throw Mismatch("feature", o.FeatureColumnName, ExpectedFeature, feature.Type.ToString() ?? "");
        if (needLabel)
        {
            var label = schema.GetColumnOrNull(o.LabelColumnName) ?? throw Missing("label", o.LabelColumnName);
            if (label.Type is VectorDataViewType || !LabelFits(task, label.Type, label.Type is KeyDataViewType))
                throw Mismatch("label", o.LabelColumnName, ExpectedLabel(task), label.Type.ToString() ?? "");
        }
        return tokens;
    }

    /// <summary>The output shape, from the same chain of stock estimators the trained model uses.</summary>
    public static SchemaShape OutputShape(MLContext ml, SchemaShape input, SequenceOptions o, SequenceTask task)
    {
        if (!TryFind(input, o.FeatureColumnName, out var feature)) throw Missing("feature", o.FeatureColumnName);
        bool tokens = FeatureKind(feature.ItemType, feature.IsKey, feature.Kind is SchemaShape.Column.VectorKind.Vector or SchemaShape.Column.VectorKind.VariableVector)
            ?? throw Mismatch("feature", o.FeatureColumnName, ExpectedFeature, feature.ItemType?.ToString() ?? "");
        if (TryFind(input, o.LabelColumnName, out var label)
            && (label.Kind != SchemaShape.Column.VectorKind.Scalar || !LabelFits(task, label.ItemType, label.IsKey)))
            throw Mismatch("label", o.LabelColumnName, ExpectedLabel(task), label.ItemType?.ToString() ?? "");
        return Chain(ml, o.FeatureColumnName, tokens, task, ModelFormat.Prefix, ["a", "b"]).GetOutputSchema(input);
    }

    static bool TryFind(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        foreach (var c in shape)
            if (c.Name == name) { column = c; return true; }
        column = default;
        return false;
    }

    /// <summary>Reads, trains, and wraps the trained model in its transformer chain.</summary>
    public static SequenceModelTransformer Fit(MLContext ml, IDataView data, SequenceOptions o, SequenceTask task, string component)
    {
        ArgumentNullException.ThrowIfNull(data);
        o.Validate();
        var host = ((IHostEnvironment)ml).Register(component);
        using var ch = host.Start("Training");
        bool tokens = CheckSchema(data.Schema, o, task, needLabel: true);
        if (o.ValidationData is not null && CheckSchema(o.ValidationData.Schema, o, task, needLabel: true) != tokens)
            throw new ArgumentException("The validation data's feature column has a different type from the training data's.", nameof(o.ValidationData));

        var featureType = (VectorDataViewType)data.Schema[o.FeatureColumnName].Type;
        int vocabulary = tokens ? checked((int)((KeyDataViewType)featureType.ItemType).Count + 1) : 0; // keys 1…V; 0 = unknown
        var classNames = task == SequenceTask.MulticlassClassification ? ClassNames(data.Schema[o.LabelColumnName]) : [];
        if (task == SequenceTask.MulticlassClassification && (classNames.Length < 2 || classNames.Length > DeepSeqColumns.MaxClasses))
            throw new ArgumentOutOfRangeException("inputSchema", $"The label column '{o.LabelColumnName}' has {classNames.Length} classes; a DeepSeq multiclass model supports 2 to {DeepSeqColumns.MaxClasses}.");

        var train = Read(data, o, task, tokens, "training");
        var validation = o.ValidationData is null ? null : Read(o.ValidationData, o, task, tokens, "validation");
        int outputs = task == SequenceTask.MulticlassClassification ? classNames.Length : 1;
        var config = new SequenceModelConfig
        {
            VocabularySize = vocabulary, EmbeddingSize = o.EmbeddingSize, FeatureSize = tokens ? 0 : o.FeaturesPerStep,
            Cell = o.CellSpec(), HiddenSize = o.HiddenSize, Layers = o.Layers, Bidirectional = o.Bidirectional, Merge = o.Merge,
            Pooling = o.Pooling, AttentionSize = o.AttentionSize, Dropout = o.Dropout, Outputs = outputs,
        };
        int seed = o.Seed ?? host.Rand.Next();
        var model = new SequenceModel(config, seed);
        model.Initialize(new Random(seed), o.Initializer, o.UnitForgetBias);
        ch.Info(MessageSensitivity.None, $"Training a {(o.Bidirectional ? "bidirectional " : "")}{o.Cell} ({o.Layers}×{o.HiddenSize}, {model.Parameters.Sum(p => p.Value.Length):N0} weights) on {train.Count:N0} sequences" +
            (validation is null ? "" : $", validating on {validation.Count:N0}") + $", {o.Epochs} epochs.");

        var progress = new LoggingProgress(ch, o.Progress);
        var report = SequenceTrainer.Train(model, task, train, validation, o.TrainingOptions(seed, progress));
        if (report.Divergence is not null) ch.Warning(MessageSensitivity.None, report.Divergence);
        if (report.Cancelled) ch.Warning(MessageSensitivity.None, $"Training was cancelled; kept the weights of epoch {report.BestEpoch}.");
        if (report.BestEpoch == 0)
            throw new InvalidOperationException(report.Divergence ?? "Training stopped before completing an epoch; no weights to keep.");
        ch.Info(MessageSensitivity.None, $"Kept the weights of epoch {report.BestEpoch}; training took {report.Duration:hh\\:mm\\:ss}.");

        var blob = ModelFormat.Write(SavedSequenceModel.From(model, task, classNames, o.MaxLength, o.KeepEnd, tokens ? 1 : o.FeaturesPerStep));
        var chain = Chain(ml, o.FeatureColumnName, tokens, task, blob, classNames).Fit(data);
        return new SequenceModelTransformer(chain, task, config, report, classNames);
    }

    static string[] ClassNames(DataViewSchema.Column label)
    {
        int count = checked((int)((KeyDataViewType)label.Type).Count);
        var names = Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (label.Annotations.Schema.GetColumnOrNull("KeyValues") is { } kv && kv.Type is VectorDataViewType { ItemType: TextDataViewType })
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            label.Annotations.GetValue("KeyValues", ref values);
            var dense = values.DenseValues().ToArray();
            for (int i = 0; i < Math.Min(count, dense.Length); i++) names[i] = dense[i].ToString();
        }
        return names;
    }

    static SequenceDataset Read(IDataView data, SequenceOptions o, SequenceTask task, bool tokens, string which)
    {
        var labelColumn = data.Schema[o.LabelColumnName];
        var featureColumn = data.Schema[o.FeatureColumnName];
        var labels = new List<float>();
        var tokenRows = new List<int[]>();
        var valueRows = new List<float[]>();
        using var cursor = data.GetRowCursor([labelColumn, featureColumn]);
        var labelGetter = LabelGetter(cursor, labelColumn, task);
        var tokenGetter = tokens ? cursor.GetGetter<VBuffer<uint>>(featureColumn) : null;
        var valueGetter = tokens ? null : cursor.GetGetter<VBuffer<float>>(featureColumn);
        VBuffer<uint> keyBuffer = default; VBuffer<float> valueBuffer = default;
        long row = 0;
        while (cursor.MoveNext())
        {
            float label = labelGetter();
            if (float.IsNaN(label)) throw new InvalidOperationException($"Row {row} of the {which} data has a missing label in column '{o.LabelColumnName}'.");
            if (task == SequenceTask.Regression && !float.IsFinite(label))
                throw new InvalidOperationException($"Row {row} of the {which} data has an infinite label in column '{o.LabelColumnName}'.");
            if (tokens)
            {
                tokenGetter!(ref keyBuffer);
                if (keyBuffer.Length == 0) throw new InvalidOperationException($"Row {row} of the {which} data has an empty sequence in column '{o.FeatureColumnName}'; every sequence needs at least one token.");
                var ids = new int[keyBuffer.Length];
                int k = 0;
                foreach (uint key in keyBuffer.DenseValues()) ids[k++] = (int)key;
                tokenRows.Add(ids);
            }
            else
            {
                valueGetter!(ref valueBuffer);
                var values = valueBuffer.DenseValues().ToArray();
                if (values.Length == 0) throw new InvalidOperationException($"Row {row} of the {which} data has an empty sequence in column '{o.FeatureColumnName}'; every sequence needs at least one step.");
                if (values.Length % o.FeaturesPerStep != 0)
                    throw new InvalidOperationException($"Row {row} of the {which} data has {values.Length} values in column '{o.FeatureColumnName}', not a multiple of FeaturesPerStep = {o.FeaturesPerStep}.");
                if (!SequenceRows.AllFinite(values))
                    throw new InvalidOperationException($"Row {row} of the {which} data has a NaN or infinite value in column '{o.FeatureColumnName}'.");
                valueRows.Add(values);
            }
            labels.Add(label);
            row++;
        }
        if (row == 0) throw new InvalidOperationException($"The {which} data has no rows.");
        return tokens ? SequenceDataset.FromTokens(tokenRows, labels) : SequenceDataset.FromValues(valueRows, o.FeaturesPerStep, labels);
    }

    // Labels as floats: binary 0/1, multiclass key − 1 (NaN when missing), regression as is.
    static Func<float> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column column, SequenceTask task)
    {
        switch (task)
        {
            case SequenceTask.BinaryClassification:
            {
                var g = cursor.GetGetter<bool>(column); bool v = false;
                return () => { g(ref v); return v ? 1f : 0f; };
            }
            case SequenceTask.MulticlassClassification:
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

    /// <summary>The stock transforms that carry a trained model (see design: persistence through Model.Save).</summary>
    public static IEstimator<ITransformer> Chain(MLContext ml, string featureColumn, bool tokens, SequenceTask task, string blob, IReadOnlyList<string> classNames)
    {
        var t = ml.Transforms;
        var helpers = new List<string> { DeepSeqColumns.Key, DeepSeqColumns.Model, DeepSeqColumns.Input };
        IEstimator<ITransformer> model = (task, tokens) switch
        {
            (SequenceTask.BinaryClassification, true) => t.CustomMapping(new TokensBinaryFactory().GetMapping(), "DeepSeq.TokensBinary.v1"),
            (SequenceTask.MulticlassClassification, true) => t.CustomMapping(new TokensMulticlassFactory().GetMapping(), "DeepSeq.TokensMulticlass.v1"),
            (_, true) => t.CustomMapping(new TokensRegressionFactory().GetMapping(), "DeepSeq.TokensRegression.v1"),
            (SequenceTask.BinaryClassification, false) => t.CustomMapping(new ValuesBinaryFactory().GetMapping(), "DeepSeq.ValuesBinary.v1"),
            (SequenceTask.MulticlassClassification, false) => t.CustomMapping(new ValuesMulticlassFactory().GetMapping(), "DeepSeq.ValuesMulticlass.v1"),
            _ => t.CustomMapping(new ValuesRegressionFactory().GetMapping(), "DeepSeq.ValuesRegression.v1"),
        };
        var chain = t.CustomMapping(new KeyFactory().GetMapping(), "DeepSeq.Const.v1")
            .Append(t.Conversion.MapValue(DeepSeqColumns.Model, [new KeyValuePair<string, string>("m", blob)], DeepSeqColumns.Key))
            .Append(tokens
                ? (IEstimator<ITransformer>)t.Conversion.ConvertType(DeepSeqColumns.Input, featureColumn, DataKind.UInt32) // key → its id
                : t.CopyColumns(DeepSeqColumns.Input, featureColumn))
            .Append(model);
        if (task == SequenceTask.MulticlassClassification)
        {
            // Score: exactly K probabilities, from the chunks whose sizes add up to K; PredictedLabel: a key with the label's values.
            var chunks = DeepSeqColumns.ChunkSizes.Select(DeepSeqColumns.ScoreChunk).ToList();
            var used = DeepSeqColumns.ChunkSizes.Where(s => (classNames.Count & s) != 0).Select(DeepSeqColumns.ScoreChunk).ToArray();
            var keyData = ml.Data.LoadFromEnumerable(classNames.Select(n => new ClassName { Name = n }));
            helpers.AddRange(chunks);
            helpers.Add(DeepSeqColumns.PredictedName);
            return chain.Append(t.Concatenate("Score", used))
                .Append(t.Conversion.MapValueToKey("PredictedLabel", DeepSeqColumns.PredictedName, keyData: keyData))
                .Append(t.DropColumns([.. helpers]));
        }
        return chain.Append(t.DropColumns([.. helpers]));
    }

    /// <summary>Logs each epoch to the ML.NET channel and forwards every report to the user's callback.</summary>
    sealed class LoggingProgress(IChannel channel, IProgress<TrainingProgress>? user) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Batch == p.Batches)
                channel.Info(MessageSensitivity.None,
                    $"Epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}" +
                    (p.ValidationLoss is double vl ? $", validation loss {vl:F4}, metric {p.ValidationMetric:F4}" : "") +
                    $", {p.SequencesPerSecond:F0} sequences/s, elapsed {p.Elapsed:hh\\:mm\\:ss}");
            user?.Report(p);
        }
    }
}
