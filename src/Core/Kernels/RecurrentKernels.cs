using System.Runtime.CompilerServices;

namespace DeepSeq.Core.Kernels;

// The fused element-wise parts of one recurrent time step, written once over the vector width (ISimd) and run by
// Lanes.Run at the widest accelerated one. The equations are documented on the cells (LstmCell, GruCell, RnnCell);
// buffers are row-major (B, ·) with B = Rows, gate rows G·H wide. Each kernel reads its fields into locals first,
// so the stores through the float pointers cannot make the JIT reload them, and is compiled fully optimised from its
// first call (AggressiveOptimization): the tiered JIT's first tier does not inline, and these bodies are all inlining.

/// <summary>A recurrent step's element-wise kernel over rows that are independent of each other.</summary>
internal interface IRowKernel<TSelf> : IVecKernel where TSelf : struct, IRowKernel<TSelf>
{
    /// <summary>The same kernel over rows [first, first + count) of this one.</summary>
    TSelf Slice(int first, int count);
}

/// <summary>Runs a row kernel, split by rows over the <see cref="WorkerPool"/> when the step is large enough.</summary>
internal static class RowKernels
{
    // Below this many cells a step's element-wise work (a few ns per cell) is shorter than waking a second core.
    const int ParallelCells = 2048;

    /// <summary>Runs <paramref name="kernel"/> over its <paramref name="rows"/> rows of <paramref name="hidden"/> cells.</summary>
    public static void Run<TK>(TK kernel, int rows, int hidden) where TK : struct, IRowKernel<TK>
    {
        int parts = (long)rows * hidden < ParallelCells ? 1 : Math.Min(rows, Gemm.Threads);
        WorkerPool.Run(parts, new Part<TK>(kernel, rows, parts)); // one part runs here, on all the rows
    }

    readonly struct Part<TK>(TK kernel, int rows, int parts) : IPoolWork where TK : struct, IRowKernel<TK>
    {
        public void Run(int part)
        {
            int first = rows * part / parts, end = rows * (part + 1) / parts;
            Lanes.Run(kernel.Slice(first, end - first));
        }
    }
}

/// <summary>LSTM forward: pre-activations (with h_{t−1}·W_hhᵀ added) → gate values in place, c_t, tanh c_t, h_t.</summary>
internal unsafe struct LstmForward : IRowKernel<LstmForward>
{
    public int Rows, Hidden;
    /// <summary>Gate block offsets in a row of gates; <see cref="F"/> &lt; 0 when coupled (f = 1 − i, 3 blocks).</summary>
    public int I, F, G, O;
    public float* Gates, CPrev, C, H, TanhC;
    /// <summary>Peephole weights (H each); zeros for an absent peephole.</summary>
    public float* PeepI, PeepF, PeepO;

    public readonly LstmForward Slice(int first, int count)
    {
        int h = Hidden, gh = (F < 0 ? 3 : 4) * h;
        var k = this;
        k.Rows = count;
        k.Gates += (long)first * gh;
        k.CPrev += (long)first * h; k.C += (long)first * h; k.H += (long)first * h; k.TanhC += (long)first * h;
        return k;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, oi = I, of = F, og = G, oo = O;
        bool coupled = of < 0;
        int gh = (coupled ? 3 : 4) * h;
        float* gates = Gates, cPrev = CPrev, c = C, hOut = H, tanhC = TanhC, pi = PeepI, pf = PeepF, po = PeepO;
        var one = Vec<TV, TO>.One;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh;
            int r = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                // Each gate is stored as soon as it is computed, so that few values are live at once: with 16 vector
                // registers, tanh's constants leave little room, and every live value past that goes to the stack.
                var cp = Lanes.Load<TV, TO>(cPrev + r + j, n);
                var g = Lanes.Tanh(Lanes.Load<TV, TO>(a + og + j, n));
                Lanes.Store(a + og + j, g, n);
                var i = Lanes.Sigmoid(Lanes.Load<TV, TO>(a + oi + j, n) + Lanes.Load<TV, TO>(pi + j, n) * cp);
                Lanes.Store(a + oi + j, i, n);
                var ig = i * g;
                var f = coupled ? one - i : Lanes.Sigmoid(Lanes.Load<TV, TO>(a + of + j, n) + Lanes.Load<TV, TO>(pf + j, n) * cp);
                if (!coupled) Lanes.Store(a + of + j, f, n);
                var cNew = f * cp + ig;
                Lanes.Store(c + r + j, cNew, n);
                var o = Lanes.Sigmoid(Lanes.Load<TV, TO>(a + oo + j, n) + Lanes.Load<TV, TO>(po + j, n) * cNew); // peeks at the new c
                Lanes.Store(a + oo + j, o, n);
                var tc = Lanes.Tanh(cNew);
                Lanes.Store(tanhC + r + j, tc, n);
                Lanes.Store(hOut + r + j, o * tc, n);
            }
        }
    }
}

