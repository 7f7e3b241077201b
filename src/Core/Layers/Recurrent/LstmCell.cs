using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>Which LSTM gates read the cell state through a peephole weight (Gers &amp; Schmidhuber 2000).</summary>
[Flags]
public enum PeepholeGates
{
    /// <summary>No peepholes: the standard LSTM.</summary>
    None = 0,
    /// <summary>The input gate reads c_{t−1}.</summary>
    Input = 1,
    /// <summary>The forget gate reads c_{t−1}.</summary>
    Forget = 2,
    /// <summary>The output gate reads the new c_t (the ONNX convention).</summary>
    Output = 4,
    /// <summary>All three gates.</summary>
    All = Input | Forget | Output,
}

/// <summary>
/// Long short-term memory, in PyTorch's gate order and equations (a = x·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh):
/// <code>
/// i = σ(a_i + p_i ⊙ c_{t−1})        peephole optional
/// f = σ(a_f + p_f ⊙ c_{t−1})        or f = 1 − i when coupled (ONNX input_forget = 1)
/// g = tanh(a_g)
/// c_t = f ⊙ c_{t−1} + i ⊙ g
/// o = σ(a_o + p_o ⊙ c_t)            peephole optional; reads the new c_t, as ONNX does
/// h_t = o ⊙ tanh(c_t)
/// </code>
/// Gate blocks in the weights: [i, f, g, o]; coupled: [i, g, o] (no forget weights to learn).
/// </summary>
public sealed class LstmCell : RecurrentCell
{
    readonly int _i, _f, _g, _o; // gate block offsets within a row of G·H values; _f < 0 when coupled

    /// <summary>Creates the cell with zero weights.</summary>
    /// <param name="inputSize">Input features (I).</param>
    /// <param name="hiddenSize">Hidden units (H).</param>
    /// <param name="peepholes">Gates with a peephole weight.</param>
    /// <param name="coupledInputForget">When true, f = 1 − i.</param>
    /// <param name="suffix">Appended to the parameter names (e.g. <c>_l0_reverse</c>).</param>
    public LstmCell(int inputSize, int hiddenSize, PeepholeGates peepholes = PeepholeGates.None, bool coupledInputForget = false, string suffix = "")
        : base(inputSize, hiddenSize, coupledInputForget ? 3 : 4, suffix)
    {
        if (coupledInputForget && peepholes.HasFlag(PeepholeGates.Forget))
            throw new ArgumentException("A coupled LSTM computes f = 1 − i and has no forget gate to give a peephole; use Input and/or Output.", nameof(peepholes));
        Peepholes = peepholes;
        Coupled = coupledInputForget;
        int h = hiddenSize;
        (_i, _f, _g, _o) = coupledInputForget ? (0, -1, h, 2 * h) : (0, h, 2 * h, 3 * h);
        if (peepholes.HasFlag(PeepholeGates.Input)) PeepholeInput = new Parameter("weight_pi" + suffix, h);
        if (peepholes.HasFlag(PeepholeGates.Forget)) PeepholeForget = new Parameter("weight_pf" + suffix, h);
        if (peepholes.HasFlag(PeepholeGates.Output)) PeepholeOutput = new Parameter("weight_po" + suffix, h);
    }

