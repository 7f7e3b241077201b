using System.Collections.Concurrent;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Format;
using DeepSeq.Core.Layers.Convolution;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet;

/// <summary>
/// Trains a residual CNN (a CIFAR-style ResNet, or the plain network of the same depth) for multiclass image
/// classification. Label: a key (from <c>MapValueToKey</c>). Features: a vector of Single pixels — a raw vector
/// with declared <see cref="ImageClassificationOptions.Height"/> × <see cref="ImageClassificationOptions.Width"/> ×
/// <see cref="ImageClassificationOptions.Channels"/>, or the output of <c>LoadImages</c> → <c>ResizeImages</c> →
/// <c>ExtractPixels</c>, whose three dimensions give the size. Pixels are standardised with the training set's
/// mean and standard deviation (kept with the model). Outputs <c>Score</c> (K class probabilities, slot names the
/// class names) and <c>PredictedLabel</c> (a key), as <c>MulticlassClassification.Evaluate</c> expects; a row with
/// a NaN or infinite pixel gets a NaN <c>Score</c> and a missing <c>PredictedLabel</c>.
/// </summary>
/// <remarks>
/// | Trainer characteristic | |
/// |---|---|
/// | Machine learning task | Multiclass classification (2 to 1023 classes) |
/// | Is normalization required? | No (standardised inside) |
/// | Is caching required? | No: the data is read once into memory |
/// | Required NuGet in addition to Microsoft.ML | DeepSeq.MLNet (pure managed) |
/// | Exportable to ONNX | No |
/// </remarks>
public sealed class ImageClassificationTrainer : IEstimator<ITransformer>
{
    readonly MLContext _ml;
    readonly ImageClassificationOptions _options;

    internal ImageClassificationTrainer(MLContext ml, ImageClassificationOptions options)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone(); // later changes to the caller's object do not reach this trainer
    }

    /// <summary>The training report of the last <see cref="Fit"/>: per-epoch figures, kept epoch, divergence, warnings.</summary>
    public SequenceTrainingReport? LastTrainingReport { get; private set; }

    /// <summary>Reads the images, trains, and returns the model as a chain of stock transforms (saves with <c>Model.Save</c>).</summary>
    public ITransformer Fit(IDataView input)
    {
        var (chain, report) = ImageFitting.Fit(_ml, input, _options);
        LastTrainingReport = report;
        return chain;
    }

    /// <summary>The schema of the data the trained model produces.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var taken = inputSchema.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        return ImageFitting.Chain(_ml, _options.FeatureColumnName, ModelFormat.Prefix, ["a", "b"], taken).GetOutputSchema(inputSchema);
    }
}

/// <summary>The saved settings of an image model: architecture, class names, input layout and standardisation, training report.</summary>
internal sealed record ImageModelSettings(ImageClassifierConfig Config, string[] ClassNames, PixelLayout Layout, float PixelMean, float PixelStd, TrainingReport? Report)
{
    public const string Family = "ImageClassifier";
}

/// <summary>Reading images, training, and the transformer chain of an image classifier.</summary>
internal static class ImageFitting
{
    sealed class ClassName { public string Name = ""; }

