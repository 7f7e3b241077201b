namespace DeepSeq.Core.Layers;

/// <summary>
/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by 1/(1 − p), so
/// inference is the identity. The mask comes from a seeded generator (SplitMix64): runs repeat for a given seed.
/// </summary>
public sealed class Dropout : Module
{
    ulong _state;       // SplitMix64: one multiply-xorshift per draw, ~10× faster than Random for millions of draws a batch
    float[]? _mask; // (N) 0 or 1/(1 − p) per value of the last training forward; backward multiplies by it
    bool _masked;   // the last forward drew a mask (training with p > 0)

    /// <summary>Creates the layer with drop probability <paramref name="rate"/> in [0, 1).</summary>
    public Dropout(float rate, int seed = 0)
    {
        if (!(rate >= 0 && rate < 1)) throw new ArgumentOutOfRangeException(nameof(rate), rate, "Dropout rate must be in [0, 1).");
        Rate = rate;
        _state = (ulong)seed * 0x9E3779B97F4A7C15UL + 1;
    }

    /// <inheritdoc/>
    protected override void OnReseed(ulong seed) => _state = seed;

    /// <summary>Probability of dropping a value.</summary>
    public float Rate { get; }

    /// <summary>Sizes the mask for up to <paramref name="values"/> values (<see cref="Forward"/> grows it for more).</summary>
    public void Reserve(int values)
    {
        if (_mask is null || _mask.Length < values) _mask = new float[Math.Max(values, 1)];
    }

    /// <summary>y = x ⊙ mask in training (with a fresh mask), y = x otherwise. y may alias x.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, bool training)
    {
        if (!training || Rate == 0f)
        {
            x.CopyTo(y); // memmove: fine when y aliases x
            _masked = false;
            return;
        }
        Reserve(x.Length);
        var mask = _mask!;
        _masked = true;
        float keep = 1f / (1f - Rate);
        uint threshold = (uint)(Rate * 4294967296.0); // drop when a uniform 32-bit draw falls below Rate · 2³²
        for (int i = 0; i < x.Length; i += 2)
        {
            ulong bits = Next();
            mask[i] = (uint)bits < threshold ? 0f : keep;
            if (i + 1 < x.Length) mask[i + 1] = (uint)(bits >> 32) < threshold ? 0f : keep;
        }
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, mask.AsSpan(0, x.Length), y);
    }

    ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>dx += dy ⊙ mask (dy when the last forward was not in training).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy)
    {
        if (!_masked) System.Numerics.Tensors.TensorPrimitives.Add(dx, dy, dx);
        else System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(dy, _mask.AsSpan(0, dy.Length), dx, dx);
    }

}