    /// <summary>The gates with peepholes.</summary>
    public PeepholeGates Peepholes { get; }
    /// <summary>True when f = 1 − i.</summary>
    public bool Coupled { get; }
    /// <summary>p_i (H), or null.</summary>
    public Parameter? PeepholeInput { get; }
    /// <summary>p_f (H), or null.</summary>
    public Parameter? PeepholeForget { get; }
    /// <summary>p_o (H), or null.</summary>
    public Parameter? PeepholeOutput { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<Parameter> Parameters =>
        [.. base.Parameters, .. new[] { PeepholeInput, PeepholeForget, PeepholeOutput }.OfType<Parameter>()];

    /// <inheritdoc/>
    public override bool HasCellState => true;
    /// <inheritdoc/>
    public override int ForgetGateIndex => Coupled ? -1 : 1;
    internal override int CacheWidth => HiddenSize; // tanh(c_t)

    internal override void ForwardStep(in StepForward s)
    {
        int h = HiddenSize, gh = GateCount * h;
        Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, RecurrentT, 1f, s.Gates, gh); // a += h_{t−1}·W_hhᵀ
        for (int b = 0; b < s.Rows; b++)
        {
            var a = s.Gates.Slice(b * gh, gh);
            var cPrev = s.CPrev.Slice(b * h, h);
            var c = s.C.Slice(b * h, h);
            var tanhC = s.Cache.Slice(b * h, h);
            Span<float> i = a.Slice(_i, h), g = a.Slice(_g, h), o = a.Slice(_o, h);
            if (PeepholeInput is not null) TensorPrimitives.FusedMultiplyAdd(PeepholeInput.Value.Data, cPrev, i, i);
            TensorPrimitives.Sigmoid(i, i);
            TensorPrimitives.Tanh(g, g);
            if (Coupled)
            {
                TensorPrimitives.Subtract(g, cPrev, tanhC);                  // scratch: g − c_{t−1}
                TensorPrimitives.FusedMultiplyAdd(i, tanhC, cPrev, c);       // c = (1 − i) ⊙ c_{t−1} + i ⊙ g
            }
            else
            {
                var f = a.Slice(_f, h);
                if (PeepholeForget is not null) TensorPrimitives.FusedMultiplyAdd(PeepholeForget.Value.Data, cPrev, f, f);
                TensorPrimitives.Sigmoid(f, f);
                TensorPrimitives.Multiply(i, g, c);
                TensorPrimitives.FusedMultiplyAdd(f, cPrev, c, c);           // c = f ⊙ c_{t−1} + i ⊙ g
            }
            if (PeepholeOutput is not null) TensorPrimitives.FusedMultiplyAdd(PeepholeOutput.Value.Data, c, o, o);
            TensorPrimitives.Sigmoid(o, o);
            TensorPrimitives.Tanh(c, tanhC);
            TensorPrimitives.Multiply(o, tanhC, s.H.Slice(b * h, h));        // h = o ⊙ tanh(c)
        }
    }

    internal override void BackwardStep(in StepBackward s)
    {
        int h = HiddenSize, gh = GateCount * h;
        var pi = PeepholeInput?.Value.Data; var pf = PeepholeForget?.Value.Data; var po = PeepholeOutput?.Value.Data;
        var dpi = PeepholeInput?.Gradient.Data; var dpf = PeepholeForget?.Gradient.Data; var dpo = PeepholeOutput?.Gradient.Data;
        for (int b = 0; b < s.Rows; b++)
        {
            var a = s.Gates.Slice(b * gh, gh);
            var da = s.DGatesX.Slice(b * gh, gh);
            int r = b * h;
            for (int j = 0; j < h; j++)
            {
                float i = a[_i + j], g = a[_g + j], o = a[_o + j], f = Coupled ? 1f - i : a[_f + j];
                float cPrev = s.CPrev[r + j], c = s.C[r + j], tc = s.Cache[r + j], dh = s.DH[r + j];
                float dao = dh * tc * o * (1f - o);                        // h = o ⊙ tanh(c)
                float dc = s.DC[r + j] + dh * o * (1f - tc * tc);
                if (po is not null) { dc += dao * po[j]; dpo![j] += dao * c; }
                float dai = dc * g * i * (1f - i);                          // c = f ⊙ c_{t−1} + i ⊙ g
                float dag = dc * i * (1f - g * g);
                float dcPrev = dc * f;
                if (Coupled) dai -= dc * cPrev * i * (1f - i);             // f = 1 − i
                else
                {
                    float daf = dc * cPrev * f * (1f - f);
                    da[_f + j] = daf;
                    if (pf is not null) { dcPrev += daf * pf[j]; dpf![j] += daf * cPrev; }
                }
                if (pi is not null) { dcPrev += dai * pi[j]; dpi![j] += dai * cPrev; }
                da[_i + j] = dai; da[_g + j] = dag; da[_o + j] = dao;
                s.DCPrev[r + j] = dcPrev;
            }
        }
        Gemm.Multiply(false, s.Rows, 1f, s.DGatesX, gh, Recurrent, 0f, s.DHPrev, h);  // dh_{t−1} = da·W_hh
    }
}
