using DeepSeq.Core.Layers.Convolution;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DeepSeq.Bench;

/// <summary>
/// The small ResNet on Fashion-MNIST-shaped input (28×28 grey, batch 128, 10 classes): ResNet-20 (widths
/// 16/32/64, batch norm, ReLU, projection shortcuts) in DeepSeq and in libtorch (channels-first, the same network
/// in functional ops with parameters as leaves). Two cases: a training step (forward in training mode, softmax
/// cross-entropy, backward and an SGD step with Nesterov momentum) and a forward pass in inference mode (batch norm
/// with its running statistics; torch under no_grad).
/// </summary>
static class ResNetCases
{
    public const string TrainStepName = "ResNet-20 train step 28×28×1 B128";
    public const string ForwardName = "ResNet-20 forward 28×28×1 B128";
    const int Batch = 128, Side = 28, Classes = 10;

    /// <summary>
    /// Convolution GEMM work: each convolution 2·N·Ho·Wo·F·K forward (K = KH·KW·Cin), and twice that backward
    /// (dW and dX) except the first, whose input gradient is not needed (the image); the head's 2·N·64·10, times 3.
    /// Batch norm, activations, pooling and the optimiser are not counted.
    /// </summary>
    public const string Formula = "Σ_conv 2·N·Ho·Wo·F·K × (3, or 2 for the first) + 3·2·N·64·10";

    /// <summary>Forward GEMM work only: each convolution's 2·N·Ho·Wo·F·K and the head's 2·N·64·10.</summary>
    public const string ForwardFormula = "Σ_conv 2·N·Ho·Wo·F·K + 2·N·64·10";

    static (ImageClassifier Model, float[] Images, int[] Labels) Setup()
    {
        var config = new ImageClassifierConfig { Height = Side, Width = Side, Channels = 1, Classes = Classes };
        var model = new ImageClassifier(config, 1);
        var rng = new Random(1);
        model.Initialize(rng);
        model.Reserve(Batch);
        var images = new float[Batch * Side * Side];
        for (int i = 0; i < images.Length; i++) images[i] = rng.NextSingle() - 0.5f;
        var labels = Enumerable.Range(0, Batch).Select(i => i % Classes).ToArray();
        return (model, images, labels);
    }

    public static BenchCase Forward(BenchContext ctx)
    {
        var (model, images, _) = Setup();
        var logits = new float[Batch * Classes];
        Action ours = () => model.Forward(logits, images, Batch, training: false);
        var (net, parameters, buffers) = TorchNetwork();
        var tx = torch.tensor(images, [Batch, 1, Side, Side]);
        Action theirs = () =>
        {
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            net(tx, false).data<float>().CopyTo(logits, 0);
        };
        return new BenchCase(ForwardName, Flops(model, training: false), ForwardFormula, ours, theirs, ctx.Settings(warmupRuns: 3, repetitions: 15, quickRepetitions: 2),
            ctx.Threads, resources: new Cases.Disposables([tx, .. parameters, .. buffers]));
    }

    public static BenchCase TrainStep(BenchContext ctx)
    {
        var (model, images, labels) = Setup();
        var logits = new float[Batch * Classes]; var dLogits = new float[logits.Length]; var probabilities = new float[logits.Length];
        var sgd = new Sgd(model.Parameters, 0.05f, 0.9f, nesterov: true, weightDecay: 5e-4f);
        Action ours = () =>
        {
            sgd.ZeroGradients();
            model.Forward(logits, images, Batch, training: true);
            Losses.SoftmaxCrossEntropy(logits, labels, Classes, dLogits, probabilities);
            model.Backward(dLogits);
            sgd.Step();
        };
        var (theirs, resources) = Torch(images, labels);
        return new BenchCase(TrainStepName, Flops(model, training: true), Formula, ours, theirs, ctx.Settings(warmupRuns: 2, repetitions: 8, quickRepetitions: 2), ctx.Threads, resources: resources);
    }

