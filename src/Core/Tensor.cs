namespace DeepSeq.Core;

/// <summary>A float32, row-major, contiguous array with a shape. Kernels work on its <see cref="Data"/> as spans.</summary>
public sealed class Tensor
{
    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>The values, row-major.</summary>
    public float[] Data { get; }
    /// <summary>Number of values (the product of <see cref="Shape"/>).</summary>
    public int Length => Data.Length;

    /// <summary>Creates a zero tensor of the given shape.</summary>
    public Tensor(params int[] shape)
    {
        Shape = (int[])shape.Clone();
        long n = 1;
        foreach (int d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
            n *= d;
        }
        Data = new float[checked((int)n)];
    }

    /// <inheritdoc/>
    public override string ToString() => $"Tensor[{string.Join("×", Shape)}]";
}

/// <summary>A trainable parameter: its value and the gradient that backward passes add into.</summary>
public sealed class Parameter
{
    /// <summary>Creates a parameter of the given shape, value and gradient zero.</summary>
    public Parameter(string name, params int[] shape)
    {
        Name = name;
        Value = new Tensor(shape);
        Gradient = new Tensor(shape);
    }

    /// <summary>Name, in PyTorch's vocabulary where one exists (e.g. <c>weight_ih_l0</c>).</summary>
    public string Name { get; }
    /// <summary>Current value.</summary>
    public Tensor Value { get; }
    /// <summary>Accumulated gradient of the loss with respect to <see cref="Value"/>.</summary>
    public Tensor Gradient { get; }

    /// <summary>Sets the gradient to zero (backward passes only add).</summary>
    public void ZeroGradient() => Array.Clear(Gradient.Data);

    static long s_stamp;

    /// <summary>
    /// A stamp that changes whenever <see cref="Value"/> changes and is unique across all parameters: kernels
    /// that keep a packed copy of a weight re-pack only when it moves. Optimisers, initialisers and loaders bump
    /// it; code that writes <see cref="Value"/> directly must call <see cref="MarkChanged"/>.
    /// </summary>
    public long Version { get; private set; } = Interlocked.Increment(ref s_stamp);

    /// <summary>Records that <see cref="Value"/> was written (see <see cref="Version"/>).</summary>
    public void MarkChanged() => Version = Interlocked.Increment(ref s_stamp);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {Value}";
}

internal static class Buffer
{
    /// <summary>Grows <paramref name="buffer"/> to at least <paramref name="length"/>; reused across batches.</summary>
    public static float[] Ensure(ref float[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new float[Math.Max(length, 1)];
        return buffer;
    }
}
