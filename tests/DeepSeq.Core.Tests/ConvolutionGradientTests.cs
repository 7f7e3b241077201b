using DeepSeq.Core.Layers.Convolution;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Tests;

/// <summary>Finite-difference checks of the convolutional layers (channels-last), plus values against plain loops.</summary>
[TestClass]
public sealed class ConvolutionGradientTests
{
    // Inputs kept away from 0, where ReLU-family kinks make a central difference straddle two slopes.
    static float[] Inputs(int n, Random rng, float scale = 1f) =>
        [.. GradientCheck.Random(n, rng, scale).Select(v => MathF.Abs(v) < 0.05f ? v + 0.1f : v)];

    [TestMethod]
    [DataRow(3, 1, 1, true)]   // 3×3, stride 1, same padding, bias
    [DataRow(3, 2, 1, false)]  // 3×3, stride 2: a stage's first block
    [DataRow(1, 2, 0, false)]  // 1×1, stride 2: a projection shortcut
    [DataRow(1, 1, 0, true)]   // 1×1, stride 1: the pointwise path (x is its own im2col)
    public void Conv2dGradientsMatchFiniteDifferences(int kernel, int stride, int padding, bool bias)
    {
        var rng = new Random(kernel * 10 + stride);
        int n = 3, h = 5, w = 6, cin = 3, f = 4;
        var conv = new Conv2d(cin, f, kernel, stride, padding, bias);
        GradientCheck.Randomize(conv, rng);
        int ho = conv.OutputSize(h), wo = conv.OutputSize(w);
        var x = GradientCheck.Random(n * h * w * cin, rng);
        var weights = GradientCheck.Random(n * ho * wo * f, rng);
        var y = new float[weights.Length];
        double Loss() { conv.Forward(y, x, n, h, w); return GradientCheck.Dot(weights, y); }
        Loss();
        // Forward against a plain loop over the definition (PyTorch's cross-correlation, zero padding).
        for (int img = 0; img < n; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                    for (int o = 0; o < f; o++)
                    {
                        double s = bias ? conv.Bias!.Value.Data[o] : 0;
                        for (int ky = 0; ky < kernel; ky++)
                            for (int kx = 0; kx < kernel; kx++)
                            {
                                int iy = oy * stride - padding + ky, ix = ox * stride - padding + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                for (int c = 0; c < cin; c++)
                                    s += conv.Weight.Value.Data[((o * kernel + ky) * kernel + kx) * cin + c] * x[((img * h + iy) * w + ix) * cin + c];
                            }
                        Assert.AreEqual(s, y[((img * ho + oy) * wo + ox) * f + o], 1e-4);
                    }
        var dx = new float[x.Length];
        conv.Backward(dx, weights, x, n, h, w);
        GradientCheck.Check("x", x, dx, Loss);
        GradientCheck.Check("weight", conv.Weight, Loss);
        if (bias) GradientCheck.Check("bias", conv.Bias!, Loss);
    }

    [TestMethod]
    [DataRow(3, 5, 7)]
    [DataRow(5, 5, 7)]
    [DataRow(3, 23, 26)]
    public void DirectConvolutionMatchesTheDoubleReferenceForEveryChannelCount(int kernel, int h, int w)
    {
        // The stride-1 "same" convolution runs the direct kernels, whose strips are S = 2 vectors wide: channel counts
        // that fill whole strips and leave tails, on both sides (input channels are dx's outputs); up to one vector
        // (s / 2) of outputs the product runs its narrow tile, with odd and even runs. The larger image takes the
        // weight gradient over several blocks of positions, and the 3 × 3 product with up to one vector of outputs over
        // rows of 26 positions: its row tiles of 12, the last one overlapping the tile before.
        int s = Kernels.ConvolutionKernels.Strip, n = 3, pad = kernel / 2;
        int[] counts = h * w > 100 ? [1, s / 2, s + 1, 2 * s + 1] : [1, 3, s / 2, s - 1, s, s + 1, 2 * s + 1, 3 * s + 1];
        var rng = new Random(kernel);
        foreach (int cin in counts.Distinct())
            foreach (int f in counts.Distinct())
            {
                var conv = new Conv2d(cin, f, kernel, 1, pad);
                GradientCheck.Randomize(conv, rng);
                var x = GradientCheck.Random(n * h * w * cin, rng);
                var dy = GradientCheck.Random(n * h * w * f, rng);
                var y = new float[dy.Length];
                var dx = GradientCheck.Random(x.Length, rng); // the backward pass adds into dx and dW
                var dx0 = (float[])dx.Clone();
                var dw0 = GradientCheck.Random(conv.Weight.Value.Data.Length, rng);
                dw0.CopyTo(conv.Weight.Gradient.Data, 0);
                conv.Forward(y, x, n, h, w);
                conv.Backward(dx, dy, x, n, h, w);
                var wt = conv.Weight.Value.Data;
                var ey = new double[y.Length]; var edx = dx0.Select(v => (double)v).ToArray(); var edw = dw0.Select(v => (double)v).ToArray();
                for (int img = 0; img < n; img++)
                    for (int oy = 0; oy < h; oy++)
                        for (int ox = 0; ox < w; ox++)
                            for (int ky = 0; ky < kernel; ky++)
                                for (int kx = 0; kx < kernel; kx++)
                                {
                                    int iy = oy - pad + ky, ix = ox - pad + kx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    for (int o = 0; o < f; o++)
                                        for (int c = 0; c < cin; c++)
                                        {
                                            int wi = ((o * kernel + ky) * kernel + kx) * cin + c, xi = ((img * h + iy) * w + ix) * cin + c, yi = ((img * h + oy) * w + ox) * f + o;
                                            ey[yi] += (double)wt[wi] * x[xi];
                                            edx[xi] += (double)wt[wi] * dy[yi];
                                            edw[wi] += (double)dy[yi] * x[xi];
                                        }
                                }
                string at = $"{kernel}×{kernel}, {cin} → {f} channels at {Kernels.Lanes.Bits} bits";
                static float[] F(double[] v) => [.. v.Select(e => (float)e)];
                GradientCheck.AssertClose(F(ey), y, 1e-5, 1e-4, "y " + at);
                GradientCheck.AssertClose(F(edx), dx, 1e-5, 1e-4, "dx " + at);
                GradientCheck.AssertClose(F(edw), conv.Weight.Gradient.Data, 1e-5, 1e-4, "dW " + at);
            }
    }

    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    public void Conv2dResultDoesNotDependOnThreads()
    {
        var rng = new Random(3);
        int n = 40, h = 12, w = 12, cin = 5, f = 7; // 40 images of 144 positions: several chunks
        var conv = new Conv2d(cin, f, 3, 1, 1);
        GradientCheck.Randomize(conv, rng);
        var x = GradientCheck.Random(n * h * w * cin, rng);
        var dy = GradientCheck.Random(n * h * w * f, rng);
        (float[] Y, float[] Dx, float[] Dw) Run(int threads)
        {
            int saved = Kernels.Gemm.MaxThreads;
            Kernels.Gemm.MaxThreads = threads;
            try
            {
                var y = new float[dy.Length]; var dx = new float[x.Length];
                conv.Weight.ZeroGradient();
                conv.Forward(y, x, n, h, w);
                conv.Backward(dx, dy, x, n, h, w);
                return (y, dx, (float[])conv.Weight.Gradient.Data.Clone());
            }
            finally { Kernels.Gemm.MaxThreads = saved; }
        }
        var one = Run(1); var two = Run(2); var three = Run(3);
        CollectionAssert.AreEqual(one.Y, two.Y); CollectionAssert.AreEqual(one.Dx, three.Dx); CollectionAssert.AreEqual(one.Dw, two.Dw);
    }

    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    public void BatchNormAndActivationResultsDoNotDependOnThreads()
    {
        // 5,001 rows of 12 channels: past the length at which the element-wise passes split over the pool, with column
        // sums over several blocks and a partial last one.
        var rng = new Random(4);
        int rows = 5001, c = 12;
        var bn = new BatchNorm2d(c);
        GradientCheck.Randomize(bn, rng);
        var x = GradientCheck.Random(rows * c, rng);
        var dy = GradientCheck.Random(rows * c, rng);
        foreach (var function in new[] { ActivationFunction.Relu, ActivationFunction.Gelu })
        {
            var act = new ActivationLayer(function, c);
            float[][] Run(int threads)
            {
                int saved = Kernels.Gemm.MaxThreads;
                Kernels.Gemm.MaxThreads = threads;
                try
                {
                    var y = new float[x.Length]; var a = new float[x.Length]; var da = new float[x.Length]; var dx = new float[x.Length];
                    bn.Gamma.ZeroGradient(); bn.Beta.ZeroGradient();
                    Array.Clear(bn.RunningMean.Data); Array.Fill(bn.RunningVariance.Data, 1f); // state each forward moves
                    bn.Forward(y, x, rows, training: true);
                    act.Forward(a, y, rows, training: true);
                    act.Backward(da, dy, y, a, rows);
                    bn.Backward(dx, da, rows);
                    return [y, a, da, dx, (float[])bn.Gamma.Gradient.Data.Clone(), (float[])bn.Beta.Gradient.Data.Clone(), (float[])bn.RunningVariance.Data.Clone()];
                }
                finally { Kernels.Gemm.MaxThreads = saved; }
            }
            var one = Run(1);
            foreach (int threads in new[] { 2, 3 })
            {
                var more = Run(threads);
                for (int i = 0; i < one.Length; i++) CollectionAssert.AreEqual(one[i], more[i], $"{function}, output {i}, {threads} threads");
            }
        }
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void BatchNorm2dGradientsMatchFiniteDifferences(bool training)
    {
        var rng = new Random(training ? 11 : 12);
        int rows = 14, c = 5;
        var bn = new BatchNorm2d(c);
        GradientCheck.Randomize(bn, rng);
        for (int j = 0; j < c; j++) { bn.RunningMean.Data[j] = 0.3f * j - 0.5f; bn.RunningVariance.Data[j] = 0.5f + 0.2f * j; }
        var x = GradientCheck.Random(rows * c, rng, 2f);
        var weights = GradientCheck.Random(rows * c, rng);
        var y = new float[x.Length];
        double Loss() { bn.Forward(y, x, rows, training); return GradientCheck.Dot(weights, y); }
        Loss();
        var dx = new float[x.Length];
        bn.Backward(dx, weights, rows);
        GradientCheck.Check("x", x, dx, Loss, samples: 40);
        GradientCheck.Check("gamma", bn.Gamma, Loss);
        GradientCheck.Check("beta", bn.Beta, Loss);
    }

    [TestMethod]
    public void BatchNorm2dNormalisesAndUpdatesRunningStatisticsAsPyTorch()
    {
        int rows = 300, c = 3;
        var rng = new Random(4);
        var bn = new BatchNorm2d(c);
        var x = new float[rows * c];
        for (int r = 0; r < rows; r++) for (int j = 0; j < c; j++) x[r * c + j] = 2f + j + (1f + j) * (2f * rng.NextSingle() - 1f);
        var y = new float[x.Length];
        bn.Forward(y, x, rows, training: true);
        for (int j = 0; j < c; j++)
        {
            double mean = 0, sq = 0;
            for (int r = 0; r < rows; r++) mean += x[r * c + j];
            mean /= rows;
            for (int r = 0; r < rows; r++) sq += (x[r * c + j] - mean) * (x[r * c + j] - mean);
            double ym = 0, yv = 0;
            for (int r = 0; r < rows; r++) ym += y[r * c + j];
            ym /= rows;
            for (int r = 0; r < rows; r++) yv += (y[r * c + j] - ym) * (y[r * c + j] - ym);
            Assert.AreEqual(0, ym, 1e-5); Assert.AreEqual(1, yv / rows, 1e-3);
            Assert.AreEqual(0.1 * mean, bn.RunningMean.Data[j], 1e-5);                 // (1 − m)·0 + m·mean
            Assert.AreEqual(0.9 + 0.1 * sq / (rows - 1), bn.RunningVariance.Data[j], 1e-4); // unbiased, as PyTorch
        }
        Assert.AreEqual(2, bn.NamedState().Count(), "running statistics are module state");
    }

    [TestMethod]
    [DataRow(Pool2dKind.Max, 2, 2, 0)]
    [DataRow(Pool2dKind.Max, 3, 2, 1)]
    [DataRow(Pool2dKind.Average, 2, 2, 0)]
    [DataRow(Pool2dKind.Average, 3, 1, 1)]
    public void PoolingGradientsMatchFiniteDifferences(Pool2dKind kind, int kernel, int stride, int padding)
    {
        var rng = new Random(kernel + stride);
        int n = 2, h = 6, w = 5, c = 3;
        var pool = new Pool2d(kind, kernel, stride, padding);
        int ho = pool.OutputSize(h), wo = pool.OutputSize(w);
        var x = GradientCheck.Random(n * h * w * c, rng); // distinct values: the max is unique
        var weights = GradientCheck.Random(n * ho * wo * c, rng);
        var y = new float[weights.Length];
        double Loss() { pool.Forward(y, x, n, h, w, c); return GradientCheck.Dot(weights, y); }
        Loss();
        var dx = new float[x.Length];
        pool.Backward(dx, weights, n, h, w, c);
        GradientCheck.Check("x", x, dx, Loss, samples: 60, step: 1e-3f);
    }

    [TestMethod]
    public void GlobalAveragePoolGradientsMatchFiniteDifferences()
    {
        var rng = new Random(8);
        int n = 3, p = 7, c = 4;
        var x = GradientCheck.Random(n * p * c, rng);
        var weights = GradientCheck.Random(n * c, rng);
        var y = new float[n * c];
        double Loss() { GlobalAveragePool.Forward(y, x, n, p, c); return GradientCheck.Dot(weights, y); }
        Loss();
        var dx = new float[x.Length];
        GlobalAveragePool.Backward(dx, weights, n, p, c);
        GradientCheck.Check("x", x, dx, Loss);
    }

    public static IEnumerable<object[]> Functions() => Enum.GetValues<ActivationFunction>().Select(f => new object[] { f });

    [TestMethod]
    [DynamicData(nameof(Functions))]
    public void ActivationLayerGradientsMatchFiniteDifferences(ActivationFunction function)
    {
        var rng = new Random((int)function + 20);
        int rows = 6, c = 3;
        var layer = new ActivationLayer(function, c);
        GradientCheck.Randomize(layer, rng);
        var x = Inputs(rows * layer.InputChannels, rng, 2f);
        var weights = GradientCheck.Random(rows * c, rng);
        var y = new float[rows * c];
        // RReLU is checked at inference (its mean slope): a training forward draws new slopes every call.
        double Loss() { layer.Forward(y, x, rows, training: false); return GradientCheck.Dot(weights, y); }
        Loss();
        var dx = new float[x.Length];
        layer.Backward(dx, weights, x, y, rows);
        GradientCheck.Check("x", x, dx, Loss, samples: 40, step: 1e-3f);
        foreach (var p in layer.Parameters) GradientCheck.Check(p.Name, p, Loss, step: 1e-3f);
    }

    public static IEnumerable<object[]> Blocks() =>
    [
        [3, 4, 2, true, true, ActivationFunction.Relu],      // projection shortcut
        [4, 4, 1, true, true, ActivationFunction.Elu],       // identity shortcut
        [3, 4, 2, false, true, ActivationFunction.Gelu],     // plain
        [3, 4, 2, true, false, ActivationFunction.Selu],     // no batch norm: convolutions with bias
        [4, 4, 1, true, true, ActivationFunction.Maxout],    // maxout before the addition
        [3, 4, 2, true, true, ActivationFunction.PRelu],
        [3, 4, 2, true, true, ActivationFunction.LeakyRelu],
    ];

    [TestMethod]
    [DynamicData(nameof(Blocks))]
    public void BasicBlockGradientsMatchFiniteDifferences(int cin, int cout, int stride, bool residual, bool batchNorm, ActivationFunction fn)
    {
        var rng = new Random(cin * 7 + stride + (int)fn);
        int n = 3, h = 5, w = 4;
        var block = new BasicBlock(cin, cout, stride, residual, batchNorm, fn);
        GradientCheck.Randomize(block, rng);
        int rows = n * block.OutputSize(h) * block.OutputSize(w);
        var x = GradientCheck.Random(n * h * w * cin, rng);
        var weights = GradientCheck.Random(rows * cout, rng);
        var y = new float[rows * cout];
        double Loss() { block.Forward(y, x, n, h, w, training: true); return GradientCheck.Dot(weights, y); }
        Loss();
        var dx = new float[x.Length];
        foreach (var p in block.Parameters) p.ZeroGradient();
        block.Backward(dx, weights, x, y);
        // Kinks: with 18 rows per channel, batch norm puts some values within 10⁻³ of the ReLU family's kink at 0,
        // and a step that crosses it is off by O(1) (seen with LeakyReLU at 10⁻³, exact at 10⁻⁴); hence the small
        // step, with an absolute floor for float32 rounding of the loss.
        GradientCheck.Check("x", x, dx, Loss, samples: 30, step: 1e-4f, absTol: 1e-2);
        foreach (var (name, p) in block.NamedParameters()) GradientCheck.Check(name, p, Loss, samples: 12, step: 1e-4f, absTol: 1e-2, requireSignal: false);
    }

    // The internal backward passes that write dx instead of adding to it (the blocks' scratch is never cleared): written
    // over NaN they give what the adding form gives from zeros, and the adding form adds exactly that onto a dx. Every
    // way a convolution makes dx (direct, im2col, pointwise), batch norm, an element-wise and a serial activation, and
    // whole blocks with and without a projection.
    [TestMethod]
    public void InputGradientsAreWrittenOrAddedAsAsked()
    {
        var rng = new Random(33);
        int n = 3, h = 6, w = 5;
        void Check(string name, int length, Action<float[], bool> backward)
        {
            var fromZeros = new float[length];
            backward(fromZeros, true);
            var written = Enumerable.Repeat(float.NaN, length).ToArray();
            backward(written, false);
            CollectionAssert.AreEqual(fromZeros, written, name + ": written over NaN");
            var added = GradientCheck.Random(length, rng);
            var expected = added.Zip(fromZeros, (a, b) => a + b).ToArray();
            backward(added, true);
            GradientCheck.AssertClose(expected, added, 1e-6, 1e-5, name + ": added");
        }
        foreach (var (kernel, stride, padding) in new[] { (3, 1, 1), (3, 2, 1), (1, 1, 0) })
        {
            var conv = new Conv2d(4, 5, kernel, stride, padding);
            GradientCheck.Randomize(conv, rng);
            var x = GradientCheck.Random(n * h * w * 4, rng);
            var dy = GradientCheck.Random(n * conv.OutputSize(h) * conv.OutputSize(w) * 5, rng);
            Check($"conv {kernel}×{kernel} stride {stride}", x.Length, (dx, accumulate) => conv.Backward(dx, dy, x, n, h, w, accumulate));
        }
        int rows = n * h * w, c = 6;
        var values = GradientCheck.Random(rows * c, rng); var outputs = new float[values.Length]; var grads = GradientCheck.Random(values.Length, rng);
        var norm = new BatchNorm2d(c);
        GradientCheck.Randomize(norm, rng);
        norm.Forward(outputs, values, rows, training: true);
        Check("batch norm", values.Length, (dx, accumulate) => norm.Backward(dx, grads, rows, accumulate));
        foreach (var function in new[] { ActivationFunction.Relu, ActivationFunction.PRelu })
        {
            var act = new ActivationLayer(function, c);
            act.Forward(outputs, values, rows, training: true);
            Check(function.ToString(), values.Length, (dx, accumulate) => act.Backward(dx, grads, values, outputs, rows, accumulate));
        }
        foreach (var (cin, stride) in new[] { (4, 1), (3, 2) })
        {
            var block = new BasicBlock(cin, 4, stride, residual: true, batchNorm: true, ActivationFunction.Relu);
            GradientCheck.Randomize(block, rng);
            var x = GradientCheck.Random(n * h * w * cin, rng);
            var y = new float[n * block.OutputSize(h) * block.OutputSize(w) * 4];
            var dy = GradientCheck.Random(y.Length, rng);
            block.Forward(y, x, n, h, w, training: true);
            Check($"block {cin} → 4, stride {stride}", x.Length, (dx, accumulate) => block.Backward(dx, dy, x, y, accumulate));
        }
    }

    [TestMethod]
    public void ImageClassifierGradientsMatchFiniteDifferences()
    {
        var rng = new Random(31);
        var config = new ImageClassifierConfig { Height = 8, Width = 7, Channels = 2, Classes = 3, StageWidths = [3, 4], BlocksPerStage = 1, Activation = ActivationFunction.Gelu };
        var model = new ImageClassifier(config);
        model.Initialize(rng);
        int n = 4;
        var x = GradientCheck.Random(n * 8 * 7 * 2, rng);
        var weights = GradientCheck.Random(n * 3, rng);
        var logits = new float[n * 3];
        double Loss() { model.Forward(logits, x, n, training: true); return GradientCheck.Dot(weights, logits); }
        Loss();
        foreach (var p in model.Parameters) p.ZeroGradient();
        model.Backward(weights);
        foreach (var (name, p) in model.NamedParameters()) GradientCheck.Check(name, p, Loss, samples: 6, step: 1e-3f, absTol: 5e-3, requireSignal: false);
        Assert.AreEqual(6, config.Depth);
    }

    // Zero-init residual: every block starts as its shortcut (an identity block passes its ReLU input through
    // unchanged), and the zeroed scales still receive gradients, so they can grow.
    [TestMethod]
    public void ZeroInitResidualStartsEachBlockAsItsShortcut()
    {
        var rng = new Random(32);
        var config = new ImageClassifierConfig { Height = 6, Width = 5, Channels = 1, Classes = 3, StageWidths = [3], BlocksPerStage = 2, ZeroInitResidual = true };
        var model = new ImageClassifier(config);
        model.Initialize(rng);
        foreach (var block in model.Blocks) CollectionAssert.AreEqual(new float[3], block.LastNorm!.Gamma.Value.Data);
        int n = 4;
        var input = GradientCheck.Random(n * 6 * 5 * 3, rng).Select(Math.Abs).ToArray(); // a ReLU output
        var output = new float[input.Length];
        model.Blocks[1].Forward(output, input, n, 6, 5, training: true);
        CollectionAssert.AreEqual(input, output);
        var x = GradientCheck.Random(n * 6 * 5, rng);
        var logits = new float[n * 3];
        model.Forward(logits, x, n, training: true);
        foreach (var p in model.Parameters) p.ZeroGradient();
        model.Backward(GradientCheck.Random(n * 3, rng));
        Assert.IsTrue(model.Blocks.All(b => b.LastNorm!.Gamma.Gradient.Data.Any(g => g != 0)), "the zeroed scales must still learn");
        var plain = new ImageClassifier(config with { ZeroInitResidual = false });
        plain.Initialize(new Random(32));
        Assert.IsTrue(plain.Blocks.All(b => b.LastNorm!.Gamma.Value.Data.All(g => g == 1f)));
    }
}
