using DeepSeq.Core.Diagnostics;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>
/// Gradient-flow diagnostics: the recorded dL/dh_k against gradients computed independently (the network run on
/// the suffix from step k, whose dL/dh0 is dL/dh_k), the gains against the states' own gradients, and the trainer's
/// sampling (training unchanged, thinning, divergence).
/// </summary>
[TestClass]
public sealed class GradientFlowTests
{
    public static IEnumerable<object[]> Cells() =>
    [
        ["rnn-tanh", new RecurrentCellSpec(RecurrentCellKind.Rnn)],
        ["lstm-peep-all", new RecurrentCellSpec(RecurrentCellKind.Lstm) { Peepholes = PeepholeGates.All }],
        ["lstm-coupled", new RecurrentCellSpec(RecurrentCellKind.Lstm) { CoupledInputForget = true }],
        ["gru-after", new RecurrentCellSpec(RecurrentCellKind.Gru)],
    ];

    // Loss = w·h_T (+ v·c_T): reads only the last state. Returns (dL/dh_k, dL/dc_k) for the state after step k, computed by
    // running the network on x[k+1..] from (h_k, c_k): its dh0, dc0. k = −1 means the initial state.
    static (float[] Dh, float[] Dc) SuffixGradient(RecurrentNetwork net, float[] x, int steps, int k, float[] w, float[] v)
    {
        int I = net.InputSize, H = net.HiddenSize;
        bool hasC = net.Cells[0].HasCellState;
        var h = new float[H]; var c = new float[H];
        if (k >= 0) net.Forward(new float[(k + 1) * H], h, hasC ? c : default, x.AsSpan(0, (k + 1) * I), default, default, [k + 1], k + 1, 1, false);
        int rest = steps - 1 - k;
        if (rest == 0) return (w, hasC ? v : new float[H]);
        net.Forward(new float[rest * H], new float[H], hasC ? new float[H] : default, x.AsSpan((k + 1) * I, rest * I), h, hasC ? c : default, [rest], rest, 1, false);
        foreach (var p in net.Parameters) p.ZeroGradient();
        var dh0 = new float[H]; var dc0 = new float[H];
        net.Backward(default, dh0, hasC ? dc0 : default, new float[rest * H], w, hasC ? v : default);
        return (dh0, dc0);
    }

    static double Norm(float[] a) => Math.Sqrt(GradientCheck.Dot(a, a));

    [TestMethod]
    [DynamicData(nameof(Cells))]
    public void RecordedNormsAndGainsMatchIndependentGradients(string name, RecurrentCellSpec spec)
    {
        var rng = new Random(name.Length * 17 + 3);
        var net = new RecurrentNetwork(spec, inputSize: 3, hiddenSize: 5);
        GradientCheck.Randomize(net, rng, 0.7f);
        int T = 7, H = 5;
        bool hasC = net.Cells[0].HasCellState;
        var x = GradientCheck.Random(T * 3, rng);
        var w = GradientCheck.Random(H, rng); var v = GradientCheck.Random(H, rng);

        var probe = new GradientFlowProbe(net);
        Assert.IsTrue(probe.HasRecurrentLayers);
        net.Forward(new float[T * H], new float[H], hasC ? new float[H] : default, x, default, default, [T], T, 1, true);
        probe.Arm();
        var dh0 = new float[H]; var dc0 = new float[H];
        net.Backward(default, dh0, hasC ? dc0 : default, new float[T * H], w, hasC ? v : default);
        var flow = probe.Collect().Single();
        Assert.AreEqual("layers.0.forward", flow.Name);
        Assert.AreEqual(T, flow.Length);

        double state0 = 0;
        for (int d = 0; d < T; d++)
        {
            var (dh, dc) = SuffixGradient(net, x, T, T - 1 - d, w, v);
            double dhNorm = Norm(dh), stateNorm = Math.Sqrt(dhNorm * dhNorm + Norm(dc) * Norm(dc));
            if (d == 0) state0 = stateNorm;
            Assert.AreEqual(dhNorm, flow.GradientNorm[d], 1e-4 * dhNorm + 1e-7, $"{name}: ‖dL/dh‖ at distance {d}");
            Assert.AreEqual(stateNorm, flow.StateGradientNorm[d], 1e-4 * stateNorm + 1e-7, $"{name}: ‖dL/ds‖ at distance {d}");
            // Only the last state is read: the product of the gains is the ratio of state-gradient norms.
            Assert.AreEqual(stateNorm / state0, flow.JacobianProduct[d], 1e-4 * stateNorm / state0 + 1e-7, $"{name}: Jacobian product at {d}");
        }
        // The gain of the first step passes the gradient into the initial state: the network's own dh0, dc0.
        double initial = Math.Sqrt(Norm(dh0) * Norm(dh0) + Norm(dc0) * Norm(dc0));
        Assert.AreEqual(initial / flow.StateGradientNorm[T - 1], flow.Gain[T - 1], 1e-4, $"{name}: gain into h0");
        double eta = Math.Exp(flow.Gain.Average(Math.Log));
        Assert.AreEqual(eta, flow.Eta, 1e-9);

        // Disarmed after Collect: another backward records nothing (the trace is detached).
        net.Backward(default, default, default, new float[T * H], w, hasC ? v : default);
        Assert.AreEqual(T, probe.Collect().Single().Length, "collect without arm reads the last armed pass");
    }

