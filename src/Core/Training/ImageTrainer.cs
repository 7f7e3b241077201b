using System.Globalization;
using System.Numerics.Tensors;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Training;

/// <summary>Settings of <see cref="ImageTrainer.Train"/>: the generic <see cref="TrainingOptions"/> plus augmentation.</summary>
public sealed record ImageTrainingOptions : TrainingOptions
{
    /// <summary>Flip training images left–right at random (default on).</summary>
    public bool Flip { get; init; } = true;
    /// <summary>Shift training images by up to this many pixels with zero fill (pad and crop; default 2).</summary>
    public int CropPadding { get; init; } = 2;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (CropPadding < 0) throw new ArgumentOutOfRangeException(nameof(CropPadding), CropPadding, "Must be non-negative.");
    }

    /// <inheritdoc/>
    protected override void AddTrajectorySettings(IDictionary<string, string> settings)
    {
        base.AddTrajectorySettings(settings);
        settings[nameof(Flip)] = Flip.ToString();
        settings[nameof(CropPadding)] = CropPadding.ToString(CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// Training of an <see cref="ImageClassifier"/> with softmax cross-entropy through the generic
/// <see cref="Trainer"/> (optimiser, schedules, averaging, early stopping on validation accuracy, divergence
/// detection, checkpoints), plus prediction and evaluation.
/// </summary>
public static class ImageTrainer
{
    /// <summary>Trains <paramref name="model"/> in place; returns per-epoch figures (validation metric: accuracy).</summary>
    /// <exception cref="ArgumentException">The data do not fit the model (image size, labels).</exception>
    public static TrainingReport Train(ImageClassifier model, ImageDataset train, ImageDataset? validation, ImageTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Check(model, train, nameof(train));
        if (validation is not null) Check(model, validation, nameof(validation));
        if (model.Config.BatchNorm && options.BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "Batch normalisation needs batches of at least 2 images.");
        model.Augmentation.Flip = options.Flip;
        model.Augmentation.CropPadding = options.CropPadding;
        return Trainer.Train(new Classifying(model, train, validation, options), options);
    }

    /// <summary>The <see cref="ITrainingTask{TBatch}"/> of an image classifier: cross-entropy on its logits, accuracy.</summary>
    sealed class Classifying(ImageClassifier model, ImageDataset train, ImageDataset? validation, ImageTrainingOptions options) : ITrainingTask<ImageBatch>
    {
        readonly int _classes = model.Config.Classes;
        readonly float[] _logits = new float[options.BatchSize * model.Config.Classes], _dLogits = new float[options.BatchSize * model.Config.Classes],
            _probabilities = new float[options.BatchSize * model.Config.Classes];

        public Module Model => model;
        public int Count => train.Count;

        public ImageBatch CreateBatch()
        {
            model.Reserve(options.BatchSize); // the largest batch, once
            return new();
        }

        public void Fill(ImageBatch batch, int[] indices) => train.Fill(batch, indices);

        public float ForwardBackward(ImageBatch batch)
        {
            int n = batch.Count, m = n * _classes;
            // A last batch of one image cannot be normalised by its own statistics: it is skipped (loss 0 adds nothing).
            if (n < 2 && model.Config.BatchNorm) return 0f;
            model.Forward(_logits.AsSpan(0, m), batch.Pixels.AsSpan(0, n * train.ImageSize), n, training: true);
            float loss = Losses.SoftmaxCrossEntropy(_logits.AsSpan(0, m), batch.Labels.AsSpan(0, n), _classes, _dLogits.AsSpan(0, m), _probabilities.AsSpan(0, m));
            model.Backward(_dLogits.AsSpan(0, m));
            return loss;
        }

        public ValidationResult? Validate()
        {
            if (validation is null || validation.Count == 0) return null;
            var (loss, accuracy) = Evaluate(model, validation, options.BatchSize);
            return new ValidationResult(loss, accuracy);
        }
    }

    /// <summary>Class probabilities (N, K) in inference mode.</summary>
    public static float[] Predict(ImageClassifier model, ImageDataset data, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        CheckSize(model, data, nameof(data));
        int k = model.Config.Classes, size = data.ImageSize;
        var result = new float[data.Count * k];
        for (int start = 0; start < data.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, data.Count - start);
            var logits = result.AsSpan(start * k, n * k);
            model.Forward(logits, data.Pixels.AsSpan(start * size, n * size), n, training: false);
            for (int r = 0; r < n; r++) TensorPrimitives.SoftMax(logits.Slice(r * k, k), logits.Slice(r * k, k));
        }
        return result;
    }

    /// <summary>Mean cross-entropy and accuracy over a data set.</summary>
    public static (double Loss, double Accuracy) Evaluate(ImageClassifier model, ImageDataset data, int batchSize = 256)
    {
        var p = Predict(model, data, batchSize);
        int k = model.Config.Classes;
        double loss = 0, correct = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var row = p.AsSpan(i * k, k);
            int y = data.Labels[i];
            loss -= Math.Log(Math.Max(row[y], 1e-7f));
            if (TensorPrimitives.IndexOfMax(row) == y) correct++;
        }
        return (loss / Math.Max(1, data.Count), correct / Math.Max(1, data.Count));
    }

    static void Check(ImageClassifier model, ImageDataset data, string name)
    {
        CheckSize(model, data, name);
        int k = model.Config.Classes;
        int bad = Array.FindIndex(data.Labels, y => (uint)y >= (uint)k);
        if (bad >= 0) throw new ArgumentOutOfRangeException(name, data.Labels[bad], $"Label of image {bad} is {data.Labels[bad]}; class labels must be in [0, {k}).");
    }

    static void CheckSize(ImageClassifier model, ImageDataset data, string name)
    {
        var c = model.Config;
        if (data.Height != c.Height || data.Width != c.Width || data.Channels != c.Channels)
            throw new ArgumentException($"The model reads {c.Height}×{c.Width}×{c.Channels} images; the data are {data.Height}×{data.Width}×{data.Channels}.", name);
    }
}
