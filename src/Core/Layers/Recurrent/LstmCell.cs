using System.Runtime.Intrinsics;
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
        {
            for (int b = 0; b < s.Rows; b++)
            {
                float* a = gates + b * gh;
                int r = b * h;
                for (int j = 0; j < h; j += Lanes.Width)
                {
                    int n = Math.Min(Lanes.Width, h - j);
                    var cp = Lanes.Load(cPrev + r + j, n);
                    var i = Lanes.Sigmoid(Lanes.Load(a + _i + j, n) + Lanes.Load(pi + j, n) * cp);
                    var f = Coupled ? Vector256<float>.One - i : Lanes.Sigmoid(Lanes.Load(a + _f + j, n) + Lanes.Load(pf + j, n) * cp);
                    var g = Lanes.Tanh(Lanes.Load(a + _g + j, n));
                    var cNew = f * cp + i * g;
                    var o = Lanes.Sigmoid(Lanes.Load(a + _o + j, n) + Lanes.Load(po + j, n) * cNew); // peeks at the new c
                    var tc = Lanes.Tanh(cNew);
                    Lanes.Store(a + _i + j, i, n); Lanes.Store(a + _g + j, g, n); Lanes.Store(a + _o + j, o, n);
                    if (!Coupled) Lanes.Store(a + _f + j, f, n);
                    Lanes.Store(c + r + j, cNew, n);
                    Lanes.Store(tanhC + r + j, tc, n);
                    Lanes.Store(hOut + r + j, o * tc, n);
                }
            }
        }
    }

    internal override void BackwardStep(in StepBackward s)
    {
        int h = HiddenSize, gh = GateCount * h;
        fixed (float* gates = s.Gates, cPrev = s.CPrev, c = s.C, tanhC = s.Cache, dhIn = s.DH, dcIn = s.DC, da = s.DGatesX, dcOut = s.DCPrev)
        fixed (float* pi = Peephole(PeepholeInput), pf = Peephole(PeepholeForget), po = Peephole(PeepholeOutput))
        fixed (float* dpi = PeepholeGradient(PeepholeInput), dpf = PeepholeGradient(PeepholeForget), dpo = PeepholeGradient(PeepholeOutput))
        {
            var one = Vector256<float>.One;
            for (int b = 0; b < s.Rows; b++)
            {
                float* a = gates + b * gh, d = da + b * gh;
                int r = b * h;
                for (int j = 0; j < h; j += Lanes.Width)
                {
                    int n = Math.Min(Lanes.Width, h - j);
                    var i = Lanes.Load(a + _i + j, n); var g = Lanes.Load(a + _g + j, n); var o = Lanes.Load(a + _o + j, n);
                    var f = Coupled ? one - i : Lanes.Load(a + _f + j, n);
                    var cp = Lanes.Load(cPrev + r + j, n); var cNew = Lanes.Load(c + r + j, n); var tc = Lanes.Load(tanhC + r + j, n);
                    var dh = Lanes.Load(dhIn + r + j, n);
                    var dao = dh * tc * o * (one - o);                                   // h = o ⊙ tanh(c)
                    var dc = Lanes.Load(dcIn + r + j, n) + dh * o * (one - tc * tc) + dao * Lanes.Load(po + j, n);
                    var dai = dc * g * i * (one - i);                                   // c = f ⊙ c_{t−1} + i ⊙ g
                    var dag = dc * i * (one - g * g);
                    var dcp = dc * f;
                    Vector256<float> daf = default;
                    if (Coupled) dai -= dc * cp * i * (one - i);                         // f = 1 − i
                    else daf = dc * cp * f * (one - f);
                    dcp += dai * Lanes.Load(pi + j, n) + daf * Lanes.Load(pf + j, n);    // peepholes read c_{t−1}
                    Lanes.Store(d + _i + j, dai, n); Lanes.Store(d + _g + j, dag, n); Lanes.Store(d + _o + j, dao, n);
                    if (!Coupled) Lanes.Store(d + _f + j, daf, n);
                    Lanes.Store(dcOut + r + j, dcp, n);
                    if (PeepholeInput is not null) Lanes.Store(dpi + j, Lanes.Load(dpi + j, n) + dai * cp, n);
                    if (PeepholeForget is not null) Lanes.Store(dpf + j, Lanes.Load(dpf + j, n) + daf * cp, n);
                    if (PeepholeOutput is not null) Lanes.Store(dpo + j, Lanes.Load(dpo + j, n) + dao * cNew, n);
                }
            }
        }
        Gemm.Multiply(false, s.Rows, 1f, s.DGatesX, gh, Recurrent, 0f, s.DHPrev, h);  // dh_{t−1} = da·W_hh
    }

    // A missing peephole reads as zero weights (and its gradient goes to scratch), so one kernel serves every variant.
    float[] Peephole(Parameter? p) => p?.Value.Data ?? (_zeros ??= new float[HiddenSize]);
    float[] PeepholeGradient(Parameter? p) => p?.Gradient.Data ?? (_zeros ??= new float[HiddenSize]);
}