/// <summary>LSTM backward: dL/d(pre-activations), dc_{t−1}, and the peephole gradients (accumulated).</summary>
internal unsafe struct LstmBackward : IRowKernel<LstmBackward>
{
    public int Rows, Hidden;
    /// <summary>As in <see cref="LstmForward"/>.</summary>
    public int I, F, G, O;
    public float* Gates, CPrev, C, TanhC, DH, DC, DGates, DCPrev;
    /// <summary>Peephole weights (zeros when absent) and their gradients (null when absent).</summary>
    public float* PeepI, PeepF, PeepO, DPeepI, DPeepF, DPeepO;

    /// <summary>True when rows can run apart: no peephole gradient, which every row adds to.</summary>
    public readonly bool RowsIndependent => DPeepI == null && DPeepF == null && DPeepO == null;

    public readonly LstmBackward Slice(int first, int count)
    {
        int h = Hidden, gh = (F < 0 ? 3 : 4) * h;
        var k = this;
        k.Rows = count;
        k.Gates += (long)first * gh; k.DGates += (long)first * gh;
        k.CPrev += (long)first * h; k.C += (long)first * h; k.TanhC += (long)first * h;
        k.DH += (long)first * h; k.DC += (long)first * h; k.DCPrev += (long)first * h;
        return k;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, oi = I, of = F, og = G, oo = O;
        bool coupled = of < 0;
        int gh = (coupled ? 3 : 4) * h;
        float* gates = Gates, cPrev = CPrev, c = C, tanhC = TanhC, dhIn = DH, dcIn = DC, da = DGates, dcOut = DCPrev;
        float* pi = PeepI, pf = PeepF, po = PeepO, dpi = DPeepI, dpf = DPeepF, dpo = DPeepO;
        var one = Vec<TV, TO>.One;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh, d = da + b * gh;
            int r = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                var i = Lanes.Load<TV, TO>(a + oi + j, n); var g = Lanes.Load<TV, TO>(a + og + j, n); var o = Lanes.Load<TV, TO>(a + oo + j, n);
                var f = coupled ? one - i : Lanes.Load<TV, TO>(a + of + j, n);
                var cp = Lanes.Load<TV, TO>(cPrev + r + j, n); var cNew = Lanes.Load<TV, TO>(c + r + j, n); var tc = Lanes.Load<TV, TO>(tanhC + r + j, n);
                var dh = Lanes.Load<TV, TO>(dhIn + r + j, n);
                var dao = dh * tc * o * (one - o);                                                // h = o ⊙ tanh(c)
                var dc = Lanes.Load<TV, TO>(dcIn + r + j, n) + dh * o * (one - tc * tc) + dao * Lanes.Load<TV, TO>(po + j, n);
                var dai = dc * g * i * (one - i);                                                // c = f ⊙ c_{t−1} + i ⊙ g
                var dag = dc * i * (one - g * g);
                var dcp = dc * f;
                Vec<TV, TO> daf = default;
                if (coupled) dai -= dc * cp * i * (one - i);                                      // f = 1 − i
                else daf = dc * cp * f * (one - f);
                dcp += dai * Lanes.Load<TV, TO>(pi + j, n) + daf * Lanes.Load<TV, TO>(pf + j, n);         // peepholes read c_{t−1}
                Lanes.Store(d + oi + j, dai, n); Lanes.Store(d + og + j, dag, n); Lanes.Store(d + oo + j, dao, n);
                if (!coupled) Lanes.Store(d + of + j, daf, n);
                Lanes.Store(dcOut + r + j, dcp, n);
                if (dpi != null) Lanes.Store(dpi + j, Lanes.Load<TV, TO>(dpi + j, n) + dai * cp, n);
                if (dpf != null) Lanes.Store(dpf + j, Lanes.Load<TV, TO>(dpf + j, n) + daf * cp, n);
                if (dpo != null) Lanes.Store(dpo + j, Lanes.Load<TV, TO>(dpo + j, n) + dao * cNew, n);
            }
        }
    }
}

