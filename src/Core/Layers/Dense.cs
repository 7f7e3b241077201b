using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers;

/// <summary>
/// Fully connected layer, y = x·Wᵀ + b (PyTorch's <c>nn.Linear</c> layout: W is (out, in)).
/// Shapes: x (N, in), y (N, out).
/// </summary>
public sealed class Dense : Module
{
    /// <summary>Creates the layer with zero weights; initialise them with <see cref="Training.Initializers"/>.</summary>
    public Dense(int inputSize, int outputSize, bool useBias = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputSize, 1);
        InputSize = inputSize; OutputSize = outputSize;
        Weight = AddParameter("weight", outputSize, inputSize);
        Bias = useBias ? AddParameter("bias", outputSize) : null;
    }

    /// <summary>Input features.</summary>
    public int InputSize { get; }
    /// <summary>Output features.</summary>
    public int OutputSize { get; }
    /// <summary>W, (out, in).</summary>
    public Parameter Weight { get; }
    /// <summary>b, (out), or null without bias.</summary>
    public Parameter? Bias { get; }

    /// <summary>y = x·Wᵀ + b for <paramref name="n"/> rows.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n)
    {
        Gemm.Multiply(false, true, n, OutputSize, InputSize, 1f, x, InputSize, Weight.Value.Data, InputSize, 0f, y, OutputSize);
        if (Bias is not null)
            for (int r = 0; r < n; r++)
            {
                var row = y.Slice(r * OutputSize, OutputSize);
                TensorPrimitives.Add(row, Bias.Value.Data, row);
            }
    }

    /// <summary>dW += dyᵀ·x; db += Σ_rows dy; dx += dy·W (skipped when <paramref name="dx"/> is empty).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n)
    {
        Gemm.Multiply(true, false, OutputSize, InputSize, n, 1f, dy, OutputSize, x, InputSize, 1f, Weight.Gradient.Data, InputSize);
        if (Bias is not null)
            for (int r = 0; r < n; r++) TensorPrimitives.Add(Bias.Gradient.Data, dy.Slice(r * OutputSize, OutputSize), Bias.Gradient.Data);
        if (!dx.IsEmpty)
            Gemm.Multiply(false, false, n, InputSize, OutputSize, 1f, dy, OutputSize, Weight.Value.Data, InputSize, 1f, dx, InputSize);
    }
}
