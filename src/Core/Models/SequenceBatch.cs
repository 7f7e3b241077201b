namespace DeepSeq.Core.Models;

/// <summary>
/// A batch of variable-length sequences, time-major and padded to <see cref="Steps"/>: token ids (T, B) for
/// models with an embedding, or features (T, B, F) for numeric sequences. Padding values are ignored.
/// </summary>
public sealed class SequenceBatch
{
    /// <summary>Creates an empty batch; fill it with <see cref="Reset"/>.</summary>
    public SequenceBatch() { }

    /// <summary>Padded length (T): the longest sequence in the batch.</summary>
    public int Steps { get; private set; }
    /// <summary>Sequences in the batch (B).</summary>
    public int Count { get; private set; }
    /// <summary>Features per step for numeric input (F); 0 for token input.</summary>
    public int Features { get; private set; }
    /// <summary>Length of each sequence, each in [1, T].</summary>
    public int[] Lengths { get; private set; } = [];
    /// <summary>(T, B) token ids, for token input.</summary>
    public int[] Tokens { get; private set; } = [];
    /// <summary>(T, B, F) features, for numeric input.</summary>
    public float[] Values { get; private set; } = [];

    /// <summary>Steps kept of a sequence of <paramref name="length"/> cut to <paramref name="maxLength"/>, and how many are skipped at its start.</summary>
    public static (int Used, int Skip) Cut(int length, int maxLength, bool keepEnd)
    {
        int used = Math.Min(length, maxLength);
        return (used, keepEnd ? length - used : 0);
    }

    /// <summary>Writes sequence <paramref name="row"/> (its length is that of <paramref name="tokens"/>, at most <see cref="Steps"/>).</summary>
    public void SetTokens(int row, ReadOnlySpan<int> tokens)
    {
        CheckRow(row, tokens.Length);
        Lengths[row] = tokens.Length;
        for (int t = 0; t < tokens.Length; t++) Tokens[t * Count + row] = tokens[t];
    }

    /// <summary>Writes sequence <paramref name="row"/> from steps × <see cref="Features"/> values.</summary>
    public void SetValues(int row, ReadOnlySpan<float> values)
    {
        int f = Features, steps = f == 0 ? 0 : values.Length / f;
        if (f == 0 || values.Length % f != 0) throw new ArgumentException($"Expected a multiple of {f} values, got {values.Length}.", nameof(values));
        CheckRow(row, steps);
        Lengths[row] = steps;
        for (int t = 0; t < steps; t++) values.Slice(t * f, f).CopyTo(Values.AsSpan((t * Count + row) * f, f));
    }

    void CheckRow(int row, int steps)
    {
        if ((uint)row >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(row), row, $"The batch has {Count} rows.");
        if (steps < 1 || steps > Steps) throw new ArgumentOutOfRangeException(nameof(steps), steps, $"A sequence needs 1 to {Steps} steps.");
    }

    /// <summary>Sizes the batch (reusing its arrays) and clears it; then write each row with <see cref="SetTokens"/> or <see cref="SetValues"/>.</summary>
    public void Reset(int steps, int count, int features)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(features);
        Steps = steps; Count = count; Features = features;
        if (Lengths.Length != count) Lengths = new int[count];
        if (features == 0)
        {
            if (Tokens.Length < steps * count) Tokens = new int[steps * count];
            Array.Clear(Tokens, 0, steps * count);
        }
        else
        {
            if (Values.Length < steps * count * features) Values = new float[steps * count * features];
            Array.Clear(Values, 0, steps * count * features);
        }
    }
}
