using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet.Transforms;

/// <summary>Names of the helper columns of a DeepSeq transformer chain; they are dropped at its end.</summary>
public static class DeepSeqColumns
{
    /// <summary>The constant key under which the value mapping stores the model.</summary>
    public const string Key = "__DeepSeq_Key";
    /// <summary>The serialised model (text), one shared string for all rows.</summary>
    public const string Model = "__DeepSeq_Model";
    /// <summary>The input sequence, copied or converted from the user's column (CustomMapping binds fixed names).</summary>
    public const string Input = "__DeepSeq_Input";
    /// <summary>The predicted class name, before it becomes a key.</summary>
    public const string PredictedName = "__DeepSeq_PredictedName";
    /// <summary>Multiclass probabilities come in chunks of 1, 2, 4 … 512 values, concatenated into a Score of exactly K values.</summary>
    public static string ScoreChunk(int size) => $"__DeepSeq_S{size}";
    /// <summary>The chunk sizes available: any K up to 1023 is a sum of distinct ones.</summary>
    public static readonly int[] ChunkSizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    /// <summary>The most classes a multiclass model can have.</summary>
    public const int MaxClasses = 1023;
}

#pragma warning disable CS1591 // The row classes below are plumbing for CustomMapping; their columns are documented on DeepSeqColumns.
public sealed class NoInput { }
public sealed class KeyOutput { [ColumnName(DeepSeqColumns.Key)] public string Key = ""; }

public sealed class TokenSequenceInput
{
    [ColumnName(DeepSeqColumns.Input), VectorType] public VBuffer<uint> Input;
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;
}

public sealed class ValueSequenceInput
{
    [ColumnName(DeepSeqColumns.Input), VectorType] public VBuffer<float> Input;
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;
}

public sealed class BinaryOutput
{
    public float Score;
    public float Probability;
    public bool PredictedLabel;
    [VectorType] public VBuffer<float> AttentionWeights;
}

public sealed class RegressionOutput
{
    public float Score;
    [VectorType] public VBuffer<float> AttentionWeights;
}

public sealed class MulticlassOutput
{
    [ColumnName("__DeepSeq_S1"), VectorType(1)] public VBuffer<float> S1;
    [ColumnName("__DeepSeq_S2"), VectorType(2)] public VBuffer<float> S2;
    [ColumnName("__DeepSeq_S4"), VectorType(4)] public VBuffer<float> S4;
    [ColumnName("__DeepSeq_S8"), VectorType(8)] public VBuffer<float> S8;
    [ColumnName("__DeepSeq_S16"), VectorType(16)] public VBuffer<float> S16;
    [ColumnName("__DeepSeq_S32"), VectorType(32)] public VBuffer<float> S32;
    [ColumnName("__DeepSeq_S64"), VectorType(64)] public VBuffer<float> S64;
    [ColumnName("__DeepSeq_S128"), VectorType(128)] public VBuffer<float> S128;
    [ColumnName("__DeepSeq_S256"), VectorType(256)] public VBuffer<float> S256;
    [ColumnName("__DeepSeq_S512"), VectorType(512)] public VBuffer<float> S512;
    [ColumnName(DeepSeqColumns.PredictedName)] public string PredictedName = "";
    [VectorType] public VBuffer<float> AttentionWeights;

    // Fills the chunks that make up K (ascending sizes, in the order they are concatenated); the rest stay empty.
    internal void SetProbabilities(ReadOnlySpan<float> p)
    {
        int k = p.Length, offset = 0;
        foreach (int size in DeepSeqColumns.ChunkSizes)
        {
            VBuffer<float> chunk;
            if ((k & size) != 0) { chunk = new VBuffer<float>(size, p.Slice(offset, size).ToArray()); offset += size; }
            else chunk = new VBuffer<float>(size, 0, [], []);
            switch (size)
            {
                case 1: S1 = chunk; break; case 2: S2 = chunk; break; case 4: S4 = chunk; break; case 8: S8 = chunk; break;
                case 16: S16 = chunk; break; case 32: S32 = chunk; break; case 64: S64 = chunk; break; case 128: S128 = chunk; break;
                case 256: S256 = chunk; break; default: S512 = chunk; break;
            }
        }
    }
}

