using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Kernels;
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
        var row = new ScoringRow();
        Read(row, tokens, values);
        if (!row.IsMissing) PredictBlock(new Span<ScoringRow>(ref row));
        return row.Prediction;
    }

    /// <summary>
    /// Checks a row and keeps the part the model reads (cut to its maximum length) in <paramref name="row"/>, or
    /// marks it missing (no tokens or steps, a NaN or infinite value) with its prediction set.
    /// </summary>
    /// <exception cref="InvalidOperationException">A token key outside the vocabulary, or values that are not whole steps.</exception>
    public void Read(ScoringRow row, ReadOnlySpan<uint> tokens, ReadOnlySpan<float> values)
    {
        var s = Saved;
        bool isTokens = s.Config.VocabularySize > 0;
        int f = s.FeaturesPerStep;
        if (!isTokens && values.Length % f != 0)
            throw new InvalidOperationException($"The input has {values.Length} values, not a multiple of the {f} features per step the model was trained with.");
        int length = isTokens ? tokens.Length : values.Length / f;
        row.IsMissing = length == 0 || (!isTokens && !RowScoring.AllFinite(values));
        if (row.IsMissing) { row.Prediction = RowPrediction.Missing(s.Config.Outputs, s.ClassNames); return; }

        var (used, skip) = SequenceBatch.Cut(length, s.MaxLength, s.KeepEnd);
        row.Length = used;
        if (isTokens)
        {
            if (row.Tokens.Length < used) row.Tokens = new int[Math.Max(used, 2 * row.Tokens.Length)];
            for (int t = 0; t < used; t++)
            {
                uint key = tokens[skip + t];
                if (key >= s.Config.VocabularySize)
                    throw new InvalidOperationException($"Token key {key} is outside the model's vocabulary (1…{s.Config.VocabularySize - 1}); the input must come from the same MapValueToKey as in training.");
                row.Tokens[t] = (int)key;
            }
        }
        else
        {
            if (row.Values.Length < used * f) row.Values = new float[Math.Max(used * f, 2 * row.Values.Length)];
            values.Slice(skip * f, used * f).CopyTo(row.Values);
        }
    }

    /// <summary>Rows scored in one batch: enough for the recurrent products to run at full speed on each core.</summary>
    public const int BatchRows = 64;

    /// <summary>
    /// Scores rows read by <see cref="Read"/> (none missing), each at its own length, and sets each row's
    /// prediction: in batches of up to <see cref="BatchRows"/> rows of similar lengths, so that few steps run
    /// with only a few rows left. <paramref name="rows"/> is left sorted by length, longest first.
    /// </summary>
    /// <remarks>
    /// With several batches and several threads (<see cref="Gemm.Threads"/>), the batches are shared out between
    /// threads, each scoring whole batches with every multiply on its own thread and its own model instance: the
    /// pooling, the head and each batch's setup then run beside the other thread's work instead of on one thread while
    /// the other waited, and the recurrent steps need no hand-off between cores. Each batch computes what it computes
    /// on one thread, so the scores do not change.
    /// </remarks>
    public void PredictBlock(Span<ScoringRow> rows)
    {
        rows.Sort(static (a, b) => b.Length.CompareTo(a.Length));
        int batches = (rows.Length + BatchRows - 1) / BatchRows, lanes = Math.Min(batches, Gemm.Threads), next = -1;
        if (lanes <= 1) { ScoreBatches(rows, ref next, batches); return; }
        var sorted = rows.ToArray();
        try
        {
            Parallel.For(0, lanes, new ParallelOptions { MaxDegreeOfParallelism = lanes }, _ => Gemm.Serially(() => ScoreBatches(sorted, ref next, batches)));
        }
        catch (AggregateException e) // a batch's error, raised as the one-thread path raises it
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    // Scores batches of the sorted rows on one model instance, claiming them one at a time (next: the last batch
    // claimed, shared by the lanes) until none is left.
    void ScoreBatches(Span<ScoringRow> rows, ref int next, int batches)
    {
        var item = Rent();
        try
        {
            for (int b; (b = Interlocked.Increment(ref next)) < batches;)
            {
                int start = b * BatchRows;
                PredictBatch(item.Model, item.Batch, rows.Slice(start, Math.Min(BatchRows, rows.Length - start)));
            }
        }
        finally { _pool.Add(item); }
    }

    void PredictBatch(SequenceModel model, SequenceBatch batch, ReadOnlySpan<ScoringRow> rows)
    {
        var s = Saved;
        int f = s.Config.VocabularySize > 0 ? 0 : s.FeaturesPerStep, count = rows.Length, steps = 0, k = s.Config.Outputs;
        foreach (var row in rows) steps = Math.Max(steps, row.Length);
        batch.Reset(steps, count, f);
        for (int r = 0; r < count; r++)
        {
            var row = rows[r];
            if (f == 0) batch.SetTokens(r, row.Tokens.AsSpan(0, row.Length));
            else batch.SetValues(r, row.Values.AsSpan(0, row.Length * f));
        }
        var outputs = new float[count * k];
        model.Forward(outputs, batch, training: false);
        var attention = model.AttentionWeights; // (T, B)
        for (int r = 0; r < count; r++)
        {
            float[] weights = attention.IsEmpty ? [] : new float[rows[r].Length];
            for (int t = 0; t < weights.Length; t++) weights[t] = attention[t * count + r];
            rows[r].Prediction = new RowPrediction(outputs.AsSpan(r * k, k).ToArray(), weights, s.ClassNames, IsMissing: false);
        }
    }
}

/// <summary>One row on its way through <see cref="LoadedModel"/>: its input as the model reads it, then its prediction.</summary>
internal sealed class ScoringRow
{
    /// <summary>Token ids (a token model), the first <see cref="Length"/> in use.</summary>
    public int[] Tokens = [];
    /// <summary>Steps × features values (a numeric model), the first <see cref="Length"/> steps in use.</summary>
    public float[] Values = [];
    /// <summary>Steps the model reads.</summary>
    public int Length;
    /// <summary>True when the row has nothing to score; its prediction is then already set.</summary>
    public bool IsMissing;
    /// <summary>The row's prediction, once scored.</summary>
    public RowPrediction Prediction;
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
