using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>Where the GRU applies its reset gate to the previous state.</summary>
public enum GruResetPlacement
{
    /// <summary>
    /// n = tanh(W_in·x + b_in + r ⊙ (W_hn·h_{t−1} + b_hn)): after the recurrent matmul. PyTorch, cuDNN, the Keras
    /// default (<c>reset_after=True</c>) and ONNX <c>linear_before_reset=1</c>.
    /// </summary>
    AfterRecurrentMatmul,
    /// <summary>
    /// n = tanh(W_in·x + b_in + W_hn·(r ⊙ h_{t−1}) + b_hn): before it, as in Cho et al. 2014 and the ONNX default.
    /// </summary>
    BeforeRecurrentMatmul,
}

/// <summary>
/// Gated recurrent unit in PyTorch's gate order [r, z, n]:
/// <code>
/// r = σ(W_ir·x + b_ir + W_hr·h_{t−1} + b_hr)
/// z = σ(W_iz·x + b_iz + W_hz·h_{t−1} + b_hz)
/// n = tanh(W_in·x + b_in + r ⊙ (W_hn·h_{t−1} + b_hn))      AfterRecurrentMatmul
/// n = tanh(W_in·x + b_in + W_hn·(r ⊙ h_{t−1}) + b_hn)      BeforeRecurrentMatmul
/// h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
/// </code>
/// </summary>
public sealed unsafe class GruCell : RecurrentCell
{
    readonly PackedMatrix? _rzT, _nT, _rz, _n; // BeforeRecurrentMatmul: W_hh split into its [r, z] and n blocks
    float[]? _hh;   // (B, 3H) scratch: recurrent pre-activations of one step (AfterRecurrentMatmul)
    float[]? _drh;  // (B, H) scratch: dL/d(r ⊙ h_{t−1}) (BeforeRecurrentMatmul)

    /// <summary>Creates the cell with zero weights.</summary>
    public GruCell(int inputSize, int hiddenSize, GruResetPlacement reset = GruResetPlacement.AfterRecurrentMatmul)
        : base(inputSize, hiddenSize, 3)
    {
        Reset = reset;
        if (reset == GruResetPlacement.BeforeRecurrentMatmul)
        {
            _rzT = new PackedMatrix(hiddenSize, 2 * hiddenSize); _nT = new PackedMatrix(hiddenSize, hiddenSize);
            _rz = new PackedMatrix(2 * hiddenSize, hiddenSize); _n = new PackedMatrix(hiddenSize, hiddenSize);
        }
    }

    /// <summary>Where the reset gate is applied.</summary>
    public GruResetPlacement Reset { get; }
    bool After => Reset == GruResetPlacement.AfterRecurrentMatmul;

    // After: b_hn is multiplied by r, so b_hh is added per step. Before: the cache holds r ⊙ h_{t−1}.
    internal override bool RecurrentBiasInProjection => !After;
    internal override bool SeparateRecurrentGradient => After;
    internal override bool JointWeightGradient => false; // After: dG_h differs; before: W_hn's rows read r ⊙ h_{t−1}
    internal override int CacheWidth => HiddenSize; // After: W_hn·h_{t−1} + b_hn; Before: r ⊙ h_{t−1}

    int RzWeights => 2 * HiddenSize * HiddenSize; // values of W_hh's [r, z] block

    internal override void PackForForward()
    {
        if (After) { base.PackForForward(); return; }
        var w = WeightHh.Value.Data.AsSpan();
        _rzT!.PackIfChanged(true, w[..RzWeights], HiddenSize, WeightHh.Version);
        _nT!.PackIfChanged(true, w[RzWeights..], HiddenSize, WeightHh.Version);
    }

    internal override void PackForBackward()
    {
        if (After) { base.PackForBackward(); return; }
        var w = WeightHh.Value.Data.AsSpan();
        _rz!.PackIfChanged(false, w[..RzWeights], HiddenSize, WeightHh.Version);
        _n!.PackIfChanged(false, w[RzWeights..], HiddenSize, WeightHh.Version);
    }