[CustomMappingFactoryAttribute("DeepSeq.Const.v1")]
public sealed class KeyFactory : CustomMappingFactory<NoInput, KeyOutput>
{
    public override Action<NoInput, KeyOutput> GetMapping() => (_, o) => o.Key = "m";
}

[CustomMappingFactoryAttribute("DeepSeq.TokensBinary.v1")]
public sealed class TokensBinaryFactory : CustomMappingFactory<TokenSequenceInput, BinaryOutput>
{
    public override Action<TokenSequenceInput, BinaryOutput> GetMapping() => (i, o) => SequenceRows.Binary(SequenceRows.Run(i.Model, i.Input, default), o);
}

[CustomMappingFactoryAttribute("DeepSeq.TokensMulticlass.v1")]
public sealed class TokensMulticlassFactory : CustomMappingFactory<TokenSequenceInput, MulticlassOutput>
{
    public override Action<TokenSequenceInput, MulticlassOutput> GetMapping() => (i, o) => SequenceRows.Multiclass(SequenceRows.Run(i.Model, i.Input, default), o);
}

[CustomMappingFactoryAttribute("DeepSeq.TokensRegression.v1")]
public sealed class TokensRegressionFactory : CustomMappingFactory<TokenSequenceInput, RegressionOutput>
{
    public override Action<TokenSequenceInput, RegressionOutput> GetMapping() => (i, o) => SequenceRows.Regression(SequenceRows.Run(i.Model, i.Input, default), o);
}

[CustomMappingFactoryAttribute("DeepSeq.ValuesBinary.v1")]
public sealed class ValuesBinaryFactory : CustomMappingFactory<ValueSequenceInput, BinaryOutput>
{
    public override Action<ValueSequenceInput, BinaryOutput> GetMapping() => (i, o) => SequenceRows.Binary(SequenceRows.Run(i.Model, default, i.Input), o);
}

[CustomMappingFactoryAttribute("DeepSeq.ValuesMulticlass.v1")]
public sealed class ValuesMulticlassFactory : CustomMappingFactory<ValueSequenceInput, MulticlassOutput>
{
    public override Action<ValueSequenceInput, MulticlassOutput> GetMapping() => (i, o) => SequenceRows.Multiclass(SequenceRows.Run(i.Model, default, i.Input), o);
}

[CustomMappingFactoryAttribute("DeepSeq.ValuesRegression.v1")]
public sealed class ValuesRegressionFactory : CustomMappingFactory<ValueSequenceInput, RegressionOutput>
{
    public override Action<ValueSequenceInput, RegressionOutput> GetMapping() => (i, o) => SequenceRows.Regression(SequenceRows.Run(i.Model, default, i.Input), o);
}
#pragma warning restore CS1591

/// <summary>One row's prediction: raw outputs, the model that made them, and the attention weights per step.</summary>
internal readonly record struct RowPrediction(LoadedModel Model, float[] Outputs, float[] Attention);

/// <summary>A decoded model shared by all rows, with a pool of model instances (one in use per thread at a time).</summary>
internal sealed class LoadedModel(SavedSequenceModel saved)
{
    readonly ConcurrentBag<(SequenceModel Model, SequenceBatch Batch)> _pool = [];
    public SavedSequenceModel Saved { get; } = saved;

