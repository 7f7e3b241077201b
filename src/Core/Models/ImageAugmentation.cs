namespace DeepSeq.Core.Models;

/// <summary>
/// Training-time augmentation of channels-last images: a horizontal flip with probability ½ and a random
/// shift of up to <see cref="CropPadding"/> pixels each way with zero fill (the "pad by p, crop back to size"
/// augmentation of the ResNet papers). A module without tensors, so the trainer's per-step reseeding makes the
/// draws repeat for a seed and resume exactly from a checkpoint.
/// </summary>
public sealed class ImageAugmentation : Module
{
    ulong _state = 0x2545F4914F6CDD1DUL;

    /// <summary>Flip images left–right at random.</summary>
    public bool Flip { get; set; }

    /// <summary>Largest shift in pixels (0 = no cropping).</summary>
    public int CropPadding
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            field = value;
        }
    }

    /// <summary>True when either augmentation is on.</summary>
    public bool Active => Flip || CropPadding > 0;

    /// <inheritdoc/>
    protected override void OnReseed(ulong seed) => _state = seed;

    ulong Next() => _state = Mix(_state, 0x5851F42D4C957F2DUL);

    /// <summary>y = augment(x) for <paramref name="n"/> images of h × w × c (y must not alias x).</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int n, int h, int w, int c)
    {
        int size = h * w * c, p = CropPadding;
        for (int img = 0; img < n; img++)
        {
            ulong r = Next();
            bool flip = Flip && (r & 1) == 1;
            int dy = p == 0 ? 0 : (int)((r >> 8) % (ulong)(2 * p + 1)) - p, dx = p == 0 ? 0 : (int)((r >> 24) % (ulong)(2 * p + 1)) - p;
            var src = x.Slice(img * size, size); var dst = y.Slice(img * size, size);
            for (int oy = 0; oy < h; oy++)
            {
                int iy = oy + dy;
                for (int ox = 0; ox < w; ox++)
                {
                    int sx = (flip ? w - 1 - ox : ox) + dx;
                    var to = dst.Slice((oy * w + ox) * c, c);
                    if ((uint)iy >= (uint)h || (uint)sx >= (uint)w) to.Clear();
                    else src.Slice((iy * w + sx) * c, c).CopyTo(to);
                }
            }
        }
    }
}
