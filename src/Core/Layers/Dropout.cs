namespace DeepSeq.Core.Layers;

/// <summary>
/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by 1/(1 − p), so
/// inference is the identity. The mask comes from a seeded generator: runs repeat for a given seed.
/// </summary>
public sealed class Dropout
{
    readonly Random _random;
    float[]? _mask; // (N) 0 or 1/(1 − p) per value of the last training forward; backward multiplies by it

    /// <summary>Creates the layer with drop probability <paramref name="rate"/> in [0, 1).</summary>
    public Dropout(float rate, int seed = 0)
    {
        if (!(rate >= 0 && rate < 1)) throw new ArgumentOutOfRangeException(nameof(rate), rate, "Dropout rate must be in [0, 1).");
        Rate = rate;
        _random = new Random(seed);
    }

    /// <summary>Probability of dropping a value.</summary>
    public float Rate { get; }

    /// <summary>y = x ⊙ mask in training (with a fresh mask), y = x otherwise. y may alias x.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, bool training)
    {
        if (!training || Rate == 0f)
        {
            x.CopyTo(y); // memmove: fine when y aliases x
            _mask = null;
            return;
        }
        var mask = Buffer.Ensure(ref _mask, x.Length);
        float keep = 1f / (1f - Rate);
        for (int i = 0; i < x.Length; i++)
        {
            mask[i] = _random.NextSingle() < Rate ? 0f : keep;
            y[i] = x[i] * mask[i];
        }
    }

    /// <summary>dx += dy ⊙ mask (dy when the last forward was not in training).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy)
    {
        if (_mask is null) System.Numerics.Tensors.TensorPrimitives.Add(dx, dy, dx);
        else System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(dy, _mask.AsSpan(0, dy.Length), dx, dx);
    }

}
