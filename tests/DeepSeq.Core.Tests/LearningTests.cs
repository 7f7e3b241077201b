using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

/// <summary>
/// The adding problem (Hochreiter &amp; Schmidhuber 1997): a length-50 sequence of (value, marker) pairs with two
/// markers, one in each half; the target is the sum of the two marked values. Predicting the mean scores an
/// MSE of about 0.167; a gated cell must carry a value across up to 49 steps to do better.
/// </summary>
[TestClass]
public sealed class LearningTests
{
    const int T = 50, B = 32, H = 24;

    sealed class AddingProblem(RecurrentCellSpec spec, int seed, float recurrentGain = 1f)
    {
        readonly Random _rng = new(seed);
        public readonly RecurrentNetwork Net = new(spec, 2, H);
        public readonly Dense Head = new(H, 1);
        readonly float[] _x = new float[T * B * 2], _y = new float[T * B * H], _hT = new float[B * H], _pred = new float[B],
            _target = new float[B], _dPred = new float[B], _dh = new float[B * H], _dy = new float[T * B * H];
        readonly int[] _lengths = Enumerable.Repeat(T, B).ToArray();

        public List<Parameter> Parameters => [.. Net.Parameters, .. Head.Parameters];

        public void Initialize()
        {
            Initializers.InitializeRecurrent(Net, RecurrentInitializer.XavierOrthogonal, unitForgetBias: true, _rng);
            foreach (var cell in Net.Cells)
                { System.Numerics.Tensors.TensorPrimitives.Multiply(cell.WeightHh.Value.Data, recurrentGain, cell.WeightHh.Value.Data); cell.WeightHh.MarkChanged(); }
            Initializers.Initialize(Head, _rng);
        }

        /// <summary>One training step; returns the batch MSE before the update.</summary>
        public double Step(Optimizer optimizer, float? clipNorm)
        {
            Array.Clear(_x);
            for (int b = 0; b < B; b++)
            {
                int p1 = _rng.Next(T / 2), p2 = T / 2 + _rng.Next(T / 2);
                for (int t = 0; t < T; t++) _x[(t * B + b) * 2] = _rng.NextSingle();
                _x[(p1 * B + b) * 2 + 1] = 1; _x[(p2 * B + b) * 2 + 1] = 1;
                _target[b] = _x[(p1 * B + b) * 2] + _x[(p2 * B + b) * 2];
            }
            Net.Forward(_y, _hT, default, _x, default, default, _lengths, T, B, training: true);
            Head.Forward(_pred, _hT, B);
            double loss = Losses.MeanSquaredError(_pred, _target, _dPred);
            optimizer.ZeroGradients();
            Array.Clear(_dh);
            Head.Backward(_dh, _dPred, _hT, B);
            Net.Backward(default, default, default, _dy, _dh, default);
            if (clipNorm is float c) GradientClipper.ClipByGlobalNorm(optimizer.Parameters, c);
            optimizer.Step();
            return loss;
        }
    }

    static double Train(RecurrentCellSpec spec, int maxSteps)
    {
        var problem = new AddingProblem(spec, seed: 1);
        problem.Initialize();
        var adam = new Adam(problem.Parameters, 0.01f);
        double smoothed = 0.17;
        for (int i = 0; i < maxSteps && smoothed > 0.005; i++) smoothed = 0.95 * smoothed + 0.05 * problem.Step(adam, 1f);
        return smoothed;
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void GatedCellsSolveTheAddingProblemAtLength50(RecurrentCellKind kind) =>
        Assert.IsLessThan(0.01, Train(new RecurrentCellSpec(kind), 1500), $"{kind} should reach near-zero error");

    [TestMethod]
    public void TanhRnnDoesNotSolveTheAddingProblemAtLength50() =>
        Assert.IsGreaterThan(0.05, Train(new RecurrentCellSpec(RecurrentCellKind.Rnn), 1500), "a plain RNN should stay near the 0.167 baseline");

    [TestMethod]
    public void ClippingKeepsAnExplodingRnnFinite()
    {
        // ReLU RNN with recurrent weights at gain 1.5 and a large SGD step: gradients explode through 50 steps.
        var spec = new RecurrentCellSpec(RecurrentCellKind.Rnn) { RnnActivation = ActivationKind.Relu };
        bool Diverges(float? clip)
        {
            var problem = new AddingProblem(spec, seed: 2, recurrentGain: 1.5f);
            problem.Initialize();
            var sgd = new Sgd(problem.Parameters, learningRate: 0.05f, momentum: 0.9f);
            for (int i = 0; i < 100; i++)
            {
                double loss = problem.Step(sgd, clip);
                if (!double.IsFinite(loss) || problem.Parameters.Any(p => p.Value.Data.Any(v => !float.IsFinite(v)))) return true;
            }
            return false;
        }
        Assert.IsTrue(Diverges(null), "without clipping this run should blow up (else the test proves nothing)");
        Assert.IsFalse(Diverges(1f), "with clipping by global norm 1 every loss and weight stays finite");
    }
}
