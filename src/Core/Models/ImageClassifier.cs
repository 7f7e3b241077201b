using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Convolution;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Models;

/// <summary>The architecture of an <see cref="ImageClassifier"/>.</summary>
public sealed record ImageClassifierConfig
{
    /// <summary>Image height H.</summary>
    public int Height { get; init; } = 28;
    /// <summary>Image width W.</summary>
    public int Width { get; init; } = 28;
    /// <summary>Image channels (1 grey, 3 colour).</summary>
    public int Channels { get; init; } = 1;
    /// <summary>Classes K.</summary>
    public int Classes { get; init; } = 10;
    /// <summary>Output channels of each stage; every stage after the first halves the image (stride 2). ResNet-20: 16, 32, 64.</summary>
    public int[] StageWidths { get; init; } = [16, 32, 64];
    /// <summary>Basic blocks per stage n; depth = 2·n·stages + 2 (3 stages: n = 3 → 20 layers, n = 9 → 56).</summary>
    public int BlocksPerStage { get; init; } = 3;
    /// <summary>Skip connections (a ResNet); false gives the "plain" network of the same depth.</summary>
    public bool Residual { get; init; } = true;
    /// <summary>Batch normalisation after every convolution (without it the convolutions carry biases).</summary>
    public bool BatchNorm { get; init; } = true;
    /// <summary>The activation between layers.</summary>
    public ActivationFunction Activation { get; init; } = ActivationFunction.Relu;
    /// <summary>
    /// "Zero-init residual" (Goyal et al. 2017, §5.1): <see cref="ImageClassifier.Initialize"/> sets the scale γ of
    /// each residual block's last batch norm to 0, so every block starts as its shortcut and the network as a
    /// shallower one, which eases early training at large learning rates. Needs <see cref="Residual"/> and
    /// <see cref="BatchNorm"/> (ignored otherwise). Off by default, as PyTorch's torchvision ResNets: there is no
    /// measurement here yet of its effect on this library's ResNet-20 runs.
    /// </summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>Weighted layers: the first convolution, two per block, and the output layer.</summary>
    public int Depth => 2 + 2 * BlocksPerStage * (StageWidths?.Length ?? 0);

    /// <summary>The configuration of a CIFAR-style ResNet (or plain network) of <paramref name="depth"/> = 6n + 2 layers with three stages.</summary>
    public static ImageClassifierConfig ForDepth(int depth, int height, int width, int channels, int classes, bool residual = true)
    {
        if (depth < 8 || (depth - 2) % 6 != 0) throw new ArgumentOutOfRangeException(nameof(depth), depth, "A three-stage network has 6n + 2 layers: 8, 14, 20, 32, 44, 56, 110 ….");
        return new() { Height = height, Width = width, Channels = channels, Classes = classes, BlocksPerStage = (depth - 2) / 6, Residual = residual };
    }

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (Height < 1 || Width < 1) throw new ArgumentOutOfRangeException(nameof(Height), $"Images must be at least 1×1, got {Height}×{Width}.");
        if (Channels < 1) throw new ArgumentOutOfRangeException(nameof(Channels), Channels, "Must be at least 1.");
        if (Classes < 2) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "A classifier needs at least 2 classes.");
        if (StageWidths is null || StageWidths.Length == 0) throw new ArgumentException("Give at least one stage width.", nameof(StageWidths));
        if (StageWidths.Any(w => w < 1)) throw new ArgumentOutOfRangeException(nameof(StageWidths), $"Stage widths must be at least 1, got {string.Join(", ", StageWidths)}.");
        if (BlocksPerStage < 1) throw new ArgumentOutOfRangeException(nameof(BlocksPerStage), BlocksPerStage, "Must be at least 1.");
        if (!Enum.IsDefined(Activation)) throw new ArgumentOutOfRangeException(nameof(Activation), Activation, "Unknown activation.");
        if (StageWidths.Length > 1 && (Height < 1 << (StageWidths.Length - 1) || Width < 1 << (StageWidths.Length - 1)))
            throw new ArgumentException($"{StageWidths.Length} stages halve a {Height}×{Width} image {StageWidths.Length - 1} times; use fewer stages or larger images.");
    }
}

