using System.Runtime.Intrinsics;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Tests;

/// <summary>
/// Runs a kernel at a chosen width of the ladder, accelerated or not: a width the machine lacks runs on the
/// runtime's software fallback, so every width's kernel is checked everywhere (the one the process really uses is
/// also covered through the cells by the gradient and parity tests).
/// </summary>
internal static class Widths
{
    public static IEnumerable<object[]> All() => [[512], [256], [128], [32]];

    /// <summary>Float lanes of a width (32 bits: the scalar kernels, one lane).</summary>
    public static int Lanes(int bits) => bits / 32;

    public static bool Accelerated(int bits) => bits switch
    {
        512 => Vector512.IsHardwareAccelerated,
        256 => Vector256.IsHardwareAccelerated,
        128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    public static void Run<TKernel>(TKernel kernel, int bits) where TKernel : IVecKernel, allows ref struct
    {
        switch (bits)
        {
            case 512: kernel.Run<Vector512<float>, Simd512>(); break;
            case 256: kernel.Run<Vector256<float>, Simd256>(); break;
            case 128: kernel.Run<Vector128<float>, Simd128>(); break;
            case 32: kernel.Run<float, SimdScalar>(); break;
            default: throw new ArgumentOutOfRangeException(nameof(bits), bits, "No such width.");
        }
    }

    /// <summary>Hidden sizes 1 … 3·lanes + 1: whole vectors, and every tail length after them.</summary>
    public static IEnumerable<int> Lengths(int bits) => Enumerable.Range(1, 3 * Lanes(bits) + 1);
}

/// <summary>
/// The fused element-wise kernels at every width of the ladder against plain double-precision equations, at every
/// length from one lane to three whole vectors and a tail, over two batch rows (so rows start unaligned).
/// </summary>
[TestClass]
public sealed unsafe class KernelTests
{
    const int Rows = 2;
    const double Rel = 1e-5, Abs = 1e-6;

    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> Widths() => Tests.Widths.All();

    // Which widths this process accelerates, as the CI's vector-path legs print it; the legs' settings must have
    // taken effect, or a leg would silently test the default path again.
    [TestMethod]
    public void ReportsVectorPaths()
    {
        TestContext.WriteLine($"vector paths: {Lanes.Describe()}");
        Assert.AreEqual(Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 32, Lanes.Bits);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableHWIntrinsic") == "0") Assert.AreEqual(32, Lanes.Bits);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0") Assert.IsLessThanOrEqualTo(128, Lanes.Bits);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0") Assert.IsLessThanOrEqualTo(256, Lanes.Bits);
    }