    // The training step's GEMM work, or the forward's alone (`training: false`).
    static double Flops(ImageClassifier model, bool training)
    {
        double flops = 0;
        int h = Side;
        var stem = model.Convolutions.First();
        flops += (training ? 2 : 1) * 2.0 * Batch * h * h * stem.OutChannels * stem.PatchLength; // training: forward + dW, no dX for the image
        int passes = training ? 3 : 1;
        foreach (var block in model.Blocks)
        {
            int ho = block.OutputSize(h);
            foreach (var conv in block.Convolutions) flops += passes * 2.0 * Batch * ho * ho * conv.OutChannels * conv.PatchLength;
            h = ho;
        }
        return flops + passes * 2.0 * Batch * model.Head.InputSize * Classes;
    }

    // The same network in libtorch: NCHW, weights (F, Cin, KH, KW), Kaiming-normal; batch norm with batch statistics
    // when training, its running statistics otherwise. Logits from images (N, 1, H, W).
    static (Func<Tensor, bool, Tensor> Logits, List<TorchSharp.Modules.Parameter> Parameters, List<Tensor> Buffers) TorchNetwork()
    {
        var parameters = new List<TorchSharp.Modules.Parameter>();
        var buffers = new List<Tensor>();
        TorchSharp.Modules.Parameter P(Tensor t) { var p = new TorchSharp.Modules.Parameter(t); parameters.Add(p); return p; }
        TorchSharp.Modules.Parameter Conv(int f, int cin, int k) => P(torch.randn(f, cin, k, k) * Math.Sqrt(2.0 / (cin * k * k)));
        (TorchSharp.Modules.Parameter, TorchSharp.Modules.Parameter, Tensor, Tensor) Norm(int c)
        {
            var mean = torch.zeros(c); var variance = torch.ones(c);
            buffers.Add(mean); buffers.Add(variance);
            return (P(torch.ones(c)), P(torch.zeros(c)), mean, variance);
        }
        Tensor Bn(Tensor x, (TorchSharp.Modules.Parameter W, TorchSharp.Modules.Parameter B, Tensor M, Tensor V) n, bool training) =>
            F.batch_norm(x, n.M, n.V, n.W, n.B, training, 0.1, 1e-5);
        var stem = Conv(16, 1, 3); var stemNorm = Norm(16);
        var blocks = new List<Func<Tensor, bool, Tensor>>();
        int cin = 16;
        foreach (var (width, stage) in new[] { (16, 0), (32, 1), (64, 2) })
            for (int b = 0; b < 3; b++)
            {
                int stride = stage > 0 && b == 0 ? 2 : 1, inC = cin;
                var c1 = Conv(width, inC, 3); var n1 = Norm(width); var c2 = Conv(width, width, 3); var n2 = Norm(width);
                bool project = stride != 1 || inC != width;
                var cs = project ? Conv(width, inC, 1) : null; var ns = project ? Norm(width) : default;
                blocks.Add((x, training) =>
                {
                    var a = F.relu(Bn(F.conv2d(x, c1, strides: [stride, stride], padding: [1, 1]), n1, training));
                    a = Bn(F.conv2d(a, c2, padding: [1, 1]), n2, training);
                    var s = cs is null ? x : Bn(F.conv2d(x, cs, strides: [stride, stride]), ns, training);
                    return F.relu(a + s);
                });
                cin = width;
            }
        var fcW = P(torch.randn(Classes, 64) * Math.Sqrt(1.0 / 64)); var fcB = P(torch.zeros(Classes));
        Tensor Logits(Tensor images, bool training)
        {
            var h = F.relu(Bn(F.conv2d(images, stem, padding: [1, 1]), stemNorm, training));
            foreach (var block in blocks) h = block(h, training);
            return F.linear(h.mean([2, 3]), fcW, fcB);
        }
        return (Logits, parameters, buffers);
    }

    // The training step in libtorch: the network above in training mode, cross-entropy, backward, SGD.
    static (Action, IDisposable) Torch(float[] images, int[] labels)
    {
        var (net, parameters, buffers) = TorchNetwork();
        var tx = torch.tensor(images, [Batch, 1, Side, Side]);
        var ty = torch.tensor(labels.Select(l => (long)l).ToArray(), [Batch]);
        var optimizer = torch.optim.SGD(parameters, 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4);
        Action theirs = () =>
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = F.cross_entropy(net(tx, true), ty);
            loss.backward();
            optimizer.step();
        };
        return (theirs, new Cases.Disposables([tx, ty, .. parameters, .. buffers]));
    }
}