/// <summary>
/// A CIFAR-style residual network (He et al. 2016) for channels-last images: conv3×3 → batch norm →
/// activation, then stages of <see cref="BasicBlock"/>s (the first block of every stage after the first halves
/// the image and projects the shortcut), global average pooling and a dense layer producing logits (N, K).
/// With <see cref="ImageClassifierConfig.Residual"/> off it is the plain network of the same depth. In training,
/// <see cref="Augmentation"/> flips and shifts the images first.
/// </summary>
/// <remarks>Shape key: N images; H × W × C input; stage s has Hs × Ws positions and Fs channels; K classes.</remarks>
public sealed class ImageClassifier : Module
{
    readonly Conv2d _stemConv;
    readonly BatchNorm2d? _stemNorm;
    readonly ActivationLayer _stemAct;
    readonly BasicBlock[] _blocks;
    readonly (int H, int W)[] _blockInput;   // input size of each block
    readonly Dense _head;
    // Buffers, sized at the first forward of a larger batch:
    float[]? _input;          // (N, H, W, C) the images after augmentation
    float[]? _stemA, _stemB;  // (N, H, W, kF₀) stem convolution output, after batch norm
    float[][] _outputs;       // per block (N, Hs, Ws, Fs) its output
    float[]? _stem;           // (N, H, W, F₀) stem activation output: the first block's input
    float[]? _pooled;         // (N, F_last)
    float[]? _dPooled, _dA, _dB; // gradients: (N, F_last); two (N·H·W·max F) ping-pong buffers
    int _n = -1;     // images the buffers hold
    int _batch;      // images of the last forward

    /// <summary>Builds the network with zero weights; call <see cref="Initialize"/>.</summary>
    public ImageClassifier(ImageClassifierConfig config, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Augmentation = AddChild("augment", new ImageAugmentation());
        var fn = config.Activation;
        int k = fn == ActivationFunction.Maxout ? 2 : 1, f0 = config.StageWidths[0];
        _stemConv = AddChild("conv1", new Conv2d(config.Channels, k * f0, 3, 1, 1, useBias: !config.BatchNorm));
        if (config.BatchNorm) _stemNorm = AddChild("bn1", new BatchNorm2d(k * f0));
        _stemAct = AddChild("act1", new ActivationLayer(fn, f0, seed + 1));
        var blocks = new List<BasicBlock>();
        var sizes = new List<(int, int)>();
        int inC = f0, h = config.Height, w = config.Width;
        for (int s = 0; s < config.StageWidths.Length; s++)
        {
            var stage = AddChild($"layer{s + 1}", new ModuleList());
            for (int b = 0; b < config.BlocksPerStage; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1, outC = config.StageWidths[s];
                var block = stage.Add(b.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    new BasicBlock(inC, outC, stride, config.Residual, config.BatchNorm, fn, seed + 100 * (blocks.Count + 1)));
                blocks.Add(block); sizes.Add((h, w));
                h = block.OutputSize(h); w = block.OutputSize(w); inC = outC;
            }
        }
        _blocks = [.. blocks]; _blockInput = [.. sizes];
        OutputHeight = h; OutputWidth = w;
        _outputs = new float[_blocks.Length][];
        _head = AddChild("fc", new Dense(inC, config.Classes));
    }

    /// <summary>The architecture.</summary>
    public ImageClassifierConfig Config { get; }
    /// <summary>The training-time augmentation (off by default; the image trainer sets it from its options).</summary>
    public ImageAugmentation Augmentation { get; }
    /// <summary>The basic blocks, input to output.</summary>
    public IReadOnlyList<BasicBlock> Blocks => _blocks;
    /// <summary>The output layer.</summary>
    public Dense Head => _head;
    int OutputHeight { get; }
    int OutputWidth { get; }

