using System.Text.Json;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DeepSeq.Fixtures;

/// <summary>
/// The convolutional fixture (cnn/block.json): conv3×3 → batch norm → ReLU, then a residual basic block with a
/// projection shortcut (conv3×3 stride 2 → BN → ReLU → conv3×3 → BN, + conv1×1 stride 2 → BN, → ReLU), in
/// libtorch float64 with autograd: the output in training mode, every gradient of L = Σ wy·y, the running
/// statistics after that step, and the output in inference mode with them. PyTorch's layouts: NCHW, weights
/// (F, Cin, KH, KW).
/// </summary>
static class ConvolutionReference
{
    const int N = 3, H = 6, W = 5, Cin = 2, Stem = 3, Out = 4;

    public static void Write(string directory, JsonSerializerOptions options)
    {
        var rng = new Random(300);
        // Values on a 1/1000 grid: exact in float32 and short in JSON.
        float[] R(int n, float scale, float offset = 0) => [.. Enumerable.Range(0, n).Select(_ => MathF.Round(offset + scale * (2f * rng.NextSingle() - 1f), 3))];
        var p = new Dictionary<string, float[]>
        {
            ["conv1.weight"] = R(Stem * Cin * 9, 0.5f),
            ["layer.conv1.weight"] = R(Out * Stem * 9, 0.4f),
            ["layer.conv2.weight"] = R(Out * Out * 9, 0.4f),
            ["layer.shortcut.weight"] = R(Out * Stem, 0.6f),
        };
        var shapes = new Dictionary<string, long[]>
        {
            ["conv1.weight"] = [Stem, Cin, 3, 3], ["layer.conv1.weight"] = [Out, Stem, 3, 3],
            ["layer.conv2.weight"] = [Out, Out, 3, 3], ["layer.shortcut.weight"] = [Out, Stem, 1, 1],
        };
        foreach (var (bn, c) in new[] { ("bn1", Stem), ("layer.bn1", Out), ("layer.bn2", Out), ("layer.shortcut_bn", Out) })
        {
            p[bn + ".weight"] = R(c, 0.3f, 1f); p[bn + ".bias"] = R(c, 0.2f);
            p[bn + ".running_mean"] = R(c, 0.2f); p[bn + ".running_var"] = R(c, 0.4f, 1f);
            foreach (var s in new[] { ".weight", ".bias", ".running_mean", ".running_var" }) shapes[bn + s] = [c];
        }
        var x = R(N * Cin * H * W, 1f);
        int ho = (H - 1) / 2 + 1, wo = (W - 1) / 2 + 1;
        var wy = R(N * Out * ho * wo, 1f);

        Tensor T(float[] v, long[] shape, bool grad) => tensor(v, shape, dtype: ScalarType.Float64).requires_grad_(grad);
        var t = p.ToDictionary(kv => kv.Key, kv => T(kv.Value, shapes[kv.Key], !kv.Key.Contains("running")));
        var input = T(x, [N, Cin, H, W], true);
        Tensor Norm(Tensor v, string bn, bool training) => F.batch_norm(v, t[bn + ".running_mean"], t[bn + ".running_var"], t[bn + ".weight"], t[bn + ".bias"], training, 0.1, 1e-5);
        Tensor Forward(bool training)
        {
            var h = F.relu(Norm(F.conv2d(input, t["conv1.weight"], padding: [1, 1]), "bn1", training));
            var a = F.relu(Norm(F.conv2d(h, t["layer.conv1.weight"], strides: [2, 2], padding: [1, 1]), "layer.bn1", training));
            a = Norm(F.conv2d(a, t["layer.conv2.weight"], padding: [1, 1]), "layer.bn2", training);
            var s = Norm(F.conv2d(h, t["layer.shortcut.weight"], strides: [2, 2]), "layer.shortcut_bn", training);
            return F.relu(a + s);
        }
        var yTrain = Forward(training: true);
        (yTrain * T(wy, [N, Out, ho, wo], false)).sum().backward();
        var gradients = t.Where(kv => !kv.Key.Contains("running")).ToDictionary(kv => kv.Key, kv => Floats(kv.Value.grad!));
        gradients["x"] = Floats(input.grad!);
        var running = t.Where(kv => kv.Key.Contains("running")).ToDictionary(kv => kv.Key, kv => Floats(kv.Value));
        Tensor yEval;
        using (no_grad()) yEval = Forward(training: false);
        var doc = new Dictionary<string, object?>
        {
            ["source"] = "libtorch 2.10.0 via TorchSharp-cpu 0.107.0: functional conv2d, batch_norm (momentum 0.1, eps 1e-5), relu; float64, autograd",
            ["n"] = N, ["height"] = H, ["width"] = W, ["in_channels"] = Cin, ["stem_channels"] = Stem, ["out_channels"] = Out,
            ["x"] = x, ["output_weights"] = wy, ["parameters"] = p,
            ["y_train"] = Floats(yTrain), ["gradients"] = gradients, ["running_after_step"] = running, ["y_eval"] = Floats(yEval),
        };
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "block.json"), JsonSerializer.Serialize(doc, options));
        Console.WriteLine("cnn/block.json: conv → batch norm → ReLU → residual block, float64");
    }

    static float[] Floats(Tensor v) => [.. v.detach().to_type(ScalarType.Float32).contiguous().data<float>()];
}
