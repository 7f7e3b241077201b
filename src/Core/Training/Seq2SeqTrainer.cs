using System.Numerics.Tensors;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Training;

/// <summary>(source, target) pairs of token ids for a <see cref="Seq2SeqModel"/>; targets without BOS/EOS.</summary>
public sealed class Seq2SeqDataset
{
    readonly List<int[]> _sources = [], _targets = [];

    /// <summary>Pairs held.</summary>
    public int Count => _sources.Count;
    /// <summary>Source ids of each pair (as given; the model reverses or repeats them as configured).</summary>
    public IReadOnlyList<int[]> Sources => _sources;
    /// <summary>Target ids of each pair.</summary>
    public IReadOnlyList<int[]> Targets => _targets;

    /// <summary>Adds a pair; the source needs at least one token, the target may be empty.</summary>
    public void Add(int[] source, int[] target)
    {
        ArgumentNullException.ThrowIfNull(source); ArgumentNullException.ThrowIfNull(target);
        if (source.Length == 0) throw new ArgumentException($"The source of pair {Count} is empty; a source needs at least one token.", nameof(source));
        _sources.Add(source); _targets.Add(target);
    }
}

/// <summary>Settings of <see cref="Seq2SeqTrainer.Train"/>: the generic <see cref="TrainingOptions"/> plus length limits and validation decoding.</summary>
public sealed record Seq2SeqTrainingOptions : TrainingOptions
{
    /// <summary>Longest source used in training, in tokens as given (longer ones are cut; default 100).</summary>
    public int MaxSourceLength { get; init; } = 100;
    /// <summary>Longest target used in training (longer ones are cut; default 100).</summary>
    public int MaxTargetLength { get; init; } = 100;
    /// <summary>Validate on at most this many pairs (0: all), the first ones, to keep greedy decoding of validation short.</summary>
    public int MaxValidationPairs { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (MaxSourceLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxSourceLength), MaxSourceLength, "Must be at least 1.");
        if (MaxTargetLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxTargetLength), MaxTargetLength, "Must be at least 1.");
        if (MaxValidationPairs < 0) throw new ArgumentOutOfRangeException(nameof(MaxValidationPairs), MaxValidationPairs, "Must be non-negative (0: all).");
    }

    /// <inheritdoc/>
    protected override void AddTrajectorySettings(IDictionary<string, string> settings)
    {
        base.AddTrajectorySettings(settings);
        settings[nameof(MaxSourceLength)] = MaxSourceLength.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[nameof(MaxTargetLength)] = MaxTargetLength.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[nameof(MaxValidationPairs)] = MaxValidationPairs.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// Teacher-forced training of a <see cref="Seq2SeqModel"/> through the generic <see cref="Trainer"/>: token-level
/// cross-entropy over the target tokens and EOS (padding ignored); validation by greedy decoding, whose metric is the
/// share of sources decoded exactly to one of their targets (a source may appear with several targets).
/// </summary>
public static class Seq2SeqTrainer
{
    /// <summary>Trains <paramref name="model"/> in place; returns per-epoch figures.</summary>
    public static TrainingReport Train(Seq2SeqModel model, Seq2SeqDataset train, Seq2SeqDataset? validation, Seq2SeqTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(train); ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        CheckIds(model, train, nameof(train));
        if (validation is not null) CheckIds(model, validation, nameof(validation));
        return Trainer.Train(new Task(model, train, validation, options), options);
    }

    sealed class Task(Seq2SeqModel model, Seq2SeqDataset train, Seq2SeqDataset? validation, Seq2SeqTrainingOptions options) : ITrainingTask<Seq2SeqBatch>
    {
        float[] _logits = [], _dLogits = [];

        public Module Model => model;
        public int Count => train.Count;
        public int Length(int index) => Math.Min(train.Sources[index].Length, options.MaxSourceLength) + Math.Min(train.Targets[index].Length, options.MaxTargetLength);

        public Seq2SeqBatch CreateBatch()
        {
            int s = 1, t = 0;
            for (int i = 0; i < train.Count; i++)
            {
                s = Math.Max(s, Math.Min(train.Sources[i].Length, options.MaxSourceLength));
                t = Math.Max(t, Math.Min(train.Targets[i].Length, options.MaxTargetLength));
            }
            int fed = model.Config.PrepareSource(new int[s]).Length;
            model.Reserve(fed, t + 1, options.BatchSize); // the largest batch shape, once
            int n = (t + 1) * options.BatchSize * model.Config.TargetVocabularySize;
            _logits = new float[n]; _dLogits = new float[n];
            return new();
        }

        public void Fill(Seq2SeqBatch batch, int[] indices) => Seq2SeqTrainer.Fill(batch, model, train, indices, options.MaxSourceLength, options.MaxTargetLength);

        public float ForwardBackward(Seq2SeqBatch batch)
        {
            int n = batch.TargetSteps * batch.Count * model.Config.TargetVocabularySize;
            model.Forward(_logits.AsSpan(0, n), batch, training: true);
            float loss = TokenCrossEntropy(_logits.AsSpan(0, n), batch.DecoderOutput.AsSpan(0, batch.TargetSteps * batch.Count), model.Config.TargetVocabularySize, _dLogits.AsSpan(0, n));
            model.Backward(_dLogits.AsSpan(0, n));
            return loss;
        }

        public ValidationResult? Validate()
        {
            if (validation is null || validation.Count == 0) return null;
            var (loss, accuracy) = Evaluate(model, validation, options.BatchSize, options.MaxValidationPairs);
            return new ValidationResult(loss, accuracy);
        }
    }

    /// <summary>Fills a batch with the pairs <paramref name="indices"/>, sources prepared as the model reads them, cut to the given lengths.</summary>
    public static void Fill(Seq2SeqBatch batch, Seq2SeqModel model, Seq2SeqDataset data, int[] indices, int maxSourceLength = int.MaxValue, int maxTargetLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(batch); ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(data); ArgumentNullException.ThrowIfNull(indices);
        var sources = new int[indices.Length][];
        int s = 1, t = 0;
        for (int k = 0; k < indices.Length; k++)
        {
            var src = data.Sources[indices[k]];
            sources[k] = model.Config.PrepareSource(src.AsSpan(0, Math.Min(src.Length, maxSourceLength)));
            s = Math.Max(s, sources[k].Length);
            t = Math.Max(t, Math.Min(data.Targets[indices[k]].Length, maxTargetLength));
        }
        batch.Reset(s, t, indices.Length);
        for (int k = 0; k < indices.Length; k++)
        {
            var tgt = data.Targets[indices[k]];
            batch.Set(k, sources[k], tgt.AsSpan(0, Math.Min(tgt.Length, maxTargetLength)));
        }
    }

    /// <summary>
    /// Softmax cross-entropy per position of logits (N, V) against <paramref name="targets"/> (N), averaged over the
    /// positions whose target is not padding (0); their gradient is zero. Returns the mean loss.
    /// </summary>
    public static float TokenCrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int vocabulary, Span<float> dLogits)
    {
        int n = targets.Length, counted = 0;
        if (logits.Length != n * vocabulary || dLogits.Length != logits.Length) throw new ArgumentException("logits and dLogits must hold N·V values for N targets.");
        foreach (int y in targets) if (y != Seq2SeqVocabulary.Pad) counted++;
        if (counted == 0) throw new ArgumentException("Every target is padding: there is nothing to learn from.", nameof(targets));
        double sum = 0;
        float inv = 1f / counted;
        for (int r = 0; r < n; r++)
        {
            var d = dLogits.Slice(r * vocabulary, vocabulary);
            int y = targets[r];
            if (y == Seq2SeqVocabulary.Pad) { d.Clear(); continue; }
            if ((uint)y >= (uint)vocabulary) throw new ArgumentOutOfRangeException(nameof(targets), y, $"Target {r} is outside the vocabulary [0, {vocabulary}).");
            TensorPrimitives.SoftMax(logits.Slice(r * vocabulary, vocabulary), d);
            sum -= Math.Log(Math.Max(d[y], 1e-30f));
            TensorPrimitives.Multiply(d, inv, d);
            d[y] -= inv;
        }
        return (float)(sum / counted);
    }

    /// <summary>
    /// Mean token loss (teacher-forced) and exact-match accuracy of greedy decoding over <paramref name="data"/>
    /// (at most <paramref name="maxPairs"/> pairs, 0: all): a source counts as right when its decoding equals any
    /// target it has in <paramref name="data"/>.
    /// </summary>
    public static (double Loss, double Accuracy) Evaluate(Seq2SeqModel model, Seq2SeqDataset data, int batchSize = 64, int maxPairs = 0)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(data);
        int count = maxPairs > 0 ? Math.Min(maxPairs, data.Count) : data.Count;
        if (count == 0) return (double.NaN, double.NaN);
        var batch = new Seq2SeqBatch();
        double lossSum = 0; int batches = 0;
        float[] logits = [], dLogits = [];
        for (int start = 0; start < count; start += batchSize)
        {
            var idx = Enumerable.Range(start, Math.Min(batchSize, count - start)).ToArray();
            Fill(batch, model, data, idx);
            int n = batch.TargetSteps * batch.Count * model.Config.TargetVocabularySize;
            if (logits.Length < n) { logits = new float[n]; dLogits = new float[n]; }
            model.Forward(logits.AsSpan(0, n), batch, training: false);
            lossSum += TokenCrossEntropy(logits.AsSpan(0, n), batch.DecoderOutput.AsSpan(0, batch.TargetSteps * batch.Count), model.Config.TargetVocabularySize, dLogits.AsSpan(0, n));
            batches++;
        }
        // Group the pairs by source: every target of a source is a reference.
        var references = new Dictionary<string, HashSet<string>>();
        var firstOf = new List<int>();
        for (int i = 0; i < count; i++)
        {
            string key = string.Join(' ', data.Sources[i]);
            if (!references.TryGetValue(key, out var set)) { references[key] = set = []; firstOf.Add(i); }
            set.Add(string.Join(' ', data.Targets[i]));
        }
        var predictions = Seq2SeqSearch.Greedy(model, [.. firstOf.Select(i => data.Sources[i])], batchSize: batchSize, keepAttention: false);
        int right = 0;
        for (int k = 0; k < firstOf.Count; k++)
            if (references[string.Join(' ', data.Sources[firstOf[k]])].Contains(string.Join(' ', predictions[k].Tokens))) right++;
        return (lossSum / batches, (double)right / firstOf.Count);
    }

    static void CheckIds(Seq2SeqModel model, Seq2SeqDataset data, string name)
    {
        int vs = model.Config.SourceVocabularySize, vt = model.Config.TargetVocabularySize;
        for (int i = 0; i < data.Count; i++)
        {
            foreach (int id in data.Sources[i])
                if (id < 1 || id >= vs) throw new ArgumentOutOfRangeException(name, id, $"Pair {i}: source id {id} is outside [1, {vs}) (0 is padding).");
            foreach (int id in data.Targets[i])
                if (id < Seq2SeqVocabulary.FirstToken && id != Seq2SeqVocabulary.Unknown || id >= vt)
                    throw new ArgumentOutOfRangeException(name, id, $"Pair {i}: target id {id} is outside the target vocabulary's tokens (the unknown id {Seq2SeqVocabulary.Unknown}, or [{Seq2SeqVocabulary.FirstToken}, {vt})).");
        }
    }
}
