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
public sealed unsafe class LstmCell : RecurrentCell
{
    readonly int _i, _f, _g, _o; // gate block offsets within a row of G·H values; _f < 0 when coupled
    float[]? _zeros;             // (H) stands in for absent peepholes

    /// <summary>Creates the cell with zero weights.</summary>
    /// <param name="inputSize">Input features (I).</param>
    /// <param name="hiddenSize">Hidden units (H).</param>
    /// <param name="peepholes">Gates with a peephole weight.</param>
    /// <param name="coupledInputForget">When true, f = 1 − i.</param>
    public LstmCell(int inputSize, int hiddenSize, PeepholeGates peepholes = PeepholeGates.None, bool coupledInputForget = false)
        : base(inputSize, hiddenSize, coupledInputForget ? 3 : 4)
    {
        if (coupledInputForget && peepholes.HasFlag(PeepholeGates.Forget))
            throw new ArgumentException("A coupled LSTM computes f = 1 − i and has no forget gate to give a peephole; use Input and/or Output.", nameof(peepholes));
        Peepholes = peepholes;
        Coupled = coupledInputForget;
        int h = hiddenSize;
        (_i, _f, _g, _o) = coupledInputForget ? (0, -1, h, 2 * h) : (0, h, 2 * h, 3 * h);
        if (peepholes.HasFlag(PeepholeGates.Input)) PeepholeInput = AddParameter("weight_pi", h);
        if (peepholes.HasFlag(PeepholeGates.Forget)) PeepholeForget = AddParameter("weight_pf", h);
        if (peepholes.HasFlag(PeepholeGates.Output)) PeepholeOutput = AddParameter("weight_po", h);
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
    public override bool HasCellState => true;
    /// <inheritdoc/>
    public override int ForgetGateIndex => Coupled ? -1 : 1;
    internal override int CacheWidth => HiddenSize; // tanh(c_t)

    internal override void ForwardStep(in StepForward s)
    {
        int h = HiddenSize, gh = GateCount * h;
        Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, RecurrentT, 1f, s.Gates, gh); // a += h_{t−1}·W_hhᵀ
        fixed (float* gates = s.Gates, cPrev = s.CPrev, c = s.C, hOut = s.H, tanhC = s.Cache)
        fixed (float* pi = Peephole(PeepholeInput), pf = Peephole(PeepholeForget), po = Peephole(PeepholeOutput))
            RowKernels.Run(new LstmForward
            {
                Rows = s.Rows, Hidden = h, I = _i, F = _f, G = _g, O = _o,
                Gates = gates, CPrev = cPrev, C = c, H = hOut, TanhC = tanhC, PeepI = pi, PeepF = pf, PeepO = po,
            }, s.Rows, h);
    }

    internal override void BackwardStep(in StepBackward s)
    {
        int h = HiddenSize, gh = GateCount * h;
        fixed (float* gates = s.Gates, cPrev = s.CPrev, c = s.C, tanhC = s.Cache, dhIn = s.DH, dcIn = s.DC, da = s.DGatesX, dcOut = s.DCPrev)
        fixed (float* pi = Peephole(PeepholeInput), pf = Peephole(PeepholeForget), po = Peephole(PeepholeOutput))
        fixed (float* dpi = PeepholeGradient(PeepholeInput), dpf = PeepholeGradient(PeepholeForget), dpo = PeepholeGradient(PeepholeOutput))
        {
            var kernel = new LstmBackward
            {
                Rows = s.Rows, Hidden = h, I = _i, F = _f, G = _g, O = _o,
                Gates = gates, CPrev = cPrev, C = c, TanhC = tanhC, DH = dhIn, DC = dcIn, DGates = da, DCPrev = dcOut,
                PeepI = pi, PeepF = pf, PeepO = po,
                DPeepI = PeepholeInput is null ? null : dpi, DPeepF = PeepholeForget is null ? null : dpf, DPeepO = PeepholeOutput is null ? null : dpo,
            };
            if (kernel.RowsIndependent) RowKernels.Run(kernel, s.Rows, h);
            else Lanes.Run(kernel);
        }
        Gemm.Multiply(false, s.Rows, 1f, s.DGatesX, gh, Recurrent, 0f, s.DHPrev, h);  // dh_{t−1} = da·W_hh
    }

    // A missing peephole reads as zero weights (and its gradient goes to scratch), so one kernel serves every variant.
    float[] Peephole(Parameter? p) => p?.Value.Data ?? (_zeros ??= new float[HiddenSize]);
    float[] PeepholeGradient(Parameter? p) => p?.Gradient.Data ?? (_zeros ??= new float[HiddenSize]);
}
