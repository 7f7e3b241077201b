using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>
/// One recurrent cell: its parameters and the equations of one time step, forward and backward.
/// <see cref="RecurrentLayer"/> runs it over a sequence; the work common to all cells (the input projection of
/// all time steps in one GEMM, the weight gradients in one GEMM each) lives there.
/// </summary>
/// <remarks>
/// Weights follow PyTorch's layout and gate order, so they convert one to one: <c>weight_ih</c> (G·H, I),
/// <c>weight_hh</c> (G·H, H), <c>bias_ih</c> and <c>bias_hh</c> (G·H), where G is <see cref="GateCount"/>.
/// Shape key in every cell file: B batch rows active at a step, I input, H hidden, G gates.
/// </remarks>
public abstract class RecurrentCell : Module
{
    private protected RecurrentCell(int inputSize, int hiddenSize, int gateCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hiddenSize, 1);
        InputSize = inputSize; HiddenSize = hiddenSize; GateCount = gateCount;
        WeightIh = AddParameter("weight_ih", gateCount * hiddenSize, inputSize);
        WeightHh = AddParameter("weight_hh", gateCount * hiddenSize, hiddenSize);
        BiasIh = AddParameter("bias_ih", gateCount * hiddenSize);
        BiasHh = AddParameter("bias_hh", gateCount * hiddenSize);
        RecurrentT = new PackedMatrix(hiddenSize, gateCount * hiddenSize);
        InputT = new PackedMatrix(inputSize, gateCount * hiddenSize);
        Recurrent = new PackedMatrix(gateCount * hiddenSize, hiddenSize);
    }

    /// <summary>Input features per step (I).</summary>
    public int InputSize { get; }
    /// <summary>Hidden units (H).</summary>
    public int HiddenSize { get; }
    /// <summary>Gate blocks in the weight matrices (G): 1 for RNN, 3 for GRU, 4 for LSTM (3 when coupled).</summary>
    public int GateCount { get; }
    /// <summary>W_ih, (G·H, I).</summary>
    public Parameter WeightIh { get; }
    /// <summary>W_hh, (G·H, H).</summary>
    public Parameter WeightHh { get; }
    /// <summary>b_ih, (G·H).</summary>
    public Parameter BiasIh { get; }
    /// <summary>b_hh, (G·H).</summary>
    public Parameter BiasHh { get; }


    /// <summary>True for LSTMs: the cell carries a cell state c beside h.</summary>
    public virtual bool HasCellState => false;

    /// <summary>Index of the forget-gate block (LSTM), or −1 when the cell has none.</summary>
    public virtual int ForgetGateIndex => -1;

    // Values per row and step that forward keeps for backward besides gates, h and c.
    internal virtual int CacheWidth => 0;
    // True when b_hh can be added together with b_ih to the input projection (false when a gate multiplies it).
    internal virtual bool RecurrentBiasInProjection => true;

    /// <summary>The bias the input projection adds, (G·H): b_ih, plus b_hh where <see cref="RecurrentBiasInProjection"/>.</summary>
    internal void InputBias(Span<float> bias)
    {
        BiasIh.Value.Data.CopyTo(bias);
        if (RecurrentBiasInProjection) TensorPrimitives.Add(bias, BiasHh.Value.Data, bias);
    }
    // True when the gradients of the input-side and the recurrent-side pre-activations differ (GRU).
    internal virtual bool SeparateRecurrentGradient => false;
    // True when dW_hh is the plain Σ_t dGᵀ·h_{t−1} (AccumulateRecurrentWeightGradient below) of the same dG as dW_ih's:
    // both then come from one product against [x_t | h_{t−1}] (AccumulateWeightGradients).
    internal virtual bool JointWeightGradient => !SeparateRecurrentGradient;

    /// <summary>W_hhᵀ packed for the forward step (H × G·H).</summary>
    private protected PackedMatrix RecurrentT { get; }
    /// <summary>W_hh packed for the backward step (G·H × H).</summary>
    private protected PackedMatrix Recurrent { get; }

    // The recurrent weights change only between optimiser steps: pack them once per sequence.
    internal virtual void PackForForward() => RecurrentT.PackIfChanged(true, WeightHh.Value.Data, HiddenSize, WeightHh.Version);
    internal virtual void PackForBackward() => Recurrent.PackIfChanged(false, WeightHh.Value.Data, HiddenSize, WeightHh.Version);

    /// <summary>W_ihᵀ packed for the input projection of all steps (I × G·H).</summary>
    internal PackedMatrix InputT { get; }

    /// <summary>Sizes per-step scratch for up to <paramref name="rows"/> active rows (cells that need any).</summary>
    internal virtual void Reserve(int rows) { }

    /// <summary>One forward step over the active rows: turns pre-activations into gate values, h and c.</summary>
    internal abstract void ForwardStep(in StepForward s);

    /// <summary>One backward step: writes the pre-activation gradients and dh_{t−1}, dc_{t−1}.</summary>
    internal abstract void BackwardStep(in StepBackward s);

    /// <summary>
    /// dW_ih += Σ_t dGatesXᵀ·x_t and dW_hh (<see cref="AccumulateRecurrentWeightGradient"/>) over all steps' rows. Where
    /// the cell has a <see cref="JointWeightGradient"/>, both come from one product, dGᵀ·[x | h_{t−1}], packed side by
    /// side from the two buffers into a scratch and then added to each: the transposed dG (13 MB for an LSTM of 256
    /// over 3,200 rows) is read and packed once instead of twice.
    /// </summary>
    internal void AccumulateWeightGradients(ReadOnlySpan<float> dGatesX, ReadOnlySpan<float> dGatesH, ReadOnlySpan<float> x,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cache, int rows)
    {
        int I = InputSize, H = HiddenSize, gh = GateCount * H, n = I + H;
        if (!JointWeightGradient)
        {
            Gemm.Multiply(true, false, gh, I, rows, 1f, dGatesX, gh, x, I, 1f, WeightIh.Gradient.Data, I);
            AccumulateRecurrentWeightGradient(dGatesH, hPrev, cache, rows);
            return;
        }
        _jointGradient ??= new float[gh * n]; // once per cell: no allocation per step
        var product = _jointGradient.AsSpan();
        using (var inputsAndStates = PackedMatrix.Rent(rows, n))
        {
            inputsAndStates.PackSideBySide(x, I, I, hPrev, H);
            Gemm.Multiply(true, gh, 1f, dGatesX, gh, inputsAndStates, 0f, product, n);
        }
        Span<float> dwIh = WeightIh.Gradient.Data, dwHh = WeightHh.Gradient.Data;
        for (int r = 0; r < gh; r++)
        {
            var row = product.Slice(r * n, n);
            TensorPrimitives.Add(dwIh.Slice(r * I, I), row[..I], dwIh.Slice(r * I, I));
            TensorPrimitives.Add(dwHh.Slice(r * H, H), row[I..], dwHh.Slice(r * H, H));
        }
    }

    float[]? _jointGradient; // (G·H, I + H): [dW_ih | dW_hh] of one backward

    /// <summary>dW_hh += Σ_t dGatesHᵀ · h_{t−1}, all steps in one GEMM ((T·B) rows).</summary>
    internal virtual void AccumulateRecurrentWeightGradient(ReadOnlySpan<float> dGatesH, ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cache, int rows)
    {
        int gh = GateCount * HiddenSize;
        Gemm.Multiply(true, false, gh, HiddenSize, rows, 1f, dGatesH, gh, hPrev, HiddenSize, 1f, WeightHh.Gradient.Data, HiddenSize);
    }
}

