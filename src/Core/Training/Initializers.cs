using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;

namespace DeepSeq.Core.Training;

/// <summary>How recurrent weights are initialised.</summary>
public enum RecurrentInitializer
{
    /// <summary>W_ih Xavier/Glorot uniform, each gate block of W_hh orthogonal (Saxe et al. 2014; the Keras default), biases zero.</summary>
    XavierOrthogonal,
    /// <summary>Every weight and bias U(−1/√H, 1/√H), as PyTorch's <c>nn.LSTM</c> does.</summary>
    Uniform,
}

/// <summary>Weight initialisers; all take an explicit <see cref="Random"/> so runs repeat for a seed.</summary>
public static class Initializers
{
    /// <summary>U(−a, a) with a = gain·√(6 / (fanIn + fanOut)) (Glorot &amp; Bengio 2010).</summary>
    public static void XavierUniform(Span<float> w, int fanIn, int fanOut, Random random, float gain = 1f)
        => Uniform(w, gain * MathF.Sqrt(6f / (fanIn + fanOut)), random);

    /// <summary>N(0, gain²/fanIn) with gain √2 for ReLU (He et al. 2015).</summary>
    public static void HeNormal(Span<float> w, int fanIn, Random random, float gain = 1.41421356f)
        => Normal(w, gain / MathF.Sqrt(fanIn), random);

    /// <summary>N(0, σ²).</summary>
    public static void Normal(Span<float> w, float standardDeviation, Random random)
    {
        for (int i = 0; i < w.Length; i++) w[i] = standardDeviation * Gaussian(random);
    }

    /// <summary>U(−bound, bound).</summary>
    public static void Uniform(Span<float> w, float bound, Random random)
    {
        for (int i = 0; i < w.Length; i++) w[i] = bound * (2f * random.NextSingle() - 1f);
    }

    /// <summary>
    /// A (rows × cols) matrix with orthonormal rows (rows ≤ cols) or columns (rows ≥ cols), times
    /// <paramref name="gain"/>: Gram–Schmidt on a Gaussian matrix, in double precision.
    /// </summary>
    public static void Orthogonal(Span<float> w, int rows, int cols, Random random, float gain = 1f)
    {
        if (w.Length != rows * cols) throw new ArgumentException($"Expected {rows}×{cols} values, got {w.Length}.", nameof(w));
        bool tall = rows > cols;
        int n = tall ? cols : rows, len = tall ? rows : cols; // orthonormalise n vectors of length len
        var q = new double[n, len];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < len; j++) q[i, j] = Gaussian(random);
            for (int pass = 0; pass < 2; pass++) // twice is enough for float accuracy (Giraud et al. 2005)
                for (int k = 0; k < i; k++)
                {
                    double dot = 0;
                    for (int j = 0; j < len; j++) dot += q[i, j] * q[k, j];
                    for (int j = 0; j < len; j++) q[i, j] -= dot * q[k, j];
                }
            double norm = 0;
            for (int j = 0; j < len; j++) norm += q[i, j] * q[i, j];
            norm = Math.Sqrt(norm);
            for (int j = 0; j < len; j++) q[i, j] /= norm;
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) w[r * cols + c] = gain * (float)(tall ? q[c, r] : q[r, c]);
    }

    /// <summary>
    /// Initialises every cell of <paramref name="network"/>; with <paramref name="unitForgetBias"/> the LSTM
    /// forget-gate bias starts at 1 (Jozefowicz et al. 2015; Keras <c>unit_forget_bias</c>).
    /// </summary>
    public static void InitializeRecurrent(RecurrentNetwork network, RecurrentInitializer scheme, bool unitForgetBias, Random random)
    {
        foreach (var cell in network.Cells) InitializeCell(cell, scheme, unitForgetBias, random);
    }

    /// <summary>Initialises one cell (see <see cref="InitializeRecurrent"/>).</summary>
    public static void InitializeCell(RecurrentCell cell, RecurrentInitializer scheme, bool unitForgetBias, Random random)
    {
        int h = cell.HiddenSize, g = cell.GateCount;
        if (scheme == RecurrentInitializer.Uniform)
        {
            float bound = 1f / MathF.Sqrt(h);
            foreach (var p in cell.Parameters) Uniform(p.Value.Data, bound, random);
        }
        else
        {
            XavierUniform(cell.WeightIh.Value.Data, cell.InputSize, h, random);
            for (int k = 0; k < g; k++) Orthogonal(cell.WeightHh.Value.Data.AsSpan(k * h * h, h * h), h, h, random);
            foreach (var p in cell.Parameters.Skip(2)) Array.Clear(p.Value.Data); // biases and peepholes
        }
        if (unitForgetBias && cell.ForgetGateIndex >= 0)
        {
            Array.Fill(cell.BiasIh.Value.Data, 1f, cell.ForgetGateIndex * h, h);
            Array.Clear(cell.BiasHh.Value.Data, cell.ForgetGateIndex * h, h);
        }
        foreach (var p in cell.Parameters) p.MarkChanged();
    }

    /// <summary>Xavier-uniform weights and zero bias for a dense layer.</summary>
    public static void Initialize(Dense dense, Random random)
    {
        XavierUniform(dense.Weight.Value.Data, dense.InputSize, dense.OutputSize, random);
        if (dense.Bias is not null) Array.Clear(dense.Bias.Value.Data);
        foreach (var p in dense.Parameters) p.MarkChanged();
    }

    /// <summary>N(0, σ²) rows, the padding row zero (σ = 1 is PyTorch's <c>nn.Embedding</c>).</summary>
    public static void Initialize(Embedding embedding, Random random, float standardDeviation = 1f)
    {
        var w = embedding.Table.Value.Data;
        Normal(w, standardDeviation, random);
        if (embedding.PaddingId is int p) Array.Clear(w, p * embedding.Dimension, embedding.Dimension);
        embedding.Table.MarkChanged();
    }

    /// <summary>A standard normal sample (Box–Muller).</summary>
    public static float Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }
}
