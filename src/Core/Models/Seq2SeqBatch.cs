namespace DeepSeq.Core.Models;

/// <summary>
/// A batch of (source, target) token sequences for teacher-forced training, time-major and padded with id 0:
/// source (S, B); the decoder's input [BOS, y₁ … yₙ] and expected output [y₁ … yₙ, EOS], both (T, B) with T the
/// longest target + 1. The source is stored as the model reads it (reversed or repeated when its configuration
/// says so: <see cref="Seq2SeqConfig.PrepareSource"/>).
/// </summary>
public sealed class Seq2SeqBatch
{
    /// <summary>Padded source length (S).</summary>
    public int SourceSteps { get; private set; }
    /// <summary>Padded decoder length (T): longest target + 1.</summary>
    public int TargetSteps { get; private set; }
    /// <summary>Pairs in the batch (B).</summary>
    public int Count { get; private set; }
    /// <summary>(S, B) source ids.</summary>
    public int[] Source { get; private set; } = [];
    /// <summary>(B) source lengths, each in [1, S].</summary>
    public int[] SourceLengths { get; private set; } = [];
    /// <summary>(T, B) decoder input ids: BOS, then the target; 0 past the end.</summary>
    public int[] DecoderInput { get; private set; } = [];
    /// <summary>(T, B) expected output ids: the target, then EOS; 0 (ignored by the loss) past the end.</summary>
    public int[] DecoderOutput { get; private set; } = [];

    /// <summary>Sizes and clears the batch for <paramref name="count"/> pairs of up to the given lengths (source as fed, target without BOS/EOS).</summary>
    public void Reset(int sourceSteps, int targetLength, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sourceSteps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(targetLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        SourceSteps = sourceSteps; TargetSteps = targetLength + 1; Count = count;
        if (Source.Length < sourceSteps * count) Source = new int[sourceSteps * count];
        if (DecoderInput.Length < TargetSteps * count) { DecoderInput = new int[TargetSteps * count]; DecoderOutput = new int[TargetSteps * count]; }
        if (SourceLengths.Length != count) SourceLengths = new int[count];
        Array.Clear(Source, 0, sourceSteps * count);
        Array.Clear(DecoderInput, 0, TargetSteps * count);
        Array.Clear(DecoderOutput, 0, TargetSteps * count);
    }

    /// <summary>Writes pair <paramref name="row"/>: the source as the model reads it, and the target without BOS/EOS.</summary>
    public void Set(int row, ReadOnlySpan<int> source, ReadOnlySpan<int> target)
    {
        if ((uint)row >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(row), row, $"The batch has {Count} rows.");
        if (source.Length < 1 || source.Length > SourceSteps) throw new ArgumentOutOfRangeException(nameof(source), source.Length, $"A source needs 1 to {SourceSteps} tokens.");
        if (target.Length > TargetSteps - 1) throw new ArgumentOutOfRangeException(nameof(target), target.Length, $"A target may have up to {TargetSteps - 1} tokens.");
        int B = Count;
        SourceLengths[row] = source.Length;
        for (int s = 0; s < source.Length; s++) Source[s * B + row] = source[s];
        DecoderInput[row] = Seq2SeqVocabulary.Bos;
        for (int t = 0; t < target.Length; t++)
        {
            DecoderInput[(t + 1) * B + row] = target[t];
            DecoderOutput[t * B + row] = target[t];
        }
        DecoderOutput[target.Length * B + row] = Seq2SeqVocabulary.Eos;
    }
}
