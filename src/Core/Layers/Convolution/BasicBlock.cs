using System.Numerics.Tensors;

namespace DeepSeq.Core.Layers.Convolution;

/// <summary>
/// The basic block of a CIFAR-style ResNet (He et al. 2016): conv3×3 (stride s) → batch norm → activation →
/// conv3×3 → batch norm → + shortcut → activation. The shortcut is the input itself, or a projection
/// (conv1×1 with stride s → batch norm) where the shape changes. Without the shortcut ("plain") it is the
/// same stack of layers, the network a residual one is compared with.
/// </summary>
/// <remarks>
/// <para>Shape key: N images; H × W input, Ho × Wo output (H/s); Cin input, C output channels; M = N·Ho·Wo
/// output rows; k = 2 pieces per channel for maxout, 1 otherwise. x (N, H, W, Cin); y (M, C).</para>
/// <para>Maxout needs 2C inputs per activation, so both convolutions produce kC channels. After the second,
/// the maxout comes before the addition: y = shortcut + max(piece₁, piece₂), which is max over pieces of
/// (shortcut + piece) because the shortcut is the same for both pieces.</para>
/// <para>Without batch norm the convolutions carry a bias.</para>
/// </remarks>
public sealed class BasicBlock : Module
{
    readonly Conv2d _conv1, _conv2;
    readonly BatchNorm2d? _bn1, _bn2, _shortcutNorm;
    readonly ActivationLayer _act1, _act2;
    readonly Conv2d? _shortcut;
    bool Maxout => _act2.Function == ActivationFunction.Maxout;
    int _n, _h, _w;
    // Kept by forward for backward, sized at the first forward of a larger batch:
    float[]? _a1, _b1;   // (M, kC) conv1 output, after batch norm
    float[]? _h1;        // (M, C) first activation output: conv2's input
    float[]? _a2, _b2;   // (M, kC) conv2 output, after batch norm
    float[]? _s, _sb;    // (M, C) projection output, after batch norm
    float[]? _z;         // (M, C) the sum before the last activation (maxout: the maxout output, before the addition)
    float[]? _g1, _g2;   // (M, kC) gradient scratch
    float[]? _g3, _g4;   // (M, C) gradient at the sum; at conv2's input

    /// <summary>Creates the block with zero convolution weights (initialise with He).</summary>
    public BasicBlock(int inChannels, int outChannels, int stride, bool residual, bool batchNorm, ActivationFunction activation, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        InChannels = inChannels; OutChannels = outChannels; Stride = stride; Residual = residual;
        int k = activation == ActivationFunction.Maxout ? 2 : 1;
        _conv1 = AddChild("conv1", new Conv2d(inChannels, k * outChannels, 3, stride, 1, useBias: !batchNorm));
        if (batchNorm) _bn1 = AddChild("bn1", new BatchNorm2d(k * outChannels));
        _act1 = AddChild("act1", new ActivationLayer(activation, outChannels, seed + 1));
        _conv2 = AddChild("conv2", new Conv2d(outChannels, k * outChannels, 3, 1, 1, useBias: !batchNorm));
        if (batchNorm) _bn2 = AddChild("bn2", new BatchNorm2d(k * outChannels));
        if (residual && (stride != 1 || inChannels != outChannels))
        {
            _shortcut = AddChild("shortcut", new Conv2d(inChannels, outChannels, 1, stride, 0, useBias: !batchNorm));
            if (batchNorm) _shortcutNorm = AddChild("shortcut_bn", new BatchNorm2d(outChannels));
        }
        _act2 = AddChild("act2", new ActivationLayer(activation, outChannels, seed + 2));
    }

    /// <summary>Input channels Cin.</summary>
    public int InChannels { get; }
    /// <summary>Output channels C.</summary>
    public int OutChannels { get; }
    /// <summary>Stride of the first convolution (2 where a stage halves the image).</summary>
    public int Stride { get; }
    /// <summary>Whether the block adds its shortcut.</summary>
    public bool Residual { get; }
    /// <summary>The batch norm after the second convolution, whose output meets the shortcut (null without batch norm).</summary>
    public BatchNorm2d? LastNorm => _bn2;
    /// <summary>The convolutions (first, second, projection or null).</summary>
    public IEnumerable<Conv2d> Convolutions => _shortcut is null ? [_conv1, _conv2] : [_conv1, _conv2, _shortcut];

    /// <summary>Output height (or width) for an input of <paramref name="size"/>.</summary>
    public int OutputSize(int size) => _conv1.OutputSize(size);

    /// <summary>The two activation outputs of the last forward, (M, C) each: for dead-unit and mean-activation statistics.</summary>
    public (ReadOnlyMemory<float> First, ReadOnlyMemory<float> Second) ActivationOutputs(ReadOnlyMemory<float> y)
    {
        int m = _n * OutputSize(_h) * OutputSize(_w) * OutChannels;
        return (_h1.AsMemory(0, m), Maxout ? _z.AsMemory(0, m) : y);
    }