    [TestMethod]
    public void DistancesFollowEachSequencesOwnEndInAPaddedBidirectionalBatch()
    {
        var rng = new Random(11);
        var net = new RecurrentNetwork(new RecurrentCellSpec(RecurrentCellKind.Gru), inputSize: 2, hiddenSize: 4, layers: 2, bidirectional: true);
        GradientCheck.Randomize(net, rng, 0.6f);
        int T = 6, O = net.OutputSize;
        int[] lengths = [3, 6];
        var x = GradientCheck.Random(T * 2 * 2, rng);
        var dy = GradientCheck.Random(T * 2 * O, rng);
        for (int t = 0; t < T; t++) for (int b = 0; b < 2; b++) if (t >= lengths[b]) dy.AsSpan((t * 2 + b) * O, O).Clear();
        var probe = new GradientFlowProbe(net);
        net.Forward(new float[T * 2 * O], default, default, x, default, default, lengths, T, 2, false);
        probe.Arm();
        net.Backward(default, default, default, dy, default, default);
        var batch = probe.Collect();
        CollectionAssert.AreEqual(new[] { "layers.0.forward", "layers.0.reverse", "layers.1.forward", "layers.1.reverse" }, batch.Select(l => l.Name).ToArray());

        // The same two sequences alone: the batch's norm at distance d is the RMS over the sequences reaching it.
        var alone = new List<IReadOnlyList<LayerGradientFlow>>();
        for (int b = 0; b < 2; b++)
        {
            int len = lengths[b];
            var xb = new float[len * 2]; var dyb = new float[len * O];
            for (int t = 0; t < len; t++) { x.AsSpan((t * 2 + b) * 2, 2).CopyTo(xb.AsSpan(t * 2)); dy.AsSpan((t * 2 + b) * O, O).CopyTo(dyb.AsSpan(t * O)); }
            net.Forward(new float[len * O], default, default, xb, default, default, [len], len, 1, false);
            probe.Arm();
            net.Backward(default, default, default, dyb, default, default);
            alone.Add(probe.Collect());
        }
        for (int l = 0; l < batch.Count; l++)
        {
            Assert.AreEqual(6, batch[l].Length);
            for (int d = 0; d < 6; d++)
            {
                double a = alone[1][l].GradientNorm[d], b = d < 3 ? alone[0][l].GradientNorm[d] : 0;
                double expected = d < 3 ? Math.Sqrt((a * a + b * b) / 2) : a;
                Assert.AreEqual(expected, batch[l].GradientNorm[d], 1e-5 * expected + 1e-8, $"{batch[l].Name} at distance {d}");
            }
        }
    }

    [TestMethod]
    public void EffectiveMemoryIsWhereTheNormFallsBelowTheThreshold()
    {
        // A tanh RNN with tiny recurrent weights forgets within a few steps; the loss reads the last state only.
        var net = new RecurrentNetwork(new RecurrentCellSpec(RecurrentCellKind.Rnn), inputSize: 1, hiddenSize: 4);
        var rng = new Random(5);
        GradientCheck.Randomize(net, rng, 0.6f);
        Initializers.Orthogonal(net.Cells[0].WeightHh.Value.Data, 4, 4, rng, gain: 0.1f);
        net.Cells[0].WeightHh.MarkChanged();
        int T = 20;
        var probe = new GradientFlowProbe(net, memoryThreshold: 1e-3);
        net.Forward(new float[T * 4], new float[4], default, GradientCheck.Random(T, rng), default, default, [T], T, 1, false);
        probe.Arm();
        net.Backward(default, default, default, new float[T * 4], [1f, -1f, 0.5f, 0.2f], default);
        var flow = probe.Collect().Single();
        Assert.IsNotNull(flow.EffectiveMemory);
        int m = flow.EffectiveMemory.Value;
        Assert.IsTrue(m is > 0 and < 6, $"memory {m}");
        Assert.IsLessThan(1e-3 * flow.GradientNorm[0], flow.GradientNorm[m]);
        for (int d = 1; d < m; d++) Assert.IsGreaterThanOrEqualTo(1e-3 * flow.GradientNorm[0], flow.GradientNorm[d]);
        Assert.IsLessThan(0.1 + 1e-6, flow.Eta, "gain ≤ ‖diag(f′)·W_hh‖ ≤ 0.1");
    }

    static SequenceDataset Adding(int count, int length, int seed)
    {
        var rng = new Random(seed);
        var rows = new List<float[]>(); var labels = new List<float>();
        for (int i = 0; i < count; i++)
        {
            var row = new float[length * 2];
            int a = rng.Next(length / 2), b = length / 2 + rng.Next(length / 2);
            for (int t = 0; t < length; t++) row[2 * t] = rng.NextSingle();
            row[2 * a + 1] = 1; row[2 * b + 1] = 1;
            rows.Add(row); labels.Add(row[2 * a] + row[2 * b]);
        }
        return SequenceDataset.FromValues(rows, 2, labels);
    }