    public static (ITransformer Chain, SequenceTrainingReport Report) Fit(MLContext ml, IDataView data, ImageClassificationOptions o)
    {
        ArgumentNullException.ThrowIfNull(data);
        var host = ((IHostEnvironment)ml).Register("DeepSeq.ImageClassification");
        using var ch = host.Start("Training");
        var label = data.Schema.GetColumnOrNull(o.LabelColumnName) ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find label column '{o.LabelColumnName}'");
        if (label.Type is not KeyDataViewType key) throw new ArgumentOutOfRangeException("inputSchema", $"Schema mismatch for label column '{o.LabelColumnName}': expected Key, got {label.Type}");
        var (h, w, c) = ImageSize(data.Schema, o);
        var classNames = ClassNames(label, key);
        if (classNames.Length < 2 || classNames.Length > DeepSeqColumns.MaxClasses)
            throw new ArgumentOutOfRangeException("inputSchema", $"The label column '{o.LabelColumnName}' has {classNames.Length} classes; a DeepSeq image model supports 2 to {DeepSeqColumns.MaxClasses}.");
        var (pixels, labels) = Read(data, o, h, w, c);
        // Standardise with the training pixels' mean and standard deviation: any input scale (0–255, 0–1) trains alike.
        double sum = 0, sq = 0;
        foreach (float v in pixels) { sum += v; sq += (double)v * v; }
        float mean = (float)(sum / pixels.Length), std = (float)Math.Sqrt(Math.Max(sq / pixels.Length - (sum / pixels.Length) * (sum / pixels.Length), 1e-12));
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (pixels[i] - mean) / std;

        int seed = o.Seed ?? host.Rand.Next();
        var all = new ImageDataset(pixels, labels, h, w, c);
        ImageDataset train = all, validation = null!;
        if (o.ValidationFraction > 0)
        {
            if (all.Count < 2) throw new InvalidOperationException("ValidationFraction needs at least two training images.");
            var held = SequenceFitting.HeldOut(all.Count, o.ValidationFraction, seed);
            var heldSet = held.ToHashSet();
            validation = all.Subset(held);
            train = all.Subset([.. Enumerable.Range(0, all.Count).Where(i => !heldSet.Contains(i))]);
        }
        var config = new ImageClassifierConfig
        {
            Height = h, Width = w, Channels = c, Classes = classNames.Length, StageWidths = o.StageWidths, BlocksPerStage = o.BlocksPerStage,
            Residual = o.Residual, BatchNorm = o.BatchNorm, ZeroInitResidual = o.ZeroInitResidual, Activation = (ActivationFunction)(int)o.Activation,
        };
        var model = new ImageClassifier(config, seed);
        model.Initialize(new Random(seed));
        ch.Info(MessageSensitivity.None, $"Training a {(o.Residual ? "ResNet" : "plain network")}-{config.Depth} ({model.Parameters.Sum(p => p.Value.Length):N0} weights) on {train.Count:N0} images of {h}×{w}×{c}" +
            (validation is null ? "" : $", validating on {validation.Count:N0}") + $", {o.Epochs} epochs.");
        var options = new ImageTrainingOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, WeightDecay = o.WeightDecay,
            Optimizer = o.Optimizer == ImageOptimizer.Adam ? OptimizerKind.Adam : OptimizerKind.Sgd, Momentum = 0.9f, Nesterov = o.Optimizer == ImageOptimizer.Sgd,
            Schedule = o.Schedule == ImageSchedule.Cosine ? LearningRateSchedule.Cosine() : LearningRateSchedule.OneCycle(peakFraction: 0.25f),
            GradientClipNorm = 5f, EarlyStoppingPatience = o.EarlyStoppingPatience, LengthBucketing = false, NumberOfThreads = o.NumberOfThreads,
            Flip = o.Flip, CropPadding = o.CropPadding, Seed = seed, CancellationToken = o.CancellationToken,
            Progress = new Reporter(p =>
            {
                if (p.Batch == p.Batches)
                    ch.Info(MessageSensitivity.None, $"Epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}" + (p.ValidationMetric is double v ? $", validation accuracy {v:F4}" : "") + $", {p.SequencesPerSecond:F0} images/s");
                o.Progress?.Report(CoreMapping.Progress(p));
            }),
        };
        var report = ImageTrainer.Train(model, train, validation, options);
        foreach (var warning in report.Warnings) ch.Warning(MessageSensitivity.None, warning);
        if (report.Divergence is not null) ch.Warning(MessageSensitivity.None, report.Divergence);
        if (report.BestEpoch == 0) throw new InvalidOperationException(report.Divergence ?? "Training stopped before completing an epoch; no weights to keep.");
        var settings = new ImageModelSettings(config, classNames, o.PixelLayout, mean, std, report);
        string blob = ModelFormat.WriteText(SavedModel.Create(ImageModelSettings.Family, settings, model));
        var taken = data.Schema.Select(col => col.Name).ToHashSet(StringComparer.Ordinal);
        return (Chain(ml, o.FeatureColumnName, blob, classNames, taken).Fit(data), CoreMapping.Report(report));
    }

    /// <summary>Height, width and channels: from the options, else from a three-dimensional column type in the declared layout.</summary>
    static (int H, int W, int C) ImageSize(DataViewSchema schema, ImageClassificationOptions o)
    {
        var feature = schema.GetColumnOrNull(o.FeatureColumnName) ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find feature column '{o.FeatureColumnName}'");
        if (feature.Type is not VectorDataViewType { ItemType: NumberDataViewType item } vector || item.RawType != typeof(float))
            throw new ArgumentOutOfRangeException("inputSchema", $"Schema mismatch for feature column '{o.FeatureColumnName}': expected vector of Single (pixels), got {feature.Type}");
        int h, w, c;
        if (o.Height is int oh && o.Width is int ow && o.Channels is int oc) (h, w, c) = (oh, ow, oc);
        else if (vector.Dimensions.Length == 3 && vector.Dimensions.All(d => d > 0))
        {
            var d = vector.Dimensions;
            (h, w, c) = o.PixelLayout == PixelLayout.ChannelsHeightWidth ? (d[1], d[2], d[0]) : (d[0], d[1], d[2]);
            if ((o.Height ?? h) != h || (o.Width ?? w) != w || (o.Channels ?? c) != c)
                throw new ArgumentException($"The options declare {o.Height}×{o.Width}×{o.Channels}; the column '{o.FeatureColumnName}' holds {h}×{w}×{c} images.");
        }
        else throw new ArgumentException($"Set Height, Width and Channels: the column '{o.FeatureColumnName}' ({feature.Type}) does not say its image size (ExtractPixels' output does).");
        if (vector.IsKnownSize && vector.Size != h * w * c)
            throw new ArgumentException($"The column '{o.FeatureColumnName}' holds {vector.Size} values per row; {h}×{w}×{c} images need {h * w * c}.");
        return (h, w, c);
    }

    static string[] ClassNames(DataViewSchema.Column label, KeyDataViewType key)
    {
        int count = checked((int)key.Count);
        var names = Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (label.Annotations.Schema.GetColumnOrNull("KeyValues") is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            label.Annotations.GetValue("KeyValues", ref values);
            int i = 0;
            foreach (var v in values.DenseValues()) if (i < count) names[i++] = v.ToString();
        }
        return names;
    }

    static (float[] Pixels, int[] Labels) Read(IDataView data, ImageClassificationOptions o, int h, int w, int c)
    {
        var labelColumn = data.Schema[o.LabelColumnName]; var featureColumn = data.Schema[o.FeatureColumnName];
        using var cursor = data.GetRowCursor([labelColumn, featureColumn]);
        var labelGetter = cursor.GetGetter<uint>(labelColumn);
        var pixelGetter = cursor.GetGetter<VBuffer<float>>(featureColumn);
        var pixels = new List<float>(); var labels = new List<int>();
        VBuffer<float> buffer = default; uint key = 0; long row = -1;
        var image = new float[h * w * c];
        while (cursor.MoveNext())
        {
            row++;
            labelGetter(ref key);
            if (key == 0) throw new InvalidOperationException($"Row {row} of the training data has a missing label in column '{o.LabelColumnName}'.");
            pixelGetter(ref buffer);
            if (buffer.Length != image.Length) throw new InvalidOperationException($"Row {row} has {buffer.Length} pixel values in '{o.FeatureColumnName}'; {h}×{w}×{c} images need {image.Length}.");
            var values = RowScoring.Dense(buffer);
            if (!RowScoring.AllFinite(values)) throw new InvalidOperationException($"Row {row} of the training data has a NaN or infinite pixel in '{o.FeatureColumnName}'.");
            ToChannelsLast(values, image, o.PixelLayout, h, w, c);
            pixels.AddRange(image);
            labels.Add((int)key - 1);
        }
        if (labels.Count == 0) throw new InvalidOperationException("The training data has no rows.");
        return ([.. pixels], [.. labels]);
    }

    /// <summary>One image's values in the model's (H, W, C) order.</summary>
    internal static void ToChannelsLast(ReadOnlySpan<float> values, Span<float> image, PixelLayout layout, int h, int w, int c)
    {
        if (layout == PixelLayout.HeightWidthChannels || c == 1) { values.CopyTo(image); return; }
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < h * w; p++) image[p * c + ch] = values[ch * h * w + p];
    }

    /// <summary>
    /// The stock transforms that carry a trained image model, as for sequence models (see
    /// <see cref="SequenceFitting.Chain"/>): a constant key, the model text from a value mapping, the pixels under a
    /// fixed name, the image row mapping, the class probabilities renamed to the class names and concatenated into
    /// <c>Score</c>, and the predicted class as a key.
    /// </summary>
    public static IEstimator<ITransformer> Chain(MLContext ml, string featureColumn, string blob, IReadOnlyList<string> classNames, IReadOnlySet<string> taken)
    {
        var t = ml.Transforms;
        int capacity = classNames.Count <= ClassProbabilities16.Capacity ? ClassProbabilities16.Capacity : classNames.Count <= ClassProbabilities128.Capacity ? ClassProbabilities128.Capacity : ClassProbabilities1023.Capacity;
        IEstimator<ITransformer> mapping = capacity switch
        {
            ClassProbabilities16.Capacity => t.CustomMapping(new ImageMulticlass16().GetMapping(), ImageMulticlass16.ContractName),
            ClassProbabilities128.Capacity => t.CustomMapping(new ImageMulticlass128().GetMapping(), ImageMulticlass128.ContractName),
            _ => t.CustomMapping(new ImageMulticlass1023().GetMapping(), ImageMulticlass1023.ContractName),
        };
        var columns = SequenceFitting.ClassColumnNames(classNames, taken);
        var keyData = ml.Data.LoadFromEnumerable(classNames.Select(n => new ClassName { Name = n }));
        var helpers = new List<string> { DeepSeqColumns.Key, DeepSeqColumns.Model, DeepSeqColumns.Input, DeepSeqColumns.PredictedName, "AttentionWeights" };
        helpers.AddRange(Enumerable.Range(0, capacity).Select(DeepSeqColumns.Probability));
        helpers.AddRange(columns);
        return t.CustomMapping(new KeyFactory().GetMapping(), KeyFactory.ContractName)
            .Append(t.Conversion.MapValue(DeepSeqColumns.Model, [new KeyValuePair<string, string>("m", blob)], DeepSeqColumns.Key))
            .Append(t.CopyColumns(DeepSeqColumns.Input, featureColumn))
            .Append(mapping)
            .Append(t.Conversion.ConvertType([.. columns.Select((name, i) => new InputOutputColumnPair(name, DeepSeqColumns.Probability(i)))], DataKind.Single))
            .Append(t.Concatenate("Score", columns))
            .Append(t.Conversion.MapValueToKey("PredictedLabel", DeepSeqColumns.PredictedName, keyData: keyData))
            .Append(t.DropColumns([.. helpers]));
    }

    sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}

