using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Models;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Transforms;

/// <summary>
/// One row's prediction as the output kinds read it, whatever the model family: the model's raw outputs (logits
/// or values), per-step attention weights, the class names, and whether the row had nothing to score.
/// </summary>
internal readonly record struct RowPrediction(float[] Outputs, float[] Attention, IReadOnlyList<string> ClassNames, bool IsMissing)
{
    /// <summary>A row with no tokens or steps, or with a NaN or infinite value: every output is NaN (a missing value).</summary>
    public static RowPrediction Missing(int outputs, IReadOnlyList<string> classNames)
    {
        var nan = new float[outputs];
        Array.Fill(nan, float.NaN);
        return new RowPrediction(nan, [], classNames, IsMissing: true);
    }
}

/// <summary>A decoded model shared by all rows, with a pool of model instances (one in use per thread at a time).</summary>
internal sealed class LoadedModel(SavedSequenceModel saved)
{
    // The per-word input projections replace the embedding and the first input GEMM at scoring; above this size
    // (V × G·H × D floats; the IMDB model's is 82 MB) the memory is not worth it and rows are scored the long way.
    const long MaxProjectionBytes = 256L << 20;
    readonly ConcurrentBag<(SequenceModel Model, SequenceBatch Batch)> _pool = [];
    object? _projectionLock;
    ProjectedEmbedding? _projection;
    bool _projectionBuilt;
    public SavedSequenceModel Saved { get; } = saved;

    (SequenceModel Model, SequenceBatch Batch) Rent()
    {
        if (_pool.TryTake(out var item)) return item;
        var model = Saved.CreateModel();
        model.Projection = SharedProjection(model);
        return (model, new SequenceBatch());
    }

    // Built once per loaded model, from its first instance, and shared by all: they hold the same weights.
    ProjectedEmbedding? SharedProjection(SequenceModel model) =>
        LazyInitializer.EnsureInitialized(ref _projection, ref _projectionBuilt, ref _projectionLock,
            () => model.Embedding is not null && ProjectedEmbedding.BytesFor(Saved.Config) <= MaxProjectionBytes ? ProjectedEmbedding.Build(model) : null);

    /// <summary>
    /// Scores token ids (a token model) or steps × features values (a numeric model). A row with no tokens or
    /// steps, or with a NaN or infinite value, is a missing value: <see cref="RowPrediction.Missing"/>.
    /// </summary>
    public RowPrediction Predict(ReadOnlySpan<uint> tokens, ReadOnlySpan<float> values)
    {
        var s = Saved;
        bool isTokens = s.Config.VocabularySize > 0;
        int f = s.FeaturesPerStep;
        if (!isTokens && values.Length % f != 0)
            throw new InvalidOperationException($"The input has {values.Length} values, not a multiple of the {f} features per step the model was trained with.");
        int length = isTokens ? tokens.Length : values.Length / f;
        if (length == 0 || (!isTokens && !RowScoring.AllFinite(values))) return RowPrediction.Missing(s.Config.Outputs, s.ClassNames);

        var item = Rent();
        try
        {
            var (model, batch) = item;
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
            else batch.SetValues(0, values.Slice(skip * f, used * f));
            var outputs = new float[s.Config.Outputs];
            model.Forward(outputs, batch, training: false);
            return new RowPrediction(outputs, model.AttentionWeights.ToArray(), s.ClassNames, IsMissing: false);
        }
        finally { _pool.Add(item); }
    }
}

/// <summary>What the input kinds share: the decoded-model cache and dense views of row vectors.</summary>
internal static class RowScoring
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

    public static ReadOnlySpan<T> Dense<T>(in VBuffer<T> v)
    {
        if (v.Length == 0) return default;
        if (v.IsDense) return v.GetValues();
        var dense = new T[v.Length];
        v.CopyTo(dense);
        return dense;
    }
}