    static float[] Uniform(int n, Random rng, double lo, double hi)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * rng.NextDouble());
        return a;
    }

    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    static void Close(double[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
            Assert.IsLessThanOrEqualTo(Abs + Rel * Math.Abs(expected[i]), Math.Abs(expected[i] - actual[i]), $"{what}[{i}]: expected {expected[i]:G9}, got {actual[i]:G9}");
    }

    static double[] Doubles(float[] a) => [.. a.Select(x => (double)x)];

    // (coupled, peepholes): plain, all three peepholes, coupled, coupled with its two peepholes.
    static readonly (bool Coupled, bool Peepholes)[] LstmVariants = [(false, false), (false, true), (true, false), (true, true)];

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void LstmForwardMatchesEquations(int bits)
    {
        foreach (var (coupled, peep) in LstmVariants)
            foreach (int h in Tests.Widths.Lengths(bits))
            {
                var rng = new Random(h * 7 + bits);
                int blocks = coupled ? 3 : 4, gh = blocks * h;
                int oi = 0, of = coupled ? -1 : h, og = coupled ? h : 2 * h, oo = coupled ? 2 * h : 3 * h;
                var gates = Uniform(Rows * gh, rng, -4, 4); var cPrev = Uniform(Rows * h, rng, -2, 2);
                var pi = peep ? Uniform(h, rng, -1, 1) : new float[h]; var pf = peep && !coupled ? Uniform(h, rng, -1, 1) : new float[h];
                var po = peep ? Uniform(h, rng, -1, 1) : new float[h];
                var eGates = Doubles(gates); var eC = new double[Rows * h]; var eTc = new double[Rows * h]; var eH = new double[Rows * h];
                for (int b = 0; b < Rows; b++)
                    for (int j = 0; j < h; j++)
                    {
                        int g0 = b * gh, r = b * h + j;
                        double cp = cPrev[r];
                        double i = Sigmoid(gates[g0 + oi + j] + (double)pi[j] * cp);
                        double f = coupled ? 1 - i : Sigmoid(gates[g0 + of + j] + (double)pf[j] * cp);
                        double g = Math.Tanh(gates[g0 + og + j]);
                        double c = f * cp + i * g;
                        double o = Sigmoid(gates[g0 + oo + j] + (double)po[j] * c);
                        eGates[g0 + oi + j] = i; eGates[g0 + og + j] = g; eGates[g0 + oo + j] = o;
                        if (!coupled) eGates[g0 + of + j] = f;
                        eC[r] = c; eTc[r] = Math.Tanh(c); eH[r] = o * Math.Tanh(c);
                    }
                var c1 = new float[Rows * h]; var tc1 = new float[Rows * h]; var h1 = new float[Rows * h];
                fixed (float* pg = gates, pcp = cPrev, pc = c1, ptc = tc1, ph = h1, ppi = pi, ppf = pf, ppo = po)
                    Tests.Widths.Run(new LstmForward
                    {
                        Rows = Rows, Hidden = h, I = oi, F = of, G = og, O = oo,
                        Gates = pg, CPrev = pcp, C = pc, H = ph, TanhC = ptc, PeepI = ppi, PeepF = ppf, PeepO = ppo,
                    }, bits);
                string what = $"{bits}-bit H={h} coupled={coupled} peepholes={peep}";
                Close(eGates, gates, what + " gates"); Close(eC, c1, what + " c"); Close(eTc, tc1, what + " tanh c"); Close(eH, h1, what + " h");
            }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void LstmBackwardMatchesEquations(int bits)
    {
        foreach (var (coupled, peep) in LstmVariants)
            foreach (int h in Tests.Widths.Lengths(bits))
            {
                var rng = new Random(h * 11 + bits);
                int blocks = coupled ? 3 : 4, gh = blocks * h;
                int oi = 0, of = coupled ? -1 : h, og = coupled ? h : 2 * h, oo = coupled ? 2 * h : 3 * h;
                var gates = new float[Rows * gh];
                for (int b = 0; b < Rows; b++)
                    for (int j = 0; j < h; j++)
                    {
                        int g0 = b * gh;
                        gates[g0 + oi + j] = (float)rng.NextDouble(); gates[g0 + oo + j] = (float)rng.NextDouble();
                        gates[g0 + og + j] = (float)(2 * rng.NextDouble() - 1);
                        if (!coupled) gates[g0 + of + j] = (float)rng.NextDouble();
                    }
                var cPrev = Uniform(Rows * h, rng, -2, 2); var c = Uniform(Rows * h, rng, -2, 2); var tanhC = c.Select(MathF.Tanh).ToArray();
                var dh = Uniform(Rows * h, rng, -1, 1); var dc = Uniform(Rows * h, rng, -1, 1);
                var pi = peep ? Uniform(h, rng, -1, 1) : new float[h]; var pf = peep && !coupled ? Uniform(h, rng, -1, 1) : new float[h];
                var po = peep ? Uniform(h, rng, -1, 1) : new float[h];
                var dpi = Uniform(h, rng, -1, 1); var dpf = Uniform(h, rng, -1, 1); var dpo = Uniform(h, rng, -1, 1); // accumulated into
                var eDa = new double[Rows * gh]; var eDcp = new double[Rows * h];
                double[] eDpi = Doubles(dpi), eDpf = Doubles(dpf), eDpo = Doubles(dpo);
                for (int b = 0; b < Rows; b++)
                    for (int j = 0; j < h; j++)
                    {
                        int g0 = b * gh, r = b * h + j;
                        double i = gates[g0 + oi + j], g = gates[g0 + og + j], o = gates[g0 + oo + j];
                        double f = coupled ? 1 - i : gates[g0 + of + j];
                        double cp = cPrev[r], cn = c[r], tc = tanhC[r], dhr = dh[r];
                        double dao = dhr * tc * o * (1 - o);
                        double dcr = dc[r] + dhr * o * (1 - tc * tc) + dao * po[j];
                        double dai = dcr * g * i * (1 - i), dag = dcr * i * (1 - g * g), daf = 0;
                        if (coupled) dai -= dcr * cp * i * (1 - i);
                        else daf = dcr * cp * f * (1 - f);
                        eDa[g0 + oi + j] = dai; eDa[g0 + og + j] = dag; eDa[g0 + oo + j] = dao;
                        if (!coupled) eDa[g0 + of + j] = daf;
                        eDcp[r] = dcr * f + dai * pi[j] + daf * pf[j];
                        if (peep) { eDpi[j] += dai * cp; eDpo[j] += dao * cn; if (!coupled) eDpf[j] += daf * cp; }
                    }
                var da = new float[Rows * gh]; var dcp = new float[Rows * h];
                fixed (float* pg = gates, pcp = cPrev, pc = c, ptc = tanhC, pdh = dh, pdc = dc, pda = da, pdcp = dcp)
                fixed (float* ppi = pi, ppf = pf, ppo = po, pdpi = dpi, pdpf = dpf, pdpo = dpo)
                    Tests.Widths.Run(new LstmBackward
                    {
                        Rows = Rows, Hidden = h, I = oi, F = of, G = og, O = oo,
                        Gates = pg, CPrev = pcp, C = pc, TanhC = ptc, DH = pdh, DC = pdc, DGates = pda, DCPrev = pdcp,
                        PeepI = ppi, PeepF = ppf, PeepO = ppo,
                        DPeepI = peep ? pdpi : null, DPeepF = peep && !coupled ? pdpf : null, DPeepO = peep ? pdpo : null,
                    }, bits);
                string what = $"{bits}-bit H={h} coupled={coupled} peepholes={peep}";
                Close(eDa, da, what + " da"); Close(eDcp, dcp, what + " dc_prev");
                Close(eDpi, dpi, what + " dp_i"); Close(eDpf, dpf, what + " dp_f"); Close(eDpo, dpo, what + " dp_o");
            }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void GruAfterMatmulMatchesEquations(int bits)
    {
        foreach (int h in Tests.Widths.Lengths(bits))
        {
            var rng = new Random(h * 13 + bits);
            int gh = 3 * h;
            var gates = Uniform(Rows * gh, rng, -3, 3); var hh = Uniform(Rows * gh, rng, -2, 2); var bias = Uniform(gh, rng, -1, 1);
            var hPrev = Uniform(Rows * h, rng, -1, 1);
            var eGates = Doubles(gates); var eHn = new double[Rows * h]; var eH = new double[Rows * h];
            for (int b = 0; b < Rows; b++)
                for (int j = 0; j < h; j++)
                {
                    int g0 = b * gh, r = b * h + j;
                    double rr = Sigmoid((double)gates[g0 + j] + hh[g0 + j] + bias[j]);
                    double z = Sigmoid((double)gates[g0 + h + j] + hh[g0 + h + j] + bias[h + j]);
                    double hn = (double)hh[g0 + 2 * h + j] + bias[2 * h + j];
                    double n = Math.Tanh(gates[g0 + 2 * h + j] + rr * hn);
                    eGates[g0 + j] = rr; eGates[g0 + h + j] = z; eGates[g0 + 2 * h + j] = n;
                    eHn[r] = hn; eH[r] = (1 - z) * n + z * hPrev[r];
                }
            var hn1 = new float[Rows * h]; var h1 = new float[Rows * h];
            fixed (float* pg = gates, phh = hh, pb = bias, php = hPrev, ph = h1, phn = hn1)
                Tests.Widths.Run(new GruForward { Rows = Rows, Hidden = h, Gates = pg, Recurrent = phh, BiasHh = pb, HPrev = php, H = ph, Hn = phn }, bits);
            string what = $"{bits}-bit H={h} forward";
            Close(eGates, gates, what + " gates"); Close(eHn, hn1, what + " hn"); Close(eH, h1, what + " h");

            // Backward from the values forward kept.
            var dh = Uniform(Rows * h, rng, -1, 1);
            var eDx = new double[Rows * gh]; var eDh = new double[Rows * gh];
            for (int b = 0; b < Rows; b++)
                for (int j = 0; j < h; j++)
                {
                    int g0 = b * gh, r = b * h + j;
                    double rr = gates[g0 + j], z = gates[g0 + h + j], n = gates[g0 + 2 * h + j];
                    double dan = dh[r] * (1 - z) * (1 - n * n), dar = dan * hn1[r] * rr * (1 - rr), daz = dh[r] * (hPrev[r] - n) * z * (1 - z);
                    eDx[g0 + j] = dar; eDx[g0 + h + j] = daz; eDx[g0 + 2 * h + j] = dan;
                    eDh[g0 + j] = dar; eDh[g0 + h + j] = daz; eDh[g0 + 2 * h + j] = dan * rr;
                }
            var dx = new float[Rows * gh]; var dhh = new float[Rows * gh];
            fixed (float* pg = gates, php = hPrev, phn = hn1, pdh = dh, pdx = dx, pdhh = dhh)
                Tests.Widths.Run(new GruBackward { Rows = Rows, Hidden = h, Gates = pg, HPrev = php, Hn = phn, DH = pdh, DGatesX = pdx, DGatesH = pdhh }, bits);
            Close(eDx, dx, $"{bits}-bit H={h} dgates_x"); Close(eDh, dhh, $"{bits}-bit H={h} dgates_h");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void GruBeforeMatmulBackwardMatchesEquations(int bits)
    {
        foreach (int h in Tests.Widths.Lengths(bits))
        {
            var rng = new Random(h * 17 + bits);
            int gh = 3 * h;
            var gates = Uniform(Rows * gh, rng, 0, 1);
            for (int b = 0; b < Rows; b++) for (int j = 0; j < h; j++) gates[b * gh + 2 * h + j] = (float)(2 * rng.NextDouble() - 1); // n = tanh(·)
            var hPrev = Uniform(Rows * h, rng, -1, 1); var dh = Uniform(Rows * h, rng, -1, 1); var drh = Uniform(Rows * h, rng, -1, 1);
            var eDx = new double[Rows * gh];
            for (int b = 0; b < Rows; b++)
                for (int j = 0; j < h; j++)
                {
                    int g0 = b * gh, r = b * h + j;
                    double rr = gates[g0 + j], z = gates[g0 + h + j], n = gates[g0 + 2 * h + j];
                    eDx[g0 + j] = (double)drh[r] * hPrev[r] * rr * (1 - rr);
                    eDx[g0 + h + j] = dh[r] * (hPrev[r] - n) * z * (1 - z);
                    eDx[g0 + 2 * h + j] = dh[r] * (1 - z) * (1 - n * n);
                }
            var dx = new float[Rows * gh];
            fixed (float* pg = gates, php = hPrev, pdh = dh, pdrh = drh, pdx = dx)
            {
                Tests.Widths.Run(new GruUpdateGradient { Rows = Rows, Hidden = h, Gates = pg, HPrev = php, DH = pdh, DGates = pdx }, bits);
                Tests.Widths.Run(new GruResetGradient { Rows = Rows, Hidden = h, DResetH = pdrh, Gates = pg, HPrev = php, DGates = pdx }, bits);
            }
            Close(eDx, dx, $"{bits}-bit H={h} dgates");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void RnnMatchesEquations(int bits)
    {
        foreach (bool relu in new[] { false, true })
            foreach (int h in Tests.Widths.Lengths(bits))
            {
                var rng = new Random(h * 19 + bits);
                int n = Rows * h;
                var a = Uniform(n, rng, -3, 3); var y = new float[n];
                var eY = a.Select(x => relu ? Math.Max(x, 0.0) : Math.Tanh(x)).ToArray();
                fixed (float* pa = a, py = y)
                    Tests.Widths.Run(new RnnForward { Length = n, Relu = relu, Gates = pa, H = py }, bits);
                string what = $"{bits}-bit H={h} relu={relu}";
                Close(eY, a, what + " gates"); Close(eY, y, what + " h");

                var dh = Uniform(n, rng, -1, 1); var da = Uniform(n, rng, -1, 1); // overwritten, not accumulated
                var eDa = new double[n];
                for (int i = 0; i < n; i++) eDa[i] = relu ? (a[i] > 0 ? dh[i] : 0) : dh[i] * (1 - (double)a[i] * a[i]);
                fixed (float* pa = a, pdh = dh, pda = da)
                    Tests.Widths.Run(new RnnBackward { Length = n, Relu = relu, Gates = pa, DH = pdh, DGates = pda }, bits);
                Close(eDa, da, what + " da");
            }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void AdditiveScoresMatchEquations(int bits)
    {
        const int positions = 3, stride = 2; // keys of one batch row, every second row of a time-major (S, B, K) memory
        foreach (int a in Tests.Widths.Lengths(bits))
        {
            var rng = new Random(a * 13 + bits);
            var keys = Uniform(positions * stride * a, rng, -3, 3); var u = Uniform(a, rng, -3, 3); var v = Uniform(a, rng, -1, 1);
            var z = new float[positions * a]; var scores = new float[positions];
            var eZ = new double[z.Length]; var eScores = new double[positions];
            for (int s = 0; s < positions; s++)
                for (int j = 0; j < a; j++)
                {
                    eZ[s * a + j] = Math.Tanh((double)keys[s * stride * a + j] + u[j]);
                    eScores[s] += v[j] * eZ[s * a + j];
                }
            fixed (float* pk = keys, pu = u, pv = v, pz = z, ps = scores)
                Tests.Widths.Run(new AdditiveScores { Length = positions, Size = a, KeyStride = stride * a, Keys = pk, U = pu, V = pv, Z = pz, Scores = ps }, bits);
            Close(eZ, z, $"{bits}-bit A={a} tanh");
            Close(eScores, scores, $"{bits}-bit A={a} scores");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void ActivationsKeepNaNAndSaturateAtInfinities(int bits)
    {
        // The clamps use the hardware's maximum, which returns its second operand when either is NaN: NaN must come
        // through as NaN (a diverging model is then detected), not as a clamped ±1.
        float[] special = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 100f, -100f, 0f, float.NaN];
        foreach (bool relu in new[] { false, true })
        {
            int n = 3 * special.Length;                                       // whole vectors and a tail at every width
            var a = Enumerable.Range(0, n).Select(i => special[i % special.Length]).ToArray(); var y = new float[n];
            fixed (float* pa = a, py = y)
                Tests.Widths.Run(new RnnForward { Length = n, Relu = relu, Gates = pa, H = py }, bits);
            for (int i = 0; i < n; i++)
            {
                float x = special[i % special.Length];
                float expected = float.IsNaN(x) ? float.NaN : relu ? Math.Max(x, 0f) : MathF.Sign(x) * (x == 0 ? 0 : 1);
                string what = $"{bits}-bit relu={relu} x={x}";
                if (float.IsNaN(expected)) Assert.IsTrue(float.IsNaN(y[i]), what);
                else Assert.AreEqual(expected, y[i], 1e-6f, what);
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Widths))]
    public void AdamUpdateMatchesEquations(int bits)
    {
        const float b1 = 0.9f, b2 = 0.999f, lr = 1e-2f, eps = 1e-8f;
        foreach (int n in Tests.Widths.Lengths(bits))
        {
            var rng = new Random(n * 23 + bits);
            var w = Uniform(n, rng, -1, 1); var g = Uniform(n, rng, -1, 1); var m = Uniform(n, rng, -0.1, 0.1); var v = Uniform(n, rng, 0, 0.01);
            const int step = 3;
            double c1 = 1 / (1 - Math.Pow(b1, step)), c2 = 1 / (1 - Math.Pow(b2, step));
            var eW = new double[n]; var eM = new double[n]; var eV = new double[n];
            for (int i = 0; i < n; i++)
            {
                eM[i] = b1 * (double)m[i] + (1 - (double)b1) * g[i];
                eV[i] = b2 * (double)v[i] + (1 - (double)b2) * g[i] * (double)g[i];
                eW[i] = w[i] - lr * c1 * eM[i] / (Math.Sqrt(eV[i] * c2) + eps);
            }
            fixed (float* pw = w, pg = g, pm = m, pv = v)
                Tests.Widths.Run(new AdamUpdate
                {
                    Length = n, W = pw, G = pg, M = pm, V = pv,
                    Beta1 = b1, Beta2 = b2, StepSize = (float)(lr * c1), C2 = (float)c2, Epsilon = eps,
                }, bits);
            string what = $"{bits}-bit n={n}";
            Close(eM, m, what + " m"); Close(eV, v, what + " v"); Close(eW, w, what + " w");
        }
    }
}
