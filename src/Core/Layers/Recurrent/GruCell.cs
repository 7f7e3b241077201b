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
public sealed class GruCell : RecurrentCell
{
    readonly PackedMatrix? _rzT, _nT, _rz, _n; // BeforeRecurrentMatmul: W_hh split into its [r, z] and n blocks
    float[]? _hh;   // (B, 3H) scratch: recurrent pre-activations of one step (AfterRecurrentMatmul)
    float[]? _drh;  // (B, H) scratch: dL/d(r ⊙ h_{t−1}) (BeforeRecurrentMatmul)

    /// <summary>Creates the cell with zero weights.</summary>
    public GruCell(int inputSize, int hiddenSize, GruResetPlacement reset = GruResetPlacement.AfterRecurrentMatmul, string suffix = "")
        : base(inputSize, hiddenSize, 3, suffix)
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
    internal override int CacheWidth => HiddenSize; // After: W_hn·h_{t−1} + b_hn; Before: r ⊙ h_{t−1}

    int RzWeights => 2 * HiddenSize * HiddenSize; // values of W_hh's [r, z] block

    internal override void PackForForward()
    {
        if (After) { base.PackForForward(); return; }
        var w = WeightHh.Value.Data.AsSpan();
        _rzT!.Pack(true, w[..RzWeights], HiddenSize);
        _nT!.Pack(true, w[RzWeights..], HiddenSize);
    }

    internal override void PackForBackward()
    {
        if (After) { base.PackForBackward(); return; }
        var w = WeightHh.Value.Data.AsSpan();
        _rz!.Pack(false, w[..RzWeights], HiddenSize);
        _n!.Pack(false, w[RzWeights..], HiddenSize);
    }

    internal override void ForwardStep(in StepForward s)
    {
        int h = HiddenSize, gh = 3 * h;
        if (After)
        {
            var hh = Buffer.Ensure(ref _hh, s.Rows * gh).AsSpan(0, s.Rows * gh);
            Gemm.Multiply(false, s.Rows, 1f, s.HPrev, h, RecurrentT, 0f, hh, gh);        // hh = h_{t−1}·W_hhᵀ
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var hhRow = hh.Slice(b * gh, gh);
                TensorPrimitives.Add(hhRow, BiasHh.Value.Data, hhRow);                      // + b_hh
                var rz = a[..(2 * h)];
                TensorPrimitives.Add(rz, hhRow[..(2 * h)], rz);
                TensorPrimitives.Sigmoid(rz, rz);
                var hn = s.Cache.Slice(b * h, h);
                hhRow.Slice(2 * h, h).CopyTo(hn);                                            // keep W_hn·h + b_hn
                var n = a.Slice(2 * h, h);
                TensorPrimitives.FusedMultiplyAdd(a[..h], hn, n, n);                         // n = tanh(x_n + r ⊙ hn)
                TensorPrimitives.Tanh(n, n);
                Blend(s.H.Slice(b * h, h), n, a.Slice(h, h), s.HPrev.Slice(b * h, h));
            }
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
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var dx = s.DGatesX.Slice(b * gh, gh);
                var dhh = s.DGatesH.Slice(b * gh, gh);
                int row = b * h;
                for (int j = 0; j < h; j++)
                {
                    float r = a[j], z = a[h + j], n = a[2 * h + j], hp = s.HPrev[row + j], hn = s.Cache[row + j], dh = s.DH[row + j];
                    float dan = dh * (1f - z) * (1f - n * n);
                    float dar = dan * hn * r * (1f - r);
                    float daz = dh * (hp - n) * z * (1f - z);
                    dx[j] = dar; dx[h + j] = daz; dx[2 * h + j] = dan;
                    dhh[j] = dar; dhh[h + j] = daz; dhh[2 * h + j] = dan * r;         // d/d(W_hn·h + b_hn) = dan ⊙ r
                }
            }
            Gemm.Multiply(false, s.Rows, 1f, s.DGatesH, gh, Recurrent, 0f, s.DHPrev, h);   // dh_{t−1} = dhh·W_hh
        }
        else
        {
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var dx = s.DGatesX.Slice(b * gh, gh);
                int row = b * h;
                for (int j = 0; j < h; j++)
                {
                    float z = a[h + j], n = a[2 * h + j], hp = s.HPrev[row + j], dh = s.DH[row + j];
                    dx[h + j] = dh * (hp - n) * z * (1f - z);
                    dx[2 * h + j] = dh * (1f - z) * (1f - n * n);
                }
            }
            var drh = Buffer.Ensure(ref _drh, s.Rows * h).AsSpan(0, s.Rows * h);
            Gemm.Multiply(false, s.Rows, 1f, s.DGatesX[(2 * h)..], gh, _n!, 0f, drh, h);   // d(r ⊙ h) = da_n·W_hn
            for (int b = 0; b < s.Rows; b++)
            {
                var a = s.Gates.Slice(b * gh, gh);
                var dx = s.DGatesX.Slice(b * gh, gh);
                int row = b * h;
                for (int j = 0; j < h; j++)
                {
                    float r = a[j], hp = s.HPrev[row + j];
                    dx[j] = drh[row + j] * hp * r * (1f - r);
                }
            }
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