    static SequenceModel AddingModel(RecurrentCellSpec cell, int seed)
    {
        var model = new SequenceModel(new SequenceModelConfig { FeatureSize = 2, Cell = cell, HiddenSize = 8, Bidirectional = false, Pooling = PoolingKind.Last, Dropout = 0f }, seed);
        model.Initialize(new Random(seed));
        return model;
    }

    [TestMethod]
    public void TrainingIsUnchangedAndSamplesAreThinnedEvenly()
    {
        var options = new SequenceTrainingOptions { Epochs = 3, BatchSize = 8, LearningRate = 0.01f, Seed = 2, EarlyStoppingPatience = 0 };
        var data = Adding(160, 12, 1);
        var plain = AddingModel(new RecurrentCellSpec(RecurrentCellKind.Lstm), 4);
        var withFlow = AddingModel(new RecurrentCellSpec(RecurrentCellKind.Lstm), 4);
        var progress = new List<TrainingProgress>();
        var off = SequenceTrainer.Train(plain, SequenceTask.Regression, data, null, options);
        var on = SequenceTrainer.Train(withFlow, SequenceTask.Regression, data, null, options with
        {
            GradientFlow = new GradientFlowOptions { EveryBatches = 2, MaxSamples = 6 }, Progress = new Collect(progress),
        });
        Assert.IsNull(off.GradientFlow);
        foreach (var (a, b) in plain.Parameters.Zip(withFlow.Parameters)) CollectionAssert.AreEqual(a.Value.Data, b.Value.Data, "diagnostics only read gradients");

        var flow = on.GradientFlow!;
        Assert.AreEqual(60L, flow.Steps);
        // 30 sampled steps (every 2nd) thinned to at most 6: every 16th step kept once the interval has doubled three times.
        CollectionAssert.AreEqual(new long[] { 0, 16, 32, 48 }, flow.Samples.Select(s => s.Step).ToArray());
        Assert.IsTrue(flow.Samples.All(s => s.Layers.Count == 1 && s.Layers[0].Name == "recurrent.layers.0.forward" && s.Layers[0].Length == 12));
        Assert.IsTrue(flow.Samples.All(s => s.GradientNorm <= flow.LargestGradientNorm));
        Assert.IsTrue(progress.Any(p => p.GradientFlow is not null));
        Assert.IsTrue(flow.Describe().Any(line => line.Contains("η", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void AnExplodingRunIsReportedWithItsGradientFlowNotACrash()
    {
        // A ReLU RNN whose recurrent weights have gain 3: without clipping the gradients grow like 3^T and overflow.
        var model = AddingModel(new RecurrentCellSpec(RecurrentCellKind.Rnn) { RnnActivation = ActivationKind.Relu }, 7);
        var w = model.Recurrent.Cells[0].WeightHh;
        Array.Clear(w.Value.Data);
        for (int i = 0; i < 8; i++) w.Value.Data[i * 8 + i] = 3f;
        w.MarkChanged();
        var input = model.Recurrent.Cells[0].WeightIh;
        for (int i = 0; i < input.Value.Length; i++) input.Value.Data[i] = 1f;
        input.MarkChanged();
        var report = SequenceTrainer.Train(model, SequenceTask.Regression, Adding(64, 60, 3), null, new SequenceTrainingOptions
        {
            Epochs = 2, BatchSize = 8, LearningRate = 0.01f, GradientClipNorm = 0, GradientFlow = new GradientFlowOptions { EveryBatches = 1 },
        });
        Assert.IsNotNull(report.Divergence);
        var flow = report.GradientFlow!;
        Assert.IsFalse(double.IsFinite(flow.LargestGradientNorm) && flow.LargestGradientNorm < 1e30, $"largest {flow.LargestGradientNorm}");
        var first = flow.First!.Layers[0];
        Assert.IsGreaterThan(1.5, first.Eta, "the gains show the explosion");
        Assert.IsTrue(model.Parameters.All(p => p.Value.Data.All(float.IsFinite)), "the last good weights are kept");
    }

    [TestMethod]
    public void BadOptionsAreRefused()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TrainingOptions { GradientFlow = new GradientFlowOptions { EveryBatches = 0 } }.Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TrainingOptions { GradientFlow = new GradientFlowOptions { MaxSamples = 1 } }.Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TrainingOptions { GradientFlow = new GradientFlowOptions { MemoryThreshold = 1 } }.Validate());
        Assert.ThrowsExactly<ArgumentNullException>(() => new GradientFlowProbe(null!));
        Assert.IsFalse(new GradientFlowProbe(new Dense(2, 2)).HasRecurrentLayers);
    }

    sealed class Collect(List<TrainingProgress> into) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => into.Add(value);
    }
}
