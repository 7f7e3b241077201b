using System.Text.Json;
using DeepSeq.Core.Layers.Convolution;

namespace DeepSeq.Core.Tests;

/// <summary>
/// Parity with libtorch (float64, Fixtures/cnn/block.json from tests/ReferenceFixtures): conv3×3 → batch norm →
/// ReLU → a residual basic block with a projection shortcut; the training-mode output, every gradient, the
/// running statistics after the step and the inference-mode output. The fixture is NCHW with PyTorch's weight
/// layout (F, Cin, KH, KW); DeepSeq is channels-last with weights (F, KH, KW, Cin), so values are transposed here.
/// </summary>
[TestClass]
public sealed class ConvolutionParityTests
{
    // (N, C, H, W) → (N, H, W, C), and back.
    static float[] ToChannelsLast(float[] v, int n, int c, int h, int w)
    {
        var r = new float[v.Length];
        for (int i = 0; i < n; i++) for (int ch = 0; ch < c; ch++) for (int p = 0; p < h * w; p++) r[(i * h * w + p) * c + ch] = v[(i * c + ch) * h * w + p];
        return r;
    }

    static float[] ToChannelsFirst(float[] v, int n, int c, int h, int w)
    {
        var r = new float[v.Length];
        for (int i = 0; i < n; i++) for (int ch = 0; ch < c; ch++) for (int p = 0; p < h * w; p++) r[(i * c + ch) * h * w + p] = v[(i * h * w + p) * c + ch];
        return r;
    }

    [TestMethod]
    public void StemAndResidualBlockMatchLibTorch()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "cnn", "block.json")));
        var root = doc.RootElement;
        int n = root.GetProperty("n").GetInt32(), h = root.GetProperty("height").GetInt32(), w = root.GetProperty("width").GetInt32();
        int cin = root.GetProperty("in_channels").GetInt32(), stem = root.GetProperty("stem_channels").GetInt32(), outC = root.GetProperty("out_channels").GetInt32();
        static float[] A(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];
        var p = root.GetProperty("parameters").EnumerateObject().ToDictionary(o => o.Name, o => A(o.Value));

        var conv = new Conv2d(cin, stem, 3, 1, 1);
        var bn = new BatchNorm2d(stem);
        var act = new ActivationLayer(ActivationFunction.Relu, stem);
        var block = new BasicBlock(stem, outC, 2, residual: true, batchNorm: true, ActivationFunction.Relu);
        // PyTorch names → this library's: weights transposed to channels-last, batch-norm tensors as they are.
        var map = new Dictionary<string, Tensor> { ["conv1.weight"] = conv.Weight.Value };
        foreach (var (name, t) in bn.NamedTensors()) map["bn1." + name] = t;
        foreach (var (name, t) in block.NamedTensors()) map["layer." + name] = t;
        foreach (var (name, values) in p)
        {
            var target = map[name];
            var data = target.Shape.Length == 4 ? ToChannelsLast(values, target.Shape[0], target.Shape[3], target.Shape[1], target.Shape[2]) : values;
            data.CopyTo(target.Data, 0);
        }
        foreach (var m in new Module[] { conv, bn, block }) foreach (var q in m.Parameters) q.MarkChanged();

        int ho = block.OutputSize(h), wo = block.OutputSize(w), rows = n * h * w;
        var x = ToChannelsLast(A(root.GetProperty("x")), n, cin, h, w);
        var a = new float[rows * stem]; var b = new float[a.Length]; var s = new float[a.Length];
        var y = new float[n * ho * wo * outC];
        void Forward(bool training)
        {
            conv.Forward(a, x, n, h, w);
            bn.Forward(b, a, rows, training);
            act.Forward(s, b, rows, training);
            block.Forward(y, s, n, h, w, training);
        }
        Forward(training: true);
        GradientCheck.AssertClose(A(root.GetProperty("y_train")), ToChannelsFirst(y, n, outC, ho, wo), 1e-4, 1e-5, "y (training)");

        var dy = ToChannelsLast(A(root.GetProperty("output_weights")), n, outC, ho, wo);
        var ds = new float[s.Length]; var db = new float[s.Length]; var da = new float[s.Length]; var dx = new float[x.Length];
        block.Backward(ds, dy, s, y);
        act.Backward(db, ds, b, s, rows);
        bn.Backward(da, db, rows);
        conv.Backward(dx, da, x, n, h, w);
        var gradients = root.GetProperty("gradients").EnumerateObject().ToDictionary(o => o.Name, o => A(o.Value));
        GradientCheck.AssertClose(gradients["x"], ToChannelsFirst(dx, n, cin, h, w), 1e-4, 1e-5, "dx");
        var parameters = new Dictionary<string, Parameter> { ["conv1.weight"] = conv.Weight };
        foreach (var (name, q) in bn.NamedParameters()) parameters["bn1." + name] = q;
        foreach (var (name, q) in block.NamedParameters()) parameters["layer." + name] = q;
        Assert.HasCount(gradients.Count - 1, parameters, "every parameter has a reference gradient");
        foreach (var (name, q) in parameters)
        {
            var g = q.Gradient;
            var got = g.Shape.Length == 4 ? ToChannelsFirst(g.Data, g.Shape[0], g.Shape[3], g.Shape[1], g.Shape[2]) : g.Data;
            GradientCheck.AssertClose(gradients[name], got, 1e-4, 1e-5, "d" + name);
        }
        foreach (var prop in root.GetProperty("running_after_step").EnumerateObject())
            GradientCheck.AssertClose(A(prop.Value), map[prop.Name].Data, 1e-5, 1e-6, prop.Name);

        Forward(training: false);
        GradientCheck.AssertClose(A(root.GetProperty("y_eval")), ToChannelsFirst(y, n, outC, ho, wo), 1e-4, 1e-5, "y (inference)");
    }
}