    /// <summary>Every convolution, input to output.</summary>
    public IEnumerable<Conv2d> Convolutions => _blocks.SelectMany(b => b.Convolutions).Prepend(_stemConv);

    /// <summary>
    /// He-normal convolutions (fan-in, gain √2: the ReLU family), Xavier-uniform output layer; batch norm γ = 1, β = 0,
    /// except γ = 0 in each block's last batch norm with <see cref="ImageClassifierConfig.ZeroInitResidual"/>.
    /// </summary>
    public void Initialize(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        foreach (var conv in Convolutions)
        {
            Initializers.HeNormal(conv.Weight.Value.Data, conv.PatchLength, random);
            if (conv.Bias is not null) Array.Clear(conv.Bias.Value.Data);
            foreach (var p in conv.Parameters) p.MarkChanged();
        }
        bool zeroResidual = Config.ZeroInitResidual && Config.Residual;
        foreach (var block in _blocks)
            if (block.LastNorm is { } norm)
            {
                Array.Fill(norm.Gamma.Value.Data, zeroResidual ? 0f : 1f);
                norm.Gamma.MarkChanged();
            }
        Initializers.Initialize(_head, random);
    }

    /// <summary>Sizes every buffer for batches of up to <paramref name="n"/> images (forward grows them for larger ones).</summary>
    public void Reserve(int n)
    {
        if (n <= _n) return;
        int h = Config.Height, w = Config.Width, kf0 = _stemConv.OutChannels, f0 = Config.StageWidths[0];
        _input = new float[n * h * w * Config.Channels];
        _stemA = new float[n * h * w * kf0];
        _stemB = _stemNorm is null ? null : new float[n * h * w * kf0];
        _stem = new float[n * h * w * f0];
        int largest = n * h * w * kf0;
        for (int i = 0; i < _blocks.Length; i++)
        {
            var (bh, bw) = _blockInput[i];
            int rows = n * _blocks[i].OutputSize(bh) * _blocks[i].OutputSize(bw);
            _outputs[i] = new float[rows * _blocks[i].OutChannels];
            largest = Math.Max(largest, Math.Max(_outputs[i].Length, n * bh * bw * _blocks[i].InChannels));
        }
        _pooled = new float[n * _head.InputSize]; _dPooled = new float[n * _head.InputSize];
        _dA = new float[largest]; _dB = new float[largest];
        _n = n;
    }

    /// <summary>Logits (N, K) for <paramref name="n"/> images (N, H, W, C); <paramref name="training"/> uses batch statistics, augmentation and RReLU's random slopes.</summary>
    public void Forward(Span<float> logits, ReadOnlySpan<float> images, int n, bool training)
    {
        int h = Config.Height, w = Config.Width, c = Config.Channels, size = h * w * c;
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        if (images.Length != n * size) throw new ArgumentException($"{n} images of {h}×{w}×{c} need {n * size} values, got {images.Length}.", nameof(images));
        if (logits.Length != n * Config.Classes) throw new ArgumentException($"Expected {n * Config.Classes} logits, got {logits.Length}.", nameof(logits));
        if (training && Config.BatchNorm && n < 2) throw new ArgumentException("Training with batch normalisation needs at least 2 images per batch.", nameof(n));
        Reserve(n);
        _batch = n;
        var x = _input.AsSpan(0, n * size);
        if (training && Augmentation.Active) Augmentation.Forward(x, images, n, h, w, c);
        else images.CopyTo(x);
        int rows = n * h * w;
        var a = _stemA.AsSpan(0, rows * _stemConv.OutChannels);
        var b = _stemNorm is null ? a : _stemB.AsSpan(0, a.Length);
        _stemConv.Forward(a, x, n, h, w);
        _stemNorm?.Forward(b, a, rows, training);
        _stemAct.Forward(_stem.AsSpan(0, rows * _stemAct.Channels), b, rows, training);
        for (int i = 0; i < _blocks.Length; i++)
            _blocks[i].Forward(Output(i, n), BlockInput(i, n), n, _blockInput[i].H, _blockInput[i].W, training);
        var pooled = _pooled.AsSpan(0, n * _head.InputSize);
        GlobalAveragePool.Forward(pooled, Output(_blocks.Length - 1, n), n, OutputHeight * OutputWidth, _head.InputSize);
        _head.Forward(logits, pooled, n);
    }

