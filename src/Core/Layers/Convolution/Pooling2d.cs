using System.Numerics.Tensors;

namespace DeepSeq.Core.Layers.Convolution;

/// <summary>Which statistic a <see cref="Pool2d"/> takes over its window.</summary>
public enum Pool2dKind
{
    /// <summary>The largest value (PyTorch <c>nn.MaxPool2d</c>); the gradient goes to the first largest.</summary>
    Max,
    /// <summary>The mean over the window, padding counted as zeros (PyTorch <c>nn.AvgPool2d</c>, <c>count_include_pad=True</c>).</summary>
    Average,
}

/// <summary>
/// Max or average pooling over square windows of channels-last images, with stride and zero/−∞ padding.
/// Shape key: N images, H × W input, C channels, Ho × Wo output. x (N, H, W, C); y (N, Ho, Wo, C).
/// </summary>
public sealed class Pool2d
{
    int[]? _argmax; // (N, Ho, Wo, C) max pooling: the input index that won; backward routes the gradient there

    /// <summary>Creates a pooling of <paramref name="kernelSize"/> windows (stride defaults to the kernel size, as PyTorch).</summary>
    public Pool2d(Pool2dKind kind, int kernelSize, int stride = 0, int padding = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(stride);
        if (padding < 0 || 2 * padding > kernelSize) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"Padding must be in [0, {kernelSize / 2}] (at most half the kernel).");
        Kind = kind; KernelSize = kernelSize; Stride = stride == 0 ? kernelSize : stride; Padding = padding;
    }

    /// <summary>Max or average.</summary>
    public Pool2dKind Kind { get; }
    /// <summary>Window height and width.</summary>
    public int KernelSize { get; }
    /// <summary>Step between windows.</summary>
    public int Stride { get; }
    /// <summary>Padding on every side.</summary>
    public int Padding { get; }

    /// <summary>Output height (or width) for an input of <paramref name="size"/>.</summary>
    public int OutputSize(int size)
    {
        if (size + 2 * Padding < KernelSize) throw new ArgumentException($"An input of size {size} with padding {Padding} is smaller than the {KernelSize}×{KernelSize} window.");
        return (size + 2 * Padding - KernelSize) / Stride + 1;
    }

    /// <summary>y = pool(x) for <paramref name="n"/> images of h × w × c.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int h, int w, int c)
    {
        int ho = OutputSize(h), wo = OutputSize(w);
        if (x.Length != n * h * w * c || y.Length != n * ho * wo * c) throw new ArgumentException($"Pooling needs x of {n * h * w * c} and y of {n * ho * wo * c} values, got {x.Length} and {y.Length}.");
        if (Kind == Pool2dKind.Max && (_argmax is null || _argmax.Length < y.Length)) _argmax = new int[y.Length];
        var argmax = _argmax;
        float inv = 1f / (KernelSize * KernelSize);
        int o = 0;
        for (int img = 0; img < n; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++, o += c)
                {
                    var yo = y.Slice(o, c);
                    if (Kind == Pool2dKind.Max) yo.Fill(float.NegativeInfinity); else yo.Clear();
                    foreach (int i in Window(img, oy, ox, h, w, c))
                    {
                        var xi = x.Slice(i, c);
                        if (Kind == Pool2dKind.Average) { TensorPrimitives.Add(yo, xi, yo); continue; }
                        for (int j = 0; j < c; j++)
                            if (xi[j] > yo[j]) { yo[j] = xi[j]; argmax![o + j] = i + j; }
                    }
                    if (Kind == Pool2dKind.Average) TensorPrimitives.Multiply(yo, inv, yo);
                }
    }

    /// <summary>dx += the gradient of the last forward: to the winner (max) or spread evenly over the window (average).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, int n, int h, int w, int c)
    {
        int ho = OutputSize(h), wo = OutputSize(w);
        if (dx.Length != n * h * w * c || dy.Length != n * ho * wo * c) throw new ArgumentException("Pooling gradients do not match the shapes.");
        if (Kind == Pool2dKind.Max)
        {
            var argmax = _argmax ?? throw new InvalidOperationException("Backward called before Forward.");
            for (int o = 0; o < dy.Length; o++) dx[argmax[o]] += dy[o];
            return;
        }
        float inv = 1f / (KernelSize * KernelSize);
        int at = 0;
        for (int img = 0; img < n; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++, at += c)
                    foreach (int i in Window(img, oy, ox, h, w, c))
                        TensorPrimitives.MultiplyAdd(dy.Slice(at, c), inv, dx.Slice(i, c), dx.Slice(i, c));
    }

    // Offsets of the in-image positions of a window (padding contributes −∞ to max and 0 to the average).
    WindowEnumerable Window(int img, int oy, int ox, int h, int w, int c) => new(this, img, oy, ox, h, w, c);

    readonly struct WindowEnumerable(Pool2d pool, int img, int oy, int ox, int h, int w, int c)
    {
        public IEnumerator<int> GetEnumerator()
        {
            for (int ky = 0; ky < pool.KernelSize; ky++)
            {
                int iy = oy * pool.Stride - pool.Padding + ky;
                if ((uint)iy >= (uint)h) continue;
                for (int kx = 0; kx < pool.KernelSize; kx++)
                {
                    int ix = ox * pool.Stride - pool.Padding + kx;
                    if ((uint)ix < (uint)w) yield return ((img * h + iy) * w + ix) * c;
                }
            }
        }
    }
}

/// <summary>
/// Global average pooling: the mean of each channel over all positions of an image, (N, P, C) → (N, C)
/// (P = H·W). The head of a ResNet: no weights, any input size.
/// </summary>
public static class GlobalAveragePool
{
    /// <summary>y[n, c] = mean over p of x[n, p, c].</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int positions, int c)
    {
        if (x.Length != n * positions * c || y.Length != n * c) throw new ArgumentException($"Global pooling needs x of {n * positions * c} and y of {n * c} values, got {x.Length} and {y.Length}.");
        y.Clear();
        for (int img = 0; img < n; img++)
        {
            var yi = y.Slice(img * c, c);
            for (int p = 0; p < positions; p++) TensorPrimitives.Add(yi, x.Slice((img * positions + p) * c, c), yi);
            TensorPrimitives.Multiply(yi, 1f / positions, yi);
        }
    }

    /// <summary>dx[n, p, c] += dy[n, c] / P.</summary>
    public static void Backward(Span<float> dx, ReadOnlySpan<float> dy, int n, int positions, int c)
    {
        float inv = 1f / positions;
        for (int img = 0; img < n; img++)
            for (int p = 0; p < positions; p++)
            {
                var d = dx.Slice((img * positions + p) * c, c);
                TensorPrimitives.MultiplyAdd(dy.Slice(img * c, c), inv, d, d);
            }
    }
}
