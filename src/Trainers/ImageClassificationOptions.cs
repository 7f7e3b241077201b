namespace DeepSeq.MLNet;

/// <summary>The activation between the layers of an image classifier.</summary>
public enum ImageActivation
{
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>x for x &gt; 0, 0.01x otherwise.</summary>
    LeakyRelu,
    /// <summary>Leaky ReLU with a learned slope per channel.</summary>
    PRelu,
    /// <summary>Leaky ReLU with a random slope in [1/8, 1/3] in training, their mean at inference.</summary>
    RRelu,
    /// <summary>Exponential linear unit.</summary>
    Elu,
    /// <summary>Gaussian error linear unit (tanh approximation).</summary>
    Gelu,
    /// <summary>Scaled ELU.</summary>
    Selu,
    /// <summary>The larger of two channels (convolutions feeding it produce twice the channels).</summary>
    Maxout,
}

/// <summary>The optimiser of an image classifier.</summary>
public enum ImageOptimizer
{
    /// <summary>SGD with Nesterov momentum 0.9 (the ResNet recipe; learning rate about 0.1).</summary>
    Sgd,
    /// <summary>Adam (learning rate about 1e-3).</summary>
    Adam,
}

/// <summary>How the learning rate moves over training.</summary>
public enum ImageSchedule
{
    /// <summary>One cycle: warm up to the learning rate over the first quarter, then anneal to almost zero.</summary>
    OneCycle,
    /// <summary>Cosine annealing from the learning rate to zero.</summary>
    Cosine,
}

/// <summary>The order of the values of one image in the feature vector.</summary>
public enum PixelLayout
{
    /// <summary>Channel planes, then rows, then columns (ML.NET's <c>ExtractPixels</c> default, <c>interleavePixelColors: false</c>).</summary>
    ChannelsHeightWidth,
    /// <summary>Rows, then columns, then the channels of a pixel (<c>ExtractPixels</c> with <c>interleavePixelColors: true</c>, or raw pixel arrays).</summary>
    HeightWidthChannels,
}

/// <summary>Options of <see cref="ImageClassificationTrainer"/>; defaults in <see cref="Defaults"/>.</summary>
public sealed class ImageClassificationOptions
{
    /// <summary>The default of every option.</summary>
    public static class Defaults
    {
        /// <summary>Label column.</summary>
        public const string LabelColumnName = "Label";
        /// <summary>Feature (pixel) column.</summary>
        public const string FeatureColumnName = "Features";
        /// <summary>Basic blocks per stage (3: ResNet-20).</summary>
        public const int BlocksPerStage = 3;
        /// <summary>Passes over the data.</summary>
        public const int Epochs = 10;
        /// <summary>Images per batch.</summary>
        public const int BatchSize = 128;
        /// <summary>Peak learning rate (SGD).</summary>
        public const float LearningRate = 0.1f;
        /// <summary>L2 weight decay.</summary>
        public const float WeightDecay = 5e-4f;
        /// <summary>Activation.</summary>
        public const ImageActivation Activation = ImageActivation.Relu;
    }