/// <summary>
/// GRU forward, reset after the recurrent matmul: input-side pre-activations and hh = h_{t−1}·W_hhᵀ (3H each)
/// → r, z, n in place, h_t, and W_hn·h_{t−1} + b_hn kept for backward.
/// </summary>
internal unsafe struct GruForward : IRowKernel<GruForward>
{
    public int Rows, Hidden;
    public float* Gates, Recurrent, BiasHh, HPrev, H, Hn;

    public readonly GruForward Slice(int first, int count)
    {
        int h = Hidden;
        var k = this;
        k.Rows = count;
        k.Gates += (long)first * 3 * h; k.Recurrent += (long)first * 3 * h;
        k.HPrev += (long)first * h; k.H += (long)first * h; k.Hn += (long)first * h;
        return k;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, gh = 3 * h;
        float* gates = Gates, hh = Recurrent, bias = BiasHh, hPrev = HPrev, hOut = H, hnOut = Hn;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh, rec = hh + b * gh;
            int row = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                var r = Lanes.Sigmoid(Lanes.Load<TV, TO>(a + j, n) + Lanes.Load<TV, TO>(rec + j, n) + Lanes.Load<TV, TO>(bias + j, n));
                var z = Lanes.Sigmoid(Lanes.Load<TV, TO>(a + h + j, n) + Lanes.Load<TV, TO>(rec + h + j, n) + Lanes.Load<TV, TO>(bias + h + j, n));
                var hn = Lanes.Load<TV, TO>(rec + 2 * h + j, n) + Lanes.Load<TV, TO>(bias + 2 * h + j, n);      // W_hn·h_{t−1} + b_hn
                var nn = Lanes.Tanh(Lanes.Load<TV, TO>(a + 2 * h + j, n) + r * hn);
                var hp = Lanes.Load<TV, TO>(hPrev + row + j, n);
                Lanes.Store(a + j, r, n); Lanes.Store(a + h + j, z, n); Lanes.Store(a + 2 * h + j, nn, n);
                Lanes.Store(hnOut + row + j, hn, n);
                Lanes.Store(hOut + row + j, nn + z * (hp - nn), n);                                   // (1 − z) ⊙ n + z ⊙ h_{t−1}
            }
        }
    }
}

/// <summary>
/// GRU backward, reset after the recurrent matmul: the input-side pre-activation gradients (3H) and the
/// recurrent-side ones (3H; the n block is scaled by r).
/// </summary>
internal unsafe struct GruBackward : IRowKernel<GruBackward>
{
    public int Rows, Hidden;
    public float* Gates, HPrev, Hn, DH, DGatesX, DGatesH;

    public readonly GruBackward Slice(int first, int count)
    {
        int h = Hidden;
        var k = this;
        k.Rows = count;
        k.Gates += (long)first * 3 * h; k.DGatesX += (long)first * 3 * h; k.DGatesH += (long)first * 3 * h;
        k.HPrev += (long)first * h; k.Hn += (long)first * h; k.DH += (long)first * h;
        return k;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, gh = 3 * h;
        float* gates = Gates, hPrev = HPrev, hnIn = Hn, dhIn = DH, dgx = DGatesX, dgh = DGatesH;
        var one = Vec<TV, TO>.One;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh, dx = dgx + b * gh, dhh = dgh + b * gh;
            int row = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                var r = Lanes.Load<TV, TO>(a + j, n); var z = Lanes.Load<TV, TO>(a + h + j, n); var nn = Lanes.Load<TV, TO>(a + 2 * h + j, n);
                var hp = Lanes.Load<TV, TO>(hPrev + row + j, n); var hn = Lanes.Load<TV, TO>(hnIn + row + j, n); var dh = Lanes.Load<TV, TO>(dhIn + row + j, n);
                var dan = dh * (one - z) * (one - nn * nn);
                var dar = dan * hn * r * (one - r);
                var daz = dh * (hp - nn) * z * (one - z);
                Lanes.Store(dx + j, dar, n); Lanes.Store(dx + h + j, daz, n); Lanes.Store(dx + 2 * h + j, dan, n);
                Lanes.Store(dhh + j, dar, n); Lanes.Store(dhh + h + j, daz, n);
                Lanes.Store(dhh + 2 * h + j, dan * r, n);                                        // d/d(W_hn·h + b_hn) = dan ⊙ r
            }
        }
    }
}

