namespace DeepSeq.Core.Models;

/// <summary>
/// Labelled images in memory, channels-last: image i is <see cref="Pixels"/>[i·H·W·C …] in (H, W, C) order
/// (ML.NET's <c>ExtractPixels</c> with <c>interleavePixelColors: true</c> writes this order).
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Wraps the arrays (not copied).</summary>
    /// <exception cref="ArgumentException">The sizes do not agree, or a pixel is not finite.</exception>
    public ImageDataset(float[] pixels, int[] labels, int height, int width, int channels)
    {
        ArgumentNullException.ThrowIfNull(pixels); ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        long size = (long)height * width * channels;
        if (pixels.LongLength != size * labels.Length)
            throw new ArgumentException($"{labels.Length} images of {height}×{width}×{channels} need {size * labels.Length} pixel values, got {pixels.LongLength}.", nameof(pixels));
        int bad = Array.FindIndex(pixels, v => !float.IsFinite(v));
        if (bad >= 0) throw new ArgumentException($"Pixel {bad % size} of image {bad / size} is {pixels[bad]}; pixels must be finite.", nameof(pixels));
        Pixels = pixels; Labels = labels; Height = height; Width = width; Channels = channels;
    }

    /// <summary>(N, H, W, C) pixel values.</summary>
    public float[] Pixels { get; }
    /// <summary>(N) class labels.</summary>
    public int[] Labels { get; }
    /// <summary>Image height H.</summary>
    public int Height { get; }
    /// <summary>Image width W.</summary>
    public int Width { get; }
    /// <summary>Channels C (1 grey, 3 colour).</summary>
    public int Channels { get; }
    /// <summary>Values per image, H·W·C.</summary>
    public int ImageSize => Height * Width * Channels;
    /// <summary>Number of images N.</summary>
    public int Count => Labels.Length;

    /// <summary>Copies the images <paramref name="indices"/> into <paramref name="batch"/>.</summary>
    public void Fill(ImageBatch batch, ReadOnlySpan<int> indices)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int size = ImageSize;
        batch.Ensure(indices.Length, size);
        for (int k = 0; k < indices.Length; k++)
        {
            Pixels.AsSpan(indices[k] * size, size).CopyTo(batch.Pixels.AsSpan(k * size, size));
            batch.Labels[k] = Labels[indices[k]];
        }
        batch.Count = indices.Length;
    }

    /// <summary>The images <paramref name="indices"/> as a new data set (e.g. a validation split).</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int size = ImageSize;
        var pixels = new float[(long)indices.Count * size];
        var labels = new int[indices.Count];
        for (int k = 0; k < indices.Count; k++)
        {
            Array.Copy(Pixels, (long)indices[k] * size, pixels, (long)k * size, size);
            labels[k] = Labels[indices[k]];
        }
        return new ImageDataset(pixels, labels, Height, Width, Channels);
    }
}

/// <summary>A batch of images, reused across steps: (B, H, W, C) pixels and (B) labels.</summary>
public sealed class ImageBatch
{
    /// <summary>(B, H, W, C) pixels; only the first <see cref="Count"/> images are valid.</summary>
    public float[] Pixels { get; private set; } = [];
    /// <summary>(B) labels.</summary>
    public int[] Labels { get; private set; } = [];
    /// <summary>Images in the batch B.</summary>
    public int Count { get; set; }

    internal void Ensure(int count, int imageSize)
    {
        if (Pixels.Length < count * imageSize) Pixels = new float[count * imageSize];
        if (Labels.Length < count) Labels = new int[count];
    }
}
