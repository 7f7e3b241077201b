namespace DeepSeq.Core.Layers;

/// <summary>
/// Parametric ReLU (He et al. 2015): y = x for x &gt; 0, a_c·x otherwise, with a learned slope a_c per channel.
/// Input shape (N, C, S): batch, channels, positions per channel (S = 1 after a dense layer).
/// </summary>
public sealed class PRelu : Module
{
    /// <summary>Creates the layer with every slope at <paramref name="initialSlope"/> (0.25 as in the paper).</summary>
    public PRelu(int channels, float initialSlope = 0.25f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        Slope = AddParameter("weight", channels);
        Array.Fill(Slope.Value.Data, initialSlope);
    }

    /// <summary>The slopes a_c, one per channel.</summary>
    public Parameter Slope { get; }

    /// <summary>y = PReLU(x); x and y are (N, C, S).</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int s)
    {
        var a = Slope.Value.Data;
        for (int b = 0; b < n; b++)
            for (int c = 0; c < a.Length; c++)
                for (int i = (b * a.Length + c) * s, e = i + s; i < e; i++) y[i] = x[i] > 0 ? x[i] : a[c] * x[i];
    }

    /// <summary>dx += dy·(x &gt; 0 ? 1 : a_c); da_c += Σ dy·x over x ≤ 0.</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n, int s)
    {
        var a = Slope.Value.Data;
        var da = Slope.Gradient.Data;
        for (int b = 0; b < n; b++)
            for (int c = 0; c < a.Length; c++)
                for (int i = (b * a.Length + c) * s, e = i + s; i < e; i++)
                {
                    if (x[i] > 0) dx[i] += dy[i];
                    else { dx[i] += a[c] * dy[i]; da[c] += dy[i] * x[i]; }
                }
    }
}
