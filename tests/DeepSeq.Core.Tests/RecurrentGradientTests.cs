using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class RecurrentGradientTests
{
    public static IEnumerable<object[]> Cells() =>
    [
        ["rnn-tanh", new RecurrentCellSpec(RecurrentCellKind.Rnn)],
        ["rnn-relu", new RecurrentCellSpec(RecurrentCellKind.Rnn) { RnnActivation = ActivationKind.Relu }],
        ["lstm", new RecurrentCellSpec(RecurrentCellKind.Lstm)],
        ["lstm-peep-i", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.Input }],
        ["lstm-peep-f", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.Forget }],
        ["lstm-peep-o", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.Output }],
        ["lstm-peep-all", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.All }],
        ["lstm-coupled", new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true }],
        ["lstm-coupled-peep", new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true, Peepholes = PeepholeGates.Input | PeepholeGates.Output }],
        ["gru-after", new RecurrentCellSpec(RecurrentCellKind.Gru)],
        ["gru-before", new RecurrentCellSpec(RecurrentCellKind.Gru) { GruReset = GruResetPlacement.BeforeRecurrentMatmul }],
    ];

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void SingleLayerGradientsMatchFiniteDifferences(string name, RecurrentCellSpec spec) =>
        CheckNetwork(name, new RecurrentNetwork(spec, inputSize: 3, hiddenSize: 4));

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void StackedBidirectionalGradientsMatchFiniteDifferences(string name, RecurrentCellSpec spec)
    {
        foreach (var merge in Enum.GetValues<BidirectionalMerge>())
            CheckNetwork($"{name}-{merge}", new RecurrentNetwork(spec, inputSize: 3, hiddenSize: 4, layers: 2, bidirectional: true, merge: merge));
    }

    [TestMethod]
    [DoNotParallelize] // sets the process-wide Gemm.MaxThreads, which tests running beside it read
    [DynamicData(nameof(Cells))]
    public void ResultsDoNotDependOnThreads(string name, RecurrentCellSpec spec)
    {
        // 40 rows of 67 units: a step whose element-wise kernels split by rows but whose product does not; of 131 units:
        // one whose product splits too; vector tails in both. One direction (its steps split over the threads) and two
        // (the directions run side by side instead).
        foreach (int hidden in new[] { 67, 131 })
            foreach (bool bidirectional in new[] { false, true })
                CheckThreadIndependence($"{name} H={hidden} bidirectional={bidirectional}", new RecurrentNetwork(spec, inputSize: 9, hiddenSize: hidden, layers: 1, bidirectional));
    }

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void ReusedNetworkGivesTheSameResultsAsAFreshOne(string name, RecurrentCellSpec spec)
    {
        // A full-length batch first leaves values in every row of the network's buffers; a batch of shorter sequences
        // after it must still give zeros past each sequence's end, and the outputs, states and gradients of a fresh network.
        int T = 5, B = 6;
        var rng = new Random(name.Length * 13 + 3);
        var fresh = new RecurrentNetwork(spec, inputSize: 3, hiddenSize: 4, layers: 2, bidirectional: true);
        var reused = new RecurrentNetwork(spec, inputSize: 3, hiddenSize: 4, layers: 2, bidirectional: true);
        GradientCheck.Randomize(fresh, rng, 0.5f);
        var values = fresh.Parameters.Select(p => p.Value.Data).ToList();
        foreach (var (p, v) in reused.Parameters.Zip(values)) v.CopyTo(p.Value.Data, 0);
        var x = GradientCheck.Random(T * B * 3, rng);
        var dy = GradientCheck.Random(T * B * fresh.OutputSize, rng);
        int states = 2 * 2 * B * 4; // layers × directions × B × H
        float[][] Run(RecurrentNetwork net, int[] lengths)
        {
            var y = new float[dy.Length]; var hT = new float[states]; var cT = new float[states]; var dx = new float[x.Length];
            foreach (var p in net.Parameters) p.ZeroGradient();
            net.Forward(y, hT, spec.Kind == RecurrentCellKind.Lstm ? cT : default, x, default, default, lengths, T, B, training: true);
            net.Backward(dx, default, default, dy, default, default);
            return [y, hT, cT, dx, .. net.Parameters.Select(p => (float[])p.Gradient.Data.Clone())];
        }
        Run(reused, Enumerable.Repeat(T, B).ToArray());
        int[] shorter = [5, 1, 3, 2, 5, 4];
        var expected = Run(fresh, shorter); var actual = Run(reused, shorter);
        for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i], actual[i], $"{name}: result {i}");
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                if (t >= shorter[b])
                    for (int j = 0; j < fresh.OutputSize; j++) Assert.AreEqual(0f, actual[0][(t * B + b) * fresh.OutputSize + j], $"{name}: y past the end");
    }

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void RowsInLengthOrderGiveEachRowTheOutputsOfAnyOtherOrder(string name, RecurrentCellSpec spec)
    {
        // Rows already in length order skip the network's permutations (and two directions merge straight into y):
        // each row's outputs and final states must be those it gets among rows in another order.
        int T = 5, B = 6, I = 3, H = 4;
        int[] sorted = [5, 5, 4, 3, 2, 1], order = [3, 0, 5, 1, 4, 2]; // row b of the shuffled batch is sorted row order[b]
        foreach (bool bidirectional in new[] { false, true })
        {
            var rng = new Random(name.Length * 17 + (bidirectional ? 1 : 0));
            var net = new RecurrentNetwork(spec, inputSize: I, hiddenSize: H, layers: 2, bidirectional);
            GradientCheck.Randomize(net, rng, 0.5f);
            var x = GradientCheck.Random(T * B * I, rng);
            var shuffledX = new float[x.Length];
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++) Array.Copy(x, (t * B + order[b]) * I, shuffledX, (t * B + b) * I, I);
            int o = net.OutputSize, sl = net.StateLength(B);
            (float[] Y, float[] HT) Run(float[] input, int[] lengths)
            {
                var y = new float[T * B * o]; var hT = new float[sl];
                net.Forward(y, hT, default, input, default, default, lengths, T, B, training: false);
                return (y, hT);
            }
            var inOrder = Run(x, sorted);
            var shuffled = Run(shuffledX, [.. order.Select(r => sorted[r])]);
            for (int b = 0; b < B; b++)
            {
                for (int t = 0; t < T; t++)
                    CollectionAssert.AreEqual(inOrder.Y.AsSpan((t * B + order[b]) * o, o).ToArray(), shuffled.Y.AsSpan((t * B + b) * o, o).ToArray(), $"{name} bidirectional={bidirectional}: y of row {b} at step {t}");
                for (int s = 0; s < sl / (B * H); s++)
                    CollectionAssert.AreEqual(inOrder.HT.AsSpan(s * B * H + order[b] * H, H).ToArray(), shuffled.HT.AsSpan(s * B * H + b * H, H).ToArray(), $"{name}: final state {s} of row {b}");
            }
        }
    }

    static void CheckThreadIndependence(string name, RecurrentNetwork net)
    {
        var rng = new Random(name.Length * 7 + 1);
        GradientCheck.Randomize(net, rng, 0.3f);
        int T = 4, B = 40;
        int[] lengths = Enumerable.Range(0, B).Select(b => 1 + b % T).ToArray();
        var x = GradientCheck.Random(T * B * net.InputSize, rng);
        var dy = GradientCheck.Random(T * B * net.OutputSize, rng);
        (float[] Y, float[] Dx, float[] Grads) Run(int threads)
        {
            int saved = Kernels.Gemm.MaxThreads;
            Kernels.Gemm.MaxThreads = threads;
            try
            {
                var y = new float[dy.Length]; var dx = new float[x.Length];
                foreach (var p in net.Parameters) p.ZeroGradient();
                net.Forward(y, default, default, x, default, default, lengths, T, B, training: true);
                net.Backward(dx, default, default, dy, default, default);
                return (y, dx, net.Parameters.SelectMany(p => p.Gradient.Data).ToArray());
            }
            finally { Kernels.Gemm.MaxThreads = saved; }
        }
        var one = Run(1); var two = Run(2); var three = Run(3);
        CollectionAssert.AreEqual(one.Y, two.Y, name); CollectionAssert.AreEqual(one.Y, three.Y, name);
        CollectionAssert.AreEqual(one.Dx, two.Dx, name); CollectionAssert.AreEqual(one.Dx, three.Dx, name);
        CollectionAssert.AreEqual(one.Grads, two.Grads, name); CollectionAssert.AreEqual(one.Grads, three.Grads, name);
    }

    static void CheckNetwork(string name, RecurrentNetwork net)
    {
        var rng = new Random(name.Length * 31 + 5);
        GradientCheck.Randomize(net, rng, 0.6f);
        int T = 5, B = 3, sl = net.StateLength(B);
        int[] lengths = [3, 5, 2]; // unsorted on purpose
        var x = GradientCheck.Random(T * B * net.InputSize, rng);
        var h0 = GradientCheck.Random(sl, rng, 0.5f);
        var c0 = GradientCheck.Random(sl, rng, 0.5f);
        bool hasC = net.Cells[0].HasCellState;
        var wy = GradientCheck.Random(T * B * net.OutputSize, rng);
        var wh = GradientCheck.Random(sl, rng);
        var wc = GradientCheck.Random(sl, rng);
        var y = new float[wy.Length]; var hT = new float[sl]; var cT = new float[sl];

        double Loss()
        {
            net.Forward(y, hT, hasC ? cT : default, x, h0, hasC ? c0 : default, lengths, T, B, training: false);
            return GradientCheck.Dot(wy, y) + GradientCheck.Dot(wh, hT) + (hasC ? GradientCheck.Dot(wc, cT) : 0);
        }

        Loss();
        foreach (var p in net.Parameters) p.ZeroGradient();
        var dx = new float[x.Length]; var dh0 = new float[sl]; var dc0 = new float[sl];
        net.Backward(dx, dh0, hasC ? dc0 : default, wy, wh, hasC ? wc : default);

        // ReLU has kinks: a smaller step keeps the difference from straddling one.
        // (A whole weight block may also sit behind dead units, so it need not show a non-zero gradient.)
        bool relu = net.Spec.RnnActivation == ActivationKind.Relu && net.Spec.Kind == RecurrentCellKind.Rnn;
        float step = relu ? 2e-4f : GradientCheck.Step;
        foreach (var p in net.Parameters) GradientCheck.Check($"{name}/{p.Name}", p, Loss, samples: 12, step: step, requireSignal: !relu);
        GradientCheck.Check($"{name}/x", x, dx, Loss, samples: 30, step: step);
        GradientCheck.Check($"{name}/h0", h0, dh0, Loss, samples: 16, step: step);
        if (hasC) GradientCheck.Check($"{name}/c0", c0, dc0, Loss, samples: 16, step: step);
        // Padding gets no gradient and produces zeros.
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                if (t >= lengths[b])
                    for (int i = 0; i < net.InputSize; i++) Assert.AreEqual(0f, dx[(t * B + b) * net.InputSize + i], $"{name}: dx at padding");
    }

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void PaddedBatchEqualsEachSequenceAlone(string name, RecurrentCellSpec spec)
    {
        var rng = new Random(11);
        var net = new RecurrentNetwork(spec, 3, 5, layers: 2, bidirectional: true);
        GradientCheck.Randomize(net, rng, 0.5f);
        int T = 6, B = 4, I = 3, O = net.OutputSize, H = 5;
        int[] lengths = [2, 6, 1, 4];
        var x = GradientCheck.Random(T * B * I, rng);
        var dy = GradientCheck.Random(T * B * O, rng);
        for (int t = 0; t < T; t++) for (int b = 0; b < B; b++) if (t >= lengths[b]) Array.Clear(dy, (t * B + b) * O, O);
        var dhT = GradientCheck.Random(net.StateLength(B), rng);
        bool hasC = net.Cells[0].HasCellState;

        var y = new float[T * B * O]; var hT = new float[net.StateLength(B)]; var cT = new float[hT.Length];
        net.Forward(y, hT, hasC ? cT : default, x, default, default, lengths, T, B, false);
        foreach (var p in net.Parameters) p.ZeroGradient();
        var dx = new float[x.Length];
        net.Backward(dx, default, default, dy, dhT, default);
        var batchGrads = net.Parameters.Select(p => (float[])p.Gradient.Data.Clone()).ToArray();

        var aloneGrads = net.Parameters.Select(p => new float[p.Value.Length]).ToArray();
        for (int b = 0; b < B; b++)
        {
            int L = lengths[b];
            var xb = new float[L * I]; var dyb = new float[L * O];
            for (int t = 0; t < L; t++)
            {
                Array.Copy(x, (t * B + b) * I, xb, t * I, I);
                Array.Copy(dy, (t * B + b) * O, dyb, t * O, O);
            }
            var dhb = new float[net.StateLength(1)];
            for (int s = 0; s < net.LayerCount * net.Directions; s++) Array.Copy(dhT, (s * B + b) * H, dhb, s * H, H);
            var yb = new float[L * O]; var hb = new float[dhb.Length]; var cb = new float[dhb.Length];
            net.Forward(yb, hb, hasC ? cb : default, xb, default, default, [L], L, 1, false);
            foreach (var p in net.Parameters) p.ZeroGradient();
            var dxb = new float[xb.Length];
            net.Backward(dxb, default, default, dyb, dhb, default);
            for (int k = 0; k < aloneGrads.Length; k++)
                System.Numerics.Tensors.TensorPrimitives.Add(aloneGrads[k], net.Parameters[k].Gradient.Data, aloneGrads[k]);

            for (int t = 0; t < T; t++)
            {
                var got = y.AsSpan((t * B + b) * O, O);
                if (t < L) GradientCheck.AssertClose(yb.AsSpan(t * O, O), got, 1e-5, 1e-5, $"{name} y[{t},{b}]");
                else foreach (float v in got) Assert.AreEqual(0f, v, $"{name}: output past the end must be zero");
                if (t < L) GradientCheck.AssertClose(dxb.AsSpan(t * I, I), dx.AsSpan((t * B + b) * I, I), 1e-5, 1e-5, $"{name} dx[{t},{b}]");
            }
            for (int s = 0; s < net.LayerCount * net.Directions; s++)
            {
                GradientCheck.AssertClose(hb.AsSpan(s * H, H), hT.AsSpan((s * B + b) * H, H), 1e-5, 1e-5, $"{name} hT[{s},{b}]");
                if (hasC) GradientCheck.AssertClose(cb.AsSpan(s * H, H), cT.AsSpan((s * B + b) * H, H), 1e-5, 1e-5, $"{name} cT[{s},{b}]");
            }
        }
        for (int k = 0; k < aloneGrads.Length; k++)
            GradientCheck.AssertClose(aloneGrads[k], batchGrads[k], 1e-5, 1e-5, $"{name} d{net.Parameters[k].Name}");
    }

    [TestMethod]
    public void RejectsEmptyAndOverlongSequences()
    {
        var net = new RecurrentNetwork(new RecurrentCellSpec(RecurrentCellKind.Lstm), 2, 3);
        var y = new float[4 * 2 * 3];
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => net.Forward(y, default, default, new float[4 * 2 * 2], default, default, [4, 0], 4, 2, false));
        StringAssert.Contains(ex.Message, "empty sequences are not allowed");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => net.Forward(y, default, default, new float[4 * 2 * 2], default, default, [5, 1], 4, 2, false));
        Assert.ThrowsExactly<ArgumentException>(() => net.Forward(y, default, default, new float[7], default, default, [4, 1], 4, 2, false));
    }
}