    /// <summary>Key label column (from <c>MapValueToKey</c>).</summary>
    public string LabelColumnName = Defaults.LabelColumnName;
    /// <summary>Pixel column: a vector of Single of Height × Width × Channels values per row.</summary>
    public string FeatureColumnName = Defaults.FeatureColumnName;
    /// <summary>Image height; null: read from a three-dimensional column type (as <c>ExtractPixels</c> writes).</summary>
    public int? Height;
    /// <summary>Image width; null: read from the column type.</summary>
    public int? Width;
    /// <summary>Channels (1 grey, 3 colour); null: read from the column type.</summary>
    public int? Channels;
    /// <summary>The order of a row's values (default: <c>ExtractPixels</c>' planar order).</summary>
    public PixelLayout PixelLayout = PixelLayout.ChannelsHeightWidth;
    /// <summary>Output channels per stage; every stage after the first halves the image (default 16, 32, 64).</summary>
    public int[] StageWidths = [16, 32, 64];
    /// <summary>Basic blocks per stage; depth = 2 × blocks × stages + 2.</summary>
    public int BlocksPerStage = Defaults.BlocksPerStage;
    /// <summary>Skip connections (a ResNet); false trains the plain network of the same depth.</summary>
    public bool Residual = true;
    /// <summary>Batch normalisation after every convolution.</summary>
    public bool BatchNorm = true;
    /// <summary>
    /// Start each residual block's last batch-norm scale at 0, so every block begins as its shortcut ("zero-init
    /// residual", Goyal et al. 2017). Needs <see cref="Residual"/> and <see cref="BatchNorm"/>; off by default.
    /// </summary>
    public bool ZeroInitResidual;
    /// <summary>Activation between layers.</summary>
    public ImageActivation Activation = Defaults.Activation;
    /// <summary>Flip training images left–right at random.</summary>
    public bool Flip = true;
    /// <summary>Shift training images by up to this many pixels (pad and crop); 0 = off.</summary>
    public int CropPadding = 2;
    /// <summary>Optimiser.</summary>
    public ImageOptimizer Optimizer = ImageOptimizer.Sgd;
    /// <summary>Learning-rate schedule.</summary>
    public ImageSchedule Schedule = ImageSchedule.OneCycle;
    /// <summary>Peak learning rate.</summary>
    public float LearningRate = Defaults.LearningRate;
    /// <summary>L2 weight decay.</summary>
    public float WeightDecay = Defaults.WeightDecay;
    /// <summary>Images per batch (at least 2 with batch normalisation).</summary>
    public int BatchSize = Defaults.BatchSize;
    /// <summary>Passes over the data.</summary>
    public int Epochs = Defaults.Epochs;
    /// <summary>Stop after this many epochs without better validation accuracy (0 = never); needs validation data.</summary>
    public int EarlyStoppingPatience;
    /// <summary>Hold out this fraction of the training rows for validation (0 = none).</summary>
    public float ValidationFraction;
    /// <summary>Seed; null: from the MLContext.</summary>
    public int? Seed;
    /// <summary>Threads (0 = one per core).</summary>
    public int NumberOfThreads;
    /// <summary>Receives progress during training.</summary>
    public IProgress<SequenceTrainingProgress>? Progress;
    /// <summary>Stops training between steps (the best weights so far are kept).</summary>
    public CancellationToken CancellationToken;

    internal ImageClassificationOptions Clone()
    {
        var c = (ImageClassificationOptions)MemberwiseClone();
        c.StageWidths = (int[])StageWidths.Clone();
        return c;
    }

    /// <summary>Throws, naming the option, when a setting is out of range.</summary>
    internal void Validate()
    {
        static ArgumentOutOfRangeException Range(string name, object? value, string rule) => new(name, value, $"{name} {rule}.");
        ArgumentException.ThrowIfNullOrEmpty(LabelColumnName, nameof(LabelColumnName));
        ArgumentException.ThrowIfNullOrEmpty(FeatureColumnName, nameof(FeatureColumnName));
        if (Height is < 1) throw Range(nameof(Height), Height, "must be at least 1");
        if (Width is < 1) throw Range(nameof(Width), Width, "must be at least 1");
        if (Channels is < 1) throw Range(nameof(Channels), Channels, "must be at least 1");
        if (!Enum.IsDefined(PixelLayout)) throw Range(nameof(PixelLayout), PixelLayout, "is not a layout");
        if (StageWidths is null || StageWidths.Length == 0 || StageWidths.Any(w => w < 1)) throw new ArgumentException("StageWidths needs at least one stage, each at least 1 channel wide.", nameof(StageWidths));
        if (BlocksPerStage < 1) throw Range(nameof(BlocksPerStage), BlocksPerStage, "must be at least 1");
        if (!Enum.IsDefined(Activation)) throw Range(nameof(Activation), Activation, "is not an activation");
        if (ZeroInitResidual && !(Residual && BatchNorm))
            throw new ArgumentException($"{nameof(ZeroInitResidual)} applies only to a residual network with batch normalisation ({nameof(Residual)} and {nameof(BatchNorm)} true).", nameof(ZeroInitResidual));
        if (CropPadding < 0) throw Range(nameof(CropPadding), CropPadding, "must be non-negative");
        if (!Enum.IsDefined(Optimizer)) throw Range(nameof(Optimizer), Optimizer, "is not an optimiser");
        if (!Enum.IsDefined(Schedule)) throw Range(nameof(Schedule), Schedule, "is not a schedule");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw Range(nameof(LearningRate), LearningRate, "must be positive and finite");
        if (!(WeightDecay >= 0) || !float.IsFinite(WeightDecay)) throw Range(nameof(WeightDecay), WeightDecay, "must be non-negative and finite");
        if (BatchSize < (BatchNorm ? 2 : 1)) throw Range(nameof(BatchSize), BatchSize, BatchNorm ? "must be at least 2 with batch normalisation" : "must be at least 1");
        if (Epochs < 1) throw Range(nameof(Epochs), Epochs, "must be at least 1");
        if (EarlyStoppingPatience < 0) throw Range(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative");
        if (!(ValidationFraction >= 0 && ValidationFraction < 1)) throw Range(nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        if (NumberOfThreads < 0) throw Range(nameof(NumberOfThreads), NumberOfThreads, "must be non-negative (0 = one per core)");
    }
}
