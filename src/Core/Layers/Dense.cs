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

    // W packed for the multiplies, repacked only when W changes (its Version): a decoder step multiplies by the
    // same weights many times between optimiser steps, and at inference forever.
    PackedMatrix? _transposed, _plain;

    /// <summary>y = x·Wᵀ + b for <paramref name="n"/> rows.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n)
    {
        _transposed ??= new PackedMatrix(InputSize, OutputSize);
        _transposed.PackIfChanged(true, Weight.Value.Data, InputSize, Weight.Version);
        if (Bias is null) Gemm.Multiply(false, n, 1f, x, InputSize, _transposed, 0f, y, OutputSize);
        else Gemm.MultiplyAddRow(n, x, InputSize, _transposed, Bias.Value.Data, y, OutputSize);
    }

    /// <summary>dW += dyᵀ·x; db += Σ_rows dy; dx += dy·W (skipped when <paramref name="dx"/> is empty).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int n)
    {
        Gemm.Multiply(true, false, OutputSize, InputSize, n, 1f, dy, OutputSize, x, InputSize, 1f, Weight.Gradient.Data, InputSize);
        if (Bias is not null)
            for (int r = 0; r < n; r++) TensorPrimitives.Add(Bias.Gradient.Data, dy.Slice(r * OutputSize, OutputSize), Bias.Gradient.Data);
        if (dx.IsEmpty) return;
        _plain ??= new PackedMatrix(OutputSize, InputSize);
        _plain.PackIfChanged(false, Weight.Value.Data, InputSize, Weight.Version);
        Gemm.Multiply(false, n, 1f, dy, OutputSize, _plain, 1f, dx, InputSize);
    }
}
