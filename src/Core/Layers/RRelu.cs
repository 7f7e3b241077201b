namespace DeepSeq.Core.Layers;

/// <summary>
/// Randomised leaky ReLU (Xu et al. 2015): in training each negative input gets its own slope drawn uniformly
/// from [<see cref="Lower"/>, <see cref="Upper"/>] by a seeded generator; at inference the slope is their mean.
/// </summary>
public sealed class RRelu : Module
{
    Random _random;
    float[]? _slopes; // (N) the slope used for each element in the last training forward; backward reads it

    /// <summary>Creates the layer; defaults 1/8 and 1/3 follow the paper and PyTorch.</summary>
    public RRelu(float lower = 1f / 8, float upper = 1f / 3, int seed = 0)
    {
        if (!(lower >= 0 && lower <= upper)) throw new ArgumentOutOfRangeException(nameof(lower), $"Need 0 ≤ lower ≤ upper, got lower {lower}, upper {upper}.");
        Lower = lower; Upper = upper;
        _random = new Random(seed);
    }

    /// <inheritdoc/>
    protected override void OnReseed(ulong seed) => _random = new Random((int)(seed ^ (seed >> 32)));

    /// <summary>Smallest slope drawn in training.</summary>
    public float Lower { get; }
    /// <summary>Largest slope drawn in training.</summary>
    public float Upper { get; }

    /// <summary>y = x for x &gt; 0, a·x otherwise; a random per element when <paramref name="training"/>.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, bool training)
    {
        var slopes = Buffer.Ensure(ref _slopes, x.Length);
        float mean = 0.5f * (Lower + Upper);
        for (int i = 0; i < x.Length; i++)
        {
            float a = training ? Lower + (Upper - Lower) * _random.NextSingle() : mean;
            slopes[i] = a;
            y[i] = x[i] > 0 ? x[i] : a * x[i];
        }
    }

    /// <summary>dx += dy · (x &gt; 0 ? 1 : a), with the slopes of the last forward.</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        var slopes = _slopes ?? throw new InvalidOperationException("Backward called before Forward.");
        for (int i = 0; i < x.Length; i++) dx[i] += x[i] > 0 ? dy[i] : slopes[i] * dy[i];
    }
}