/// <summary>Pixels of one image (the row mapping's input kind for image models).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ImagePixelsInput : IRowInput
{
    /// <summary>The pixel values in the model's declared layout.</summary>
    [ColumnName(DeepSeqColumns.Input), VectorType] public VBuffer<float> Input;
    /// <summary>The model text (read as memory: a string field would copy the whole model on every row).</summary>
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;

    RowPrediction IRowInput.Predict() => LoadedImageModel.Resolve(Model).Predict(RowScoring.Dense(Input));
}

/// <summary>A decoded image model shared by all rows, with a pool of model instances (one in use per thread at a time).</summary>
internal sealed class LoadedImageModel
{
    static readonly ConditionalWeakTable<string, LoadedImageModel> s_models = new();
    readonly ConcurrentBag<(ImageClassifier Model, float[] Image)> _pool = [];
    readonly ImageModelSettings _settings;
    readonly IReadOnlyDictionary<string, float[]> _tensors;

    LoadedImageModel(SavedModel saved)
    {
        if (saved.Family != ImageModelSettings.Family) throw new InvalidDataException($"The saved model is a {saved.Family}, not an {ImageModelSettings.Family}.");
        _settings = saved.Config<ImageModelSettings>();
        _tensors = saved.Tensors;
    }

    public static LoadedImageModel Resolve(ReadOnlyMemory<char> blob)
    {
        if (MemoryMarshal.TryGetString(blob, out string? text, out int start, out int length) && start == 0 && length == text.Length)
            return s_models.GetValue(text, t => new LoadedImageModel(ModelFormat.ReadText(t)));
        return new LoadedImageModel(ModelFormat.ReadText(blob.Span));
    }

