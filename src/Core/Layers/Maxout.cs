namespace DeepSeq.Core.Layers;

/// <summary>
/// Maxout (Goodfellow et al. 2013): the maximum over <see cref="Pieces"/> consecutive inputs.
/// Input (N, D·k) → output (N, D); output j is max over inputs j·k … j·k + k − 1.
/// </summary>
public sealed class Maxout
{
    int[]? _argmax; // (N·D) which input won; backward routes the gradient there

    /// <summary>Creates a maxout over <paramref name="pieces"/> inputs per output.</summary>
    public Maxout(int pieces)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pieces, 1);
        Pieces = pieces;
    }

    /// <summary>Number of inputs per output (k).</summary>
    public int Pieces { get; }

    /// <summary>y[j] = max_p x[j·k + p]; <paramref name="y"/> has x.Length / k values.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        if (x.Length != y.Length * Pieces) throw new ArgumentException($"Maxout over {Pieces} pieces maps {y.Length * Pieces} inputs to {y.Length} outputs, got {x.Length} inputs.");
        if (_argmax is null || _argmax.Length < y.Length) _argmax = new int[y.Length];
        for (int j = 0; j < y.Length; j++)
        {
            int best = j * Pieces;
            for (int p = best + 1; p < (j + 1) * Pieces; p++) if (x[p] > x[best]) best = p;
            _argmax[j] = best;
            y[j] = x[best];
        }
    }

    /// <summary>dx[argmax_j] += dy[j].</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy)
    {
        var argmax = _argmax ?? throw new InvalidOperationException("Backward called before Forward.");
        for (int j = 0; j < dy.Length; j++) dx[argmax[j]] += dy[j];
    }
}