    internal override void ForwardStep(in StepForward s)
    {
        int h = HiddenSize, gh = 3 * h;
        if (After)
        {
            var hh = Buffer.Ensure(ref _hh, s.Rows * gh).AsSpan(0, s.Rows * gh);
            Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, RecurrentT, 0f, hh, gh);        // hh = h_{t−1}·W_hhᵀ
            fixed (float* gates = s.Gates, hhp = hh, bias = BiasHh.Value.Data, hPrev = s.HPrev, hOut = s.H, hnOut = s.Cache)
                RowKernels.Run(new GruForward { Rows = s.Rows, Hidden = h, Gates = gates, Recurrent = hhp, BiasHh = bias, HPrev = hPrev, H = hOut, Hn = hnOut }, s.Rows, h);
        }
        else
        {
            Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, _rzT!, 1f, s.Gates, gh);          // a_rz += h_{t−1}·W_h[rz]ᵀ
            for (int b = 0; b < s.Rows; b++)
            {
                var rz = s.Gates.Slice(b * gh, 2 * h);
                TensorPrimitives.Sigmoid(rz, rz);
                TensorPrimitives.Multiply(rz[..h], s.HPrev.Slice(b * h, h), s.Cache.Slice(b * h, h)); // r ⊙ h_{t−1}
            }
            Gemm.Multiply(false, s.Rows, 1f, s.Cache, h, _nT!, 1f, s.Gates[(2 * h)..], gh); // a_n += (r ⊙ h)·W_hnᵀ
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var n = a.Slice(2 * h, h);
                TensorPrimitives.Tanh(n, n);
                Blend(s.H.Slice(b * h, h), n, a.Slice(h, h), s.HPrev.Slice(b * h, h));
            }
        }
    }

    // h = (1 − z) ⊙ n + z ⊙ h_{t−1} = n + z ⊙ (h_{t−1} − n)
    static void Blend(Span<float> hOut, ReadOnlySpan<float> n, ReadOnlySpan<float> z, ReadOnlySpan<float> hPrev)
    {
        TensorPrimitives.Subtract(hPrev, n, hOut);
        TensorPrimitives.FusedMultiplyAdd(z, hOut, n, hOut);
    }

    internal override void BackwardStep(in StepBackward s)
    {
        int h = HiddenSize, gh = 3 * h;
        if (After)
        {
            fixed (float* gates = s.Gates, hPrev = s.HPrev, hnIn = s.Cache, dhIn = s.DH, dgx = s.DGatesX, dgh = s.DGatesH)
                RowKernels.Run(new GruBackward { Rows = s.Rows, Hidden = h, Gates = gates, HPrev = hPrev, Hn = hnIn, DH = dhIn, DGatesX = dgx, DGatesH = dgh }, s.Rows, h);
            Gemm.Multiply(false, s.Rows, 1f, s.DGatesH, gh, Recurrent, 0f, s.DHPrev, h);   // dh_{t−1} = dhh·W_hh
        }
        else
        {
            fixed (float* gates = s.Gates, hPrev = s.HPrev, dhIn = s.DH, dgx = s.DGatesX)
                Lanes.Run(new GruUpdateGradient { Rows = s.Rows, Hidden = h, Gates = gates, HPrev = hPrev, DH = dhIn, DGates = dgx });
            var drh = Buffer.Ensure(ref _drh, s.Rows * h).AsSpan(0, s.Rows * h);
            Gemm.Multiply(false, s.Rows, 1f, s.DGatesX[(2 * h)..], gh, _n!, 0f, drh, h);   // d(r ⊙ h) = da_n·W_hn
            fixed (float* gates = s.Gates, hPrev = s.HPrev, drhp = drh, dgx = s.DGatesX)
                Lanes.Run(new GruResetGradient { Rows = s.Rows, Hidden = h, DResetH = drhp, Gates = gates, HPrev = hPrev, DGates = dgx });
            Gemm.Multiply(false, s.Rows, 1f, s.DGatesX, gh, _rz!, 0f, s.DHPrev, h);         // dh_{t−1} = da_rz·W_h[rz] …
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var dhp = s.DHPrev.Slice(b * h, h);
                TensorPrimitives.FusedMultiplyAdd(drh.Slice(b * h, h), a[..h], dhp, dhp);   // … + d(r ⊙ h) ⊙ r
            }
        }
        for (int b = 0; b < s.Rows; b++)                                                     // … + dh ⊙ z
        {
            var dhp = s.DHPrev.Slice(b * h, h);
            TensorPrimitives.FusedMultiplyAdd(s.DH.Slice(b * h, h), s.Gates.Slice(b * gh + h, h), dhp, dhp);
        }
    }

    internal override void AccumulateRecurrentWeightGradient(ReadOnlySpan<float> dGatesH, ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cache, int rows)
    {
        if (After) { base.AccumulateRecurrentWeightGradient(dGatesH, hPrev, cache, rows); return; }
        int h = HiddenSize, gh = 3 * h;
        var dw = WeightHh.Gradient.Data.AsSpan();
        Gemm.Multiply(true, false, 2 * h, h, rows, 1f, dGatesH, gh, hPrev, h, 1f, dw[..RzWeights], h);       // [r, z] rows read h_{t−1}
        Gemm.Multiply(true, false, h, h, rows, 1f, dGatesH[(2 * h)..], gh, cache, h, 1f, dw[RzWeights..], h); // n rows read r ⊙ h_{t−1}
    }
}