    Span<float> Output(int block, int n) => _outputs[block].AsSpan(0, _outputs[block].Length / _n * n);

    ReadOnlySpan<float> BlockInput(int block, int n) =>
        block == 0 ? _stem.AsSpan(0, n * Config.Height * Config.Width * _stemAct.Channels) : Output(block - 1, n);

    /// <summary>Backward pass of the last <see cref="Forward"/>: adds every parameter's gradient from dL/dlogits (N, K).</summary>
    public void Backward(ReadOnlySpan<float> dLogits)
    {
        if (_batch == 0) throw new InvalidOperationException("Backward called before Forward.");
        int n = _batch, h = Config.Height, w = Config.Width, last = _blocks.Length - 1;
        var dPooled = _dPooled.AsSpan(0, n * _head.InputSize);
        dPooled.Clear();
        _head.Backward(dPooled, dLogits, _pooled.AsSpan(0, n * _head.InputSize), n);
        var dy = _dA.AsSpan(0, Output(last, n).Length);
        dy.Clear();
        GlobalAveragePool.Backward(dy, dPooled, n, OutputHeight * OutputWidth, _head.InputSize);
        for (int i = last; i >= 0; i--)
        {
            var input = BlockInput(i, n);
            var dx = (dy.Overlaps(_dA) ? _dB : _dA).AsSpan(0, input.Length);
            _blocks[i].Backward(dx, dy, input, Output(i, n), accumulate: false);
            dy = dx;
        }
        int rows = n * h * w;
        var a = _stemA.AsSpan(0, rows * _stemConv.OutChannels);
        var b = _stemNorm is null ? a : _stemB.AsSpan(0, a.Length);
        var db = (dy.Overlaps(_dA) ? _dB : _dA).AsSpan(0, b.Length);
        _stemAct.Backward(db, dy, b, _stem.AsSpan(0, rows * _stemAct.Channels), rows, accumulate: false);
        var da = db;
        if (_stemNorm is not null)
        {
            da = (db.Overlaps(_dA) ? _dB : _dA).AsSpan(0, a.Length);
            _stemNorm.Backward(da, db, rows, accumulate: false);
        }
        _stemConv.Backward(default, da, _input.AsSpan(0, n * h * w * Config.Channels), n, h, w);
    }

    /// <summary>
    /// Over the activation outputs of the last forward (the stem's and two per block): the share of dead units
    /// — a unit is one channel at one position, dead when its output is ≤ 0 for every image of the batch (for
    /// ReLU: zero; the leaky variants: on their negative side) — and the mean output value.
    /// </summary>
    public (double DeadShare, double MeanActivation) ActivationStatistics()
    {
        if (_batch == 0) throw new InvalidOperationException("Run Forward first.");
        int n = _batch;
        long units = 0, dead = 0; double sum = 0; long values = 0;
        void Measure(ReadOnlySpan<float> y)
        {
            int perImage = y.Length / n;
            for (int u = 0; u < perImage; u++)
            {
                bool alive = false;
                for (int img = 0; img < n; img++)
                {
                    float v = y[img * perImage + u];
                    sum += v;
                    if (v > 0) alive = true;
                }
                units++; if (!alive) dead++;
            }
            values += y.Length;
        }
        Measure(_stem.AsSpan(0, n * Config.Height * Config.Width * _stemAct.Channels));
        for (int i = 0; i < _blocks.Length; i++)
        {
            var (first, second) = _blocks[i].ActivationOutputs(_outputs[i].AsMemory(0, Output(i, n).Length));
            Measure(first.Span); Measure(second.Span);
        }
        return ((double)dead / units, sum / values);
    }
}
