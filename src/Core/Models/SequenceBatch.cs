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

    /// <summary>Sizes the batch (reusing its arrays) and clears it; then write <see cref="Lengths"/> and the inputs.</summary>
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
