using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>
/// Elman RNN, as PyTorch's <c>nn.RNN</c>: h_t = act(x·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh), act tanh or ReLU.
/// </summary>
public sealed class RnnCell : RecurrentCell
{
    readonly Activation _activation;

    /// <summary>Creates the cell with zero weights; <paramref name="activation"/> is Tanh or Relu.</summary>
    public RnnCell(int inputSize, int hiddenSize, ActivationKind activation = ActivationKind.Tanh)
        : base(inputSize, hiddenSize, 1)
    {
        if (activation is not (ActivationKind.Tanh or ActivationKind.Relu))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "An Elman RNN uses Tanh or Relu.");
        _activation = new Activation(activation);
    }

    /// <summary>The non-linearity.</summary>
    public ActivationKind ActivationKind => _activation.Kind;

    internal override void ForwardStep(in StepForward s)
    {
        int h = HiddenSize, n = s.Rows * h;
        Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, RecurrentT, 1f, s.Gates, h);   // a += h_{t−1}·W_hhᵀ
        unsafe
        {
            fixed (float* gates = s.Gates, hOut = s.H)                                 // gates now hold h_t, as does H
                Lanes.Run(new RnnForward { Length = n, Relu = _activation.Kind == ActivationKind.Relu, Gates = gates, H = hOut });
        }
    }

    internal override void BackwardStep(in StepBackward s)
    {
        int h = HiddenSize, n = s.Rows * h;
        // f' from y alone: tanh' = 1 − y², ReLU' = [y > 0] (x > 0 ⇔ y > 0, so y stands in for x).
        unsafe
        {
            fixed (float* y = s.Gates, dh = s.DH, da = s.DGatesX)
                Lanes.Run(new RnnBackward { Length = n, Relu = _activation.Kind == ActivationKind.Relu, Gates = y, DH = dh, DGates = da });
        }
        Gemm.Multiply(false, s.Rows, 1f, s.DGatesX, h, Recurrent, 0f, s.DHPrev, h);  // dh_{t−1} = da·W_hh
    }
}
