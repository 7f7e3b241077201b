using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class TrainingTests
{
    [TestMethod]
    [DataRow(8, 8)]
    [DataRow(5, 12)]
    [DataRow(12, 5)]
    public void OrthogonalInitialiserGivesOrthonormalVectors(int rows, int cols)
    {
        var w = new float[rows * cols];
        Initializers.Orthogonal(w, rows, cols, new Random(1));
        // WᵀW = I for tall or square W, WWᵀ = I for wide W.
        int n = Math.Min(rows, cols);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                if (rows >= cols) for (int r = 0; r < rows; r++) dot += w[r * cols + i] * w[r * cols + j];
                else for (int c = 0; c < cols; c++) dot += w[i * cols + c] * w[j * cols + c];
                Assert.AreEqual(i == j ? 1.0 : 0.0, dot, 1e-5, $"({i},{j})");
            }
    }

    [TestMethod]
    public void XavierAndHeHaveTheirVariance()
    {
        var rng = new Random(2);
        var w = new float[200_000];
        Initializers.XavierUniform(w, 100, 300, rng);
        double bound = Math.Sqrt(6.0 / 400);
        Assert.IsTrue(w.All(v => Math.Abs(v) <= bound));
        Assert.AreEqual(2.0 / 400, w.Select(v => (double)v * v).Average(), 2e-4);
        Initializers.HeNormal(w, 50, rng);
        Assert.AreEqual(2.0 / 50, w.Select(v => (double)v * v).Average(), 1e-3);
    }

    [TestMethod]
    public void UnitForgetBiasSetsOnlyTheForgetGate()
    {
        var net = new RecurrentNetwork(new RecurrentCellSpec(RecurrentCellKind.Lstm), 3, 4);
        Initializers.InitializeRecurrent(net, RecurrentInitializer.XavierOrthogonal, unitForgetBias: true, new Random(3));
        var b = net.Cells[0].BiasIh.Value.Data;
        for (int j = 0; j < 16; j++) Assert.AreEqual(j is >= 4 and < 8 ? 1f : 0f, b[j], $"bias[{j}]");
        var w = net.Cells[0].WeightHh.Value.Data; // each 4×4 gate block orthogonal
        for (int g = 0; g < 4; g++)
        {
            double dot = 0;
            for (int c = 0; c < 4; c++) dot += w[g * 16 + c] * w[g * 16 + c];
            Assert.AreEqual(1.0, dot, 1e-5);
        }
    }

    [TestMethod]
    public void InitialisationRepeatsForASeed()
    {
        float[] Init(int seed)
        {
            var net = new RecurrentNetwork(new RecurrentCellSpec(RecurrentCellKind.Gru), 3, 4, layers: 2, bidirectional: true);
            Initializers.InitializeRecurrent(net, RecurrentInitializer.XavierOrthogonal, false, new Random(seed));
            return [.. net.Parameters.SelectMany(p => p.Value.Data)];
        }
        CollectionAssert.AreEqual(Init(5), Init(5));
        CollectionAssert.AreNotEqual(Init(5), Init(6));
    }

    [TestMethod]
    public void ClippingByGlobalNormScalesAllGradientsTogether()
    {
        var a = new Parameter("a", 2); var b = new Parameter("b", 1);
        a.Gradient.Data[0] = 3; a.Gradient.Data[1] = 0; b.Gradient.Data[0] = 4; // norm 5
        double norm = GradientClipper.ClipByGlobalNorm([a, b], 1f);
        Assert.AreEqual(5.0, norm, 1e-6);
        Assert.AreEqual(0.6f, a.Gradient.Data[0], 1e-6f);
        Assert.AreEqual(0.8f, b.Gradient.Data[0], 1e-6f);
        Assert.AreEqual(1.0, GradientClipper.GlobalNorm([a, b]), 1e-6);
        GradientClipper.ClipByValue([a, b], 0.7f);
        Assert.AreEqual(0.7f, b.Gradient.Data[0]);
        b.Gradient.Data[0] = float.NaN;
        Assert.IsTrue(double.IsNaN(GradientClipper.ClipByGlobalNorm([a, b], 1f)), "a non-finite norm is reported, not hidden");
    }

    [TestMethod]
    public void AdamFirstStepsMatchTheAlgorithm()
    {
        var p = new Parameter("w", 1);
        p.Value.Data[0] = 1f;
        var adam = new Adam([p], learningRate: 0.1f);
        double m = 0, v = 0, w = 1;
        for (int t = 1; t <= 3; t++)
        {
            double g = 2 * w; // d/dw of w²
            p.Gradient.Data[0] = (float)g;
            adam.Step();
            m = 0.9 * m + 0.1 * g; v = 0.999 * v + 0.001 * g * g;
            w -= 0.1 * (m / (1 - Math.Pow(0.9, t))) / (Math.Sqrt(v / (1 - Math.Pow(0.999, t))) + 1e-8);
            Assert.AreEqual(w, p.Value.Data[0], 1e-5, $"step {t}");
        }
    }

    [TestMethod]
    public void AdamWDecaysWeightsApartFromTheGradient()
    {
        var p = new Parameter("w", 1);
        p.Value.Data[0] = 2f;
        var adamW = Adam.AdamW([p], learningRate: 0.1f, weightDecay: 0.5f);
        p.Gradient.Data[0] = 0f;
        adamW.Step();
        Assert.AreEqual(2f * (1 - 0.1f * 0.5f), p.Value.Data[0], 1e-6f, "zero gradient: only the decoupled decay acts");
    }

    [TestMethod]
    public void SgdWithMomentumFollowsPyTorchsUpdate()
    {
        var p = new Parameter("w", 1);
        p.Value.Data[0] = 1f;
        var sgd = new Sgd([p], learningRate: 0.1f, momentum: 0.9f);
        p.Gradient.Data[0] = 1f; sgd.Step(); // v = 1, w = 0.9
        p.Gradient.Data[0] = 1f; sgd.Step(); // v = 1.9, w = 0.71
        Assert.AreEqual(0.71f, p.Value.Data[0], 1e-6f);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => sgd.LearningRate = float.NaN);
    }
}