/// <summary>
/// GRU backward, reset before the recurrent matmul, first part: the z and n blocks of the pre-activation
/// gradients (the r block needs d(r ⊙ h_{t−1}) first: <see cref="GruResetGradient"/>).
/// </summary>
internal unsafe struct GruUpdateGradient : IVecKernel
{
    public int Rows, Hidden;
    public float* Gates, HPrev, DH, DGates;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, gh = 3 * h;
        float* gates = Gates, hPrev = HPrev, dhIn = DH, dgx = DGates;
        var one = Vec<TV, TO>.One;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh, dx = dgx + b * gh;
            int row = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                var z = Lanes.Load<TV, TO>(a + h + j, n); var nn = Lanes.Load<TV, TO>(a + 2 * h + j, n);
                var hp = Lanes.Load<TV, TO>(hPrev + row + j, n); var dh = Lanes.Load<TV, TO>(dhIn + row + j, n);
                Lanes.Store(dx + h + j, dh * (hp - nn) * z * (one - z), n);
                Lanes.Store(dx + 2 * h + j, dh * (one - z) * (one - nn * nn), n);
            }
        }
    }
}

/// <summary>GRU backward, reset before the recurrent matmul: the r block, da_r = d(r ⊙ h_{t−1}) ⊙ h_{t−1} ⊙ r(1 − r).</summary>
internal unsafe struct GruResetGradient : IVecKernel
{
    public int Rows, Hidden;
    /// <summary>(B, H): dL/d(r ⊙ h_{t−1}).</summary>
    public float* DResetH;
    public float* Gates, HPrev, DGates;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int h = Hidden, gh = 3 * h;
        float* gates = Gates, hPrev = HPrev, drh = DResetH, dgx = DGates;
        var one = Vec<TV, TO>.One;
        for (int b = 0; b < Rows; b++)
        {
            float* a = gates + b * gh, dx = dgx + b * gh;
            int row = b * h;
            for (int j = 0; j < h; j += TO.Count)
            {
                int n = Math.Min(TO.Count, h - j);
                var r = Lanes.Load<TV, TO>(a + j, n);
                Lanes.Store(dx + j, Lanes.Load<TV, TO>(drh + row + j, n) * Lanes.Load<TV, TO>(hPrev + row + j, n) * r * (one - r), n);
            }
        }
    }
}

/// <summary>Elman RNN forward over Length = B·H values: a → act(a) in place, copied to h_t.</summary>
internal unsafe struct RnnForward : IVecKernel
{
    public int Length;
    /// <summary>ReLU; tanh otherwise.</summary>
    public bool Relu;
    public float* Gates, H;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int len = Length;
        bool relu = Relu;
        float* gates = Gates, hOut = H;
        for (int j = 0; j < len; j += TO.Count)
        {
            int n = Math.Min(TO.Count, len - j);
            var x = Lanes.Load<TV, TO>(gates + j, n);
            var y = relu ? Vec<TV, TO>.Max(default, x) : Lanes.Tanh(x); // x second: NaN stays NaN
            Lanes.Store(gates + j, y, n);
            Lanes.Store(hOut + j, y, n);
        }
    }
}

/// <summary>Elman RNN backward: da = dh ⊙ act′, from y alone (tanh′ = 1 − y², ReLU′ = [y &gt; 0]).</summary>
internal unsafe struct RnnBackward : IVecKernel
{
    public int Length;
    /// <summary>ReLU; tanh otherwise.</summary>
    public bool Relu;
    public float* Gates, DH, DGates;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int len = Length;
        bool relu = Relu;
        float* y = Gates, dhIn = DH, da = DGates;
        var one = Vec<TV, TO>.One;
        for (int j = 0; j < len; j += TO.Count)
        {
            int n = Math.Min(TO.Count, len - j);
            var yj = Lanes.Load<TV, TO>(y + j, n); var dh = Lanes.Load<TV, TO>(dhIn + j, n);
            Lanes.Store(da + j, relu ? Vec<TV, TO>.IfPositive(yj, dh) : dh * (one - yj * yj), n);
        }
    }
}