    /// <summary>y (M, C) = block(x) for <paramref name="n"/> images of h × w × Cin.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int h, int w, bool training)
    {
        int ho = OutputSize(h), wo = OutputSize(w), rows = n * ho * wo, c = OutChannels, kc = _conv1.OutChannels;
        if (x.Length != n * h * w * InChannels || y.Length != rows * c) throw new ArgumentException($"The block maps {n * h * w * InChannels} inputs to {rows * c} outputs, got {x.Length} and {y.Length}.");
        _n = n; _h = h; _w = w;
        var a1 = Take(ref _a1, rows * kc); var b1 = _bn1 is null ? a1 : Take(ref _b1, rows * kc);
        var h1 = Take(ref _h1, rows * c);
        var a2 = Take(ref _a2, rows * kc); var b2 = _bn2 is null ? a2 : Take(ref _b2, rows * kc);
        var z = Take(ref _z, rows * c);
        _conv1.Forward(a1, x, n, h, w);
        _bn1?.Forward(b1, a1, rows, training);
        _act1.Forward(h1, b1, rows, training);
        _conv2.Forward(a2, h1, n, ho, wo);
        _bn2?.Forward(b2, a2, rows, training);
        if (Maxout)
        {
            _act2.Forward(z, b2, rows, training);
            AddShortcut(y, z, x, n, h, w, rows, training);
        }
        else
        {
            AddShortcut(z, b2, x, n, h, w, rows, training);
            _act2.Forward(y, z, rows, training);
        }
    }

    // target = from + shortcut(x): x itself, or the normalised projection (kept for backward); from alone in a plain block.
    void AddShortcut(Span<float> target, ReadOnlySpan<float> from, ReadOnlySpan<float> x, int n, int h, int w, int rows, bool training)
    {
        if (!Residual) { from.CopyTo(target); return; }
        if (_shortcut is null) { TensorPrimitives.Add(from, x, target); return; }
        var s = Take(ref _s, rows * OutChannels); var sb = _shortcutNorm is null ? s : Take(ref _sb, rows * OutChannels);
        _shortcut.Forward(s, x, n, h, w);
        _shortcutNorm?.Forward(sb, s, rows, training);
        TensorPrimitives.Add(from, sb, target);
    }

    /// <summary>Adds every parameter's gradient and dx += dL/dx (skipped when <paramref name="dx"/> is empty), from dy and the forward's x and y.</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
        => Backward(dx, dy, x, y, accumulate: true);

    /// <summary>
    /// As the public overload, writing dx instead of adding to it when not <paramref name="accumulate"/>. Every layer
    /// inside writes its input gradient into its scratch rather than adding it onto a cleared one: the clears were
    /// whole passes over the block's activations, on one thread.
    /// </summary>
    internal void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, bool accumulate)
    {
        int n = _n, h = _h, w = _w, ho = OutputSize(h), wo = OutputSize(w), rows = n * ho * wo, c = OutChannels, kc = _conv1.OutChannels;
        var g1 = Take(ref _g1, rows * kc); var g2 = Take(ref _g2, rows * kc); var g3 = Take(ref _g3, rows * c); var g4 = Take(ref _g4, rows * c);
        var b1 = (_bn1 is null ? _a1 : _b1).AsSpan(0, rows * kc); var h1 = _h1.AsSpan(0, rows * c);
        var b2 = (_bn2 is null ? _a2 : _b2).AsSpan(0, rows * kc); var z = _z.AsSpan(0, rows * c);
        // dz: the gradient at the sum, which flows into both branches (maxout: dy itself).
        ReadOnlySpan<float> dz = dy;
        if (!Maxout) { _act2.Backward(g3, dy, z, y, rows, accumulate: false); dz = g3; }
        // Second convolution's branch: db2 → da2 → dh1.
        ReadOnlySpan<float> db2 = dz;
        if (Maxout) { _act2.Backward(g1, dz, b2, z, rows, accumulate: false); db2 = g1; }
        ReadOnlySpan<float> da2 = db2;
        if (_bn2 is not null) { _bn2.Backward(g2, db2, rows, accumulate: false); da2 = g2; }
        var dh1 = g4;
        _conv2.Backward(dh1, da2, h1, n, ho, wo, accumulate: false);
        var db1 = g2;
        _act1.Backward(db1, dh1, b1, h1, rows, accumulate: false);
        ReadOnlySpan<float> da1 = db1;
        if (_bn1 is not null) { _bn1.Backward(g1, db1, rows, accumulate: false); da1 = g1; }
        _conv1.Backward(dx, da1, x, n, h, w, accumulate);
        if (!Residual) return;
        if (_shortcut is null) { if (!dx.IsEmpty) TensorPrimitives.Add(dx, dz, dx); return; }
        ReadOnlySpan<float> ds = dz;
        if (_shortcutNorm is not null) { _shortcutNorm.Backward(g2[..(rows * c)], dz, rows, accumulate: false); ds = g2[..(rows * c)]; }
        _shortcut.Backward(dx, ds, x, n, h, w);
    }

    static Span<float> Take(ref float[]? buffer, int length) => Buffer.Ensure(ref buffer, length).AsSpan(0, length);
}
