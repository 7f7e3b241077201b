namespace DeepSeq.Core.Models;

/// <summary>
/// Sequences with their labels, read once into packed arrays with offsets (no array per sequence): token ids or
/// numeric features of <see cref="FeatureSize"/> values per step.
/// </summary>
public sealed class SequenceDataset
{
    readonly int[] _offsets;  // (N + 1) start step of each sequence
    readonly int[] _tokens;   // all token ids back to back (token input)
    readonly float[] _values; // all steps' features back to back (numeric input)

    SequenceDataset(int[] offsets, int[] tokens, float[] values, int featureSize, float[] labels)
    {
        _offsets = offsets; _tokens = tokens; _values = values; FeatureSize = featureSize; Labels = labels;
        for (int i = 0; i < Count; i++)
            if (Length(i) < 1) throw new ArgumentException($"Sequence {i} is empty; every sequence needs at least one step.");
        if (labels.Length != Count) throw new ArgumentException($"{Count} sequences but {labels.Length} labels.");
    }

    /// <summary>Token sequences; labels are 0/1 (binary), class indices (multiclass) or targets (regression).</summary>
    public static SequenceDataset FromTokens(IReadOnlyList<int[]> sequences, IReadOnlyList<float> labels)
    {
        var offsets = new int[sequences.Count + 1];
        for (int i = 0; i < sequences.Count; i++) offsets[i + 1] = checked(offsets[i] + sequences[i].Length);
        var tokens = new int[offsets[^1]];
        for (int i = 0; i < sequences.Count; i++) sequences[i].CopyTo(tokens, offsets[i]);
        return new SequenceDataset(offsets, tokens, [], 0, [.. labels]);
    }

    /// <summary>Numeric sequences, each a flat array of steps × <paramref name="featureSize"/> values.</summary>
    public static SequenceDataset FromValues(IReadOnlyList<float[]> sequences, int featureSize, IReadOnlyList<float> labels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(featureSize, 1);
        var offsets = new int[sequences.Count + 1];
        for (int i = 0; i < sequences.Count; i++)
        {
            if (sequences[i].Length % featureSize != 0)
                throw new ArgumentException($"Sequence {i} has {sequences[i].Length} values, not a multiple of {featureSize} features per step.");
            offsets[i + 1] = checked(offsets[i] + sequences[i].Length / featureSize);
        }
        var values = new float[(long)offsets[^1] * featureSize];
        for (int i = 0; i < sequences.Count; i++) sequences[i].CopyTo(values, (long)offsets[i] * featureSize);
        return new SequenceDataset(offsets, [], values, featureSize, [.. labels]);
    }

    /// <summary>Number of sequences (N).</summary>
    public int Count => _offsets.Length - 1;
    /// <summary>Features per step for numeric input; 0 for tokens.</summary>
    public int FeatureSize { get; }
    /// <summary>One label per sequence.</summary>
    public float[] Labels { get; }
    /// <summary>Steps of sequence <paramref name="i"/>.</summary>
    public int Length(int i) => _offsets[i + 1] - _offsets[i];
    /// <summary>Token ids of sequence <paramref name="i"/>.</summary>
    public ReadOnlySpan<int> Tokens(int i) => _tokens.AsSpan(_offsets[i], Length(i));
    /// <summary>Features of sequence <paramref name="i"/>, steps × <see cref="FeatureSize"/>.</summary>
    public ReadOnlySpan<float> Values(int i) => _values.AsSpan(_offsets[i] * FeatureSize, Length(i) * FeatureSize);

    /// <summary>
    /// Fills <paramref name="batch"/> with the sequences <paramref name="indices"/>, each cut to at most
    /// <paramref name="maxLength"/> steps, keeping its start or (with <paramref name="keepEnd"/>) its end.
    /// </summary>
    public void Fill(SequenceBatch batch, ReadOnlySpan<int> indices, int maxLength, bool keepEnd)
    {
        int steps = 0;
        foreach (int i in indices) steps = Math.Max(steps, SequenceBatch.Cut(Length(i), maxLength, keepEnd).Used);
        batch.Reset(steps, indices.Length, FeatureSize);
        for (int k = 0; k < indices.Length; k++)
        {
            int i = indices[k];
            var (used, skip) = SequenceBatch.Cut(Length(i), maxLength, keepEnd);
            if (FeatureSize == 0) batch.SetTokens(k, Tokens(i).Slice(skip, used));
            else batch.SetValues(k, Values(i).Slice(skip * FeatureSize, used * FeatureSize));
        }
    }
}