    public RowPrediction Predict(ReadOnlySpan<uint> tokens, ReadOnlySpan<float> values)
    {
        var s = Saved;
        if (!_pool.TryTake(out var item)) item = (s.CreateModel(), new SequenceBatch());
        try
        {
            var (model, batch) = item;
            bool isTokens = s.Config.VocabularySize > 0;
            int f = s.FeaturesPerStep, length = isTokens ? tokens.Length : values.Length / f;
            if (length == 0) throw new InvalidOperationException("The input sequence is empty: a DeepSeq model needs at least one token or step.");
            if (!isTokens && values.Length % f != 0)
                throw new InvalidOperationException($"The input has {values.Length} values, not a multiple of the {f} features per step the model was trained with.");
            var (used, skip) = SequenceBatch.Cut(length, s.MaxLength, s.KeepEnd);
            batch.Reset(used, 1, isTokens ? 0 : f);
            if (isTokens)
            {
                var ids = new int[used];
                for (int t = 0; t < used; t++)
                {
                    uint key = tokens[skip + t];
                    if (key >= s.Config.VocabularySize)
                        throw new InvalidOperationException($"Token key {key} is outside the model's vocabulary (1…{s.Config.VocabularySize - 1}); the input must come from the same MapValueToKey as in training.");
                    ids[t] = (int)key;
                }
                batch.SetTokens(0, ids);
            }
            else
            {
                var src = values.Slice(skip * f, used * f);
                if (!SequenceRows.AllFinite(src))
                    throw new InvalidOperationException("The input sequence contains NaN or infinite values.");
                batch.SetValues(0, src);
            }
            var outputs = new float[s.Config.Outputs];
            model.Forward(outputs, batch, training: false);
            var attention = model.AttentionWeights.ToArray();
            return new RowPrediction(this, outputs, attention);
        }
        finally { _pool.Add(item); }
    }

}

/// <summary>The row functions behind the CustomMapping factories.</summary>
internal static class SequenceRows
{
    // Decoded once per model string: ValueMapping hands every row the same string instance.
    static readonly ConditionalWeakTable<string, LoadedModel> s_models = new();

    public static LoadedModel Resolve(ReadOnlyMemory<char> blob)
    {
        if (MemoryMarshal.TryGetString(blob, out string? text, out int start, out int length) && start == 0 && length == text.Length)
            return s_models.GetValue(text, t => new LoadedModel(ModelFormat.Read(t)));
        return new LoadedModel(ModelFormat.Read(blob.Span)); // not string-backed: correct, but decoded per row
    }

    /// <summary>True when no value is NaN or infinite (training reads and row scoring share the rule).</summary>
    public static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float x in values) if (!float.IsFinite(x)) return false;
        return true;
    }

    public static RowPrediction Run(ReadOnlyMemory<char> blob, in VBuffer<uint> tokens, in VBuffer<float> values)
    {
        var model = Resolve(blob);
        return model.Predict(Dense(tokens), Dense(values));
    }

    static ReadOnlySpan<T> Dense<T>(in VBuffer<T> v)
    {
        if (v.Length == 0) return default;
        if (v.IsDense) return v.GetValues();
        var dense = new T[v.Length];
        v.CopyTo(dense);
        return dense;
    }

    public static void Binary(RowPrediction p, BinaryOutput o)
    {
        Span<float> probability = stackalloc float[1];
        SequenceTrainer.OutputsFromLogits(SequenceTask.BinaryClassification, p.Outputs, probability);
        o.Score = p.Outputs[0];
        o.Probability = probability[0];
        o.PredictedLabel = p.Outputs[0] > 0;
        o.AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }

    public static void Regression(RowPrediction p, RegressionOutput o)
    {
        o.Score = p.Outputs[0];
        o.AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }

    public static void Multiclass(RowPrediction p, MulticlassOutput o)
    {
        var probabilities = new float[p.Outputs.Length];
        SequenceTrainer.OutputsFromLogits(SequenceTask.MulticlassClassification, p.Outputs, probabilities);
        o.SetProbabilities(probabilities);
        o.PredictedName = p.Model.Saved.ClassNames[System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities)];
        o.AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }
}
