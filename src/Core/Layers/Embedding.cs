namespace DeepSeq.Core.Layers;

/// <summary>
/// Lookup table: token id → row of E (V, D). The row of <see cref="PaddingId"/> (if any) stays zero and gets
/// no gradient, as in PyTorch's <c>padding_idx</c>.
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>Creates a table of <paramref name="vocabularySize"/> rows of <paramref name="dimension"/> values.</summary>
    public Embedding(int vocabularySize, int dimension, int? paddingId = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (paddingId is int p && (p < 0 || p >= vocabularySize))
            throw new ArgumentOutOfRangeException(nameof(paddingId), p, $"Padding id must be within [0, {vocabularySize}).");
        VocabularySize = vocabularySize; Dimension = dimension; PaddingId = paddingId;
        Table = AddParameter("weight", vocabularySize, dimension);
    }

    /// <summary>Number of rows (V).</summary>
    public int VocabularySize { get; }
    /// <summary>Values per row (D).</summary>
    public int Dimension { get; }
    /// <summary>The id whose row is fixed at zero, or null.</summary>
    public int? PaddingId { get; }
    /// <summary>E, (V, D).</summary>
    public Parameter Table { get; }

    /// <summary>y[i] = E[ids[i]]; y is (ids.Length, D).</summary>
    public void Forward(Span<float> y, ReadOnlySpan<int> ids)
    {
        var table = Table.Value.Data.AsSpan();
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)VocabularySize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id at position {i} is outside the vocabulary [0, {VocabularySize}).");
            var dst = y.Slice(i * Dimension, Dimension);
            if (id == PaddingId) dst.Clear();
            else table.Slice(id * Dimension, Dimension).CopyTo(dst);
        }
    }

    /// <summary>dE[ids[i]] += dy[i], except for the padding id.</summary>
    public void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> ids)
    {
        var grad = Table.Gradient.Data.AsSpan();
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == PaddingId) continue;
            var g = grad.Slice(ids[i] * Dimension, Dimension);
            System.Numerics.Tensors.TensorPrimitives.Add(g, dy.Slice(i * Dimension, Dimension), g);
        }
    }
}