/// <summary>The buffers of one forward step; all (B, ·) with B the active rows.</summary>
internal readonly ref struct StepForward
{
    public int Rows { get; init; }
    /// <summary>(B, G·H) in: input-side pre-activations (+ b_ih, and b_hh where allowed); out: gate values kept for backward.</summary>
    public Span<float> Gates { get; init; }
    public ReadOnlySpan<float> HPrev { get; init; }   // (B, H)
    public ReadOnlySpan<float> CPrev { get; init; }   // (B, H), LSTM only
    public Span<float> H { get; init; }               // (B, H) out
    public Span<float> C { get; init; }               // (B, H) out, LSTM only
    public Span<float> Cache { get; init; }           // (B, CacheWidth) out: kept for backward
}

/// <summary>The buffers of one backward step; all (B, ·) with B the active rows.</summary>
internal readonly ref struct StepBackward
{
    public int Rows { get; init; }
    public ReadOnlySpan<float> Gates { get; init; }   // (B, G·H) what forward kept
    public ReadOnlySpan<float> HPrev { get; init; }
    public ReadOnlySpan<float> CPrev { get; init; }
    public ReadOnlySpan<float> C { get; init; }
    public ReadOnlySpan<float> Cache { get; init; }
    public ReadOnlySpan<float> DH { get; init; }      // (B, H) in: dL/dh_t, from the output and from step t + 1
    public ReadOnlySpan<float> DC { get; init; }      // (B, H) in: dL/dc_t from step t + 1 (LSTM)
    public Span<float> DGatesX { get; init; }         // (B, G·H) out: dL/d(input-side pre-activation)
    public Span<float> DGatesH { get; init; }         // (B, G·H) out: dL/d(recurrent pre-activation); may alias DGatesX
    public Span<float> DHPrev { get; init; }          // (B, H) out (overwritten): dL/dh_{t−1}
    public Span<float> DCPrev { get; init; }          // (B, H) out (overwritten): dL/dc_{t−1}
}