    public RowPrediction Predict(ReadOnlySpan<float> pixels)
    {
        var c = _settings.Config;
        int size = c.Height * c.Width * c.Channels;
        if (pixels.Length != size) throw new InvalidOperationException($"The input has {pixels.Length} pixel values; the model reads {c.Height}×{c.Width}×{c.Channels} = {size}.");
        if (!RowScoring.AllFinite(pixels)) return RowPrediction.Missing(c.Classes, _settings.ClassNames);
        if (!_pool.TryTake(out var item))
        {
            var fresh = new ImageClassifier(c);
            fresh.Load(_tensors);
            item = (fresh, new float[size]);
        }
        try
        {
            var (model, image) = item;
            ImageFitting.ToChannelsLast(pixels, image, _settings.Layout, c.Height, c.Width, c.Channels);
            for (int i = 0; i < image.Length; i++) image[i] = (image[i] - _settings.PixelMean) / _settings.PixelStd;
            var logits = new float[c.Classes];
            model.Forward(logits, image, 1, training: false);
            return new RowPrediction(logits, [], _settings.ClassNames, IsMissing: false);
        }
        finally { _pool.Add(item); }
    }
}

/// <summary>
/// The image row mapping of one output kind. Its row function is defined in this assembly, not inherited from
/// <see cref="RowMappingFactory{TInput, TOutput}"/>: ML.NET records the assembly of the mapping's code with a
/// saved model and looks the contract up there at load.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class ImageMappingFactory<TOutput> : CustomMappingFactory<ImagePixelsInput, TOutput> where TOutput : class, IRowOutput, new()
{
    /// <inheritdoc/>
    public sealed override Action<ImagePixelsInput, TOutput> GetMapping() => static (input, output) => ((IRowOutput)output).Write(((IRowInput)input).Predict());
}

#pragma warning disable CS1591 // One line each: the contract name is what a saved model refers to.
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class ImageMulticlass16 : ImageMappingFactory<ClassProbabilities16> { public const string ContractName = "DeepSeq.ImageMulticlass16.v1"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class ImageMulticlass128 : ImageMappingFactory<ClassProbabilities128> { public const string ContractName = "DeepSeq.ImageMulticlass128.v1"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class ImageMulticlass1023 : ImageMappingFactory<ClassProbabilities1023> { public const string ContractName = "DeepSeq.ImageMulticlass1023.v1"; }
#pragma warning restore CS1591
