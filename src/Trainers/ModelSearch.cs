using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using static DeepSeq.MLNet.SearchDraw;

namespace DeepSeq.MLNet;

/// <summary>Settings of a successive-halving search (see <see cref="DeepSeqCatalog.SearchModels"/>).</summary>
public sealed class ModelSearchOptions
{
    /// <summary>Default values of <see cref="ModelSearchOptions"/>.</summary>
    public static class Defaults
    {
        /// <summary>9 trials.</summary>
        public const int Trials = 9;
        /// <summary>3: a third of the trials goes on to each next round, on three times the training rows.</summary>
        public const int ReductionFactor = 3;
    }

    /// <summary>Configurations drawn from the space (default 9).</summary>
    public int Trials = Defaults.Trials;
    /// <summary>
    /// η: each round keeps the best 1/η of its trials (by the validation metric) and trains them again from scratch
    /// on η times as many training rows, until the last round trains on every row (default 3: with 9 trials, 9 on
    /// a ninth of the rows, 3 on a third, 1 on all).
    /// </summary>
    public int ReductionFactor = Defaults.ReductionFactor;

    internal void Validate()
    {
        if (Trials < 1) throw new ArgumentOutOfRangeException(nameof(Trials), Trials, $"{nameof(Trials)} must be at least 1.");
        if (ReductionFactor < 2) throw new ArgumentOutOfRangeException(nameof(ReductionFactor), ReductionFactor, $"{nameof(ReductionFactor)} must be at least 2.");
    }

    /// <summary>Rounds: enough for the trials to come down to one, ⌈log_η(trials)⌉ + 1.</summary>
    internal int Rounds
    {
        get
        {
            int rounds = 1;
            for (long n = 1; n < Trials; n *= ReductionFactor) rounds++;
            return rounds;
        }
    }
}

/// <summary>
/// The choices of a sequence-model search; each trial draws one value of each list uniformly, and its learning
/// rate log-uniformly from <see cref="LearningRates"/>. Every other setting comes from the base options.
/// </summary>
public sealed class SequenceSearchSpace
{
    /// <summary>Cells (default all five).</summary>
    public SequenceCell[] Cells = [SequenceCell.Rnn, SequenceCell.Lstm, SequenceCell.PeepholeLstm, SequenceCell.CoupledLstm, SequenceCell.Gru];
    /// <summary>Directions (default both).</summary>
    public bool[] Bidirectional = [false, true];
    /// <summary>Hidden units per direction (default 64, 128).</summary>
    public int[] HiddenSizes = [64, 128];
    /// <summary>Stacked layers (default 1).</summary>
    public int[] Layers = [1];
    /// <summary>Pooling over time (default max, max + mean, attention).</summary>
    public PoolingMode[] Poolings = [PoolingMode.Max, PoolingMode.MaxMean, PoolingMode.Attention];
    /// <summary>Dropout (default 0.3, 0.5).</summary>
    public float[] Dropouts = [0.3f, 0.5f];
    /// <summary>The learning rate's range, drawn log-uniformly (default 0.001 to 0.004).</summary>
    public (float Minimum, float Maximum) LearningRates = (1e-3f, 4e-3f);

    internal void Validate()
    {
        NotEmpty(Cells, nameof(Cells)); NotEmpty(Bidirectional, nameof(Bidirectional)); NotEmpty(HiddenSizes, nameof(HiddenSizes));
        NotEmpty(Layers, nameof(Layers)); NotEmpty(Poolings, nameof(Poolings)); NotEmpty(Dropouts, nameof(Dropouts));
        CheckRange(LearningRates, nameof(LearningRates));
    }

    /// <summary>Trial <paramref name="index"/>: the base options with one draw of each choice, checked as any options are.</summary>
    internal ModelCandidate Sample(Random random, int index, Func<MLContext, IEstimator<ITransformer>> featurizer, SequenceOptions baseOptions)
    {
        var o = baseOptions.Clone();
        o.Cell = Pick(random, Cells); o.Bidirectional = Pick(random, Bidirectional); o.HiddenSize = Pick(random, HiddenSizes); o.Layers = Pick(random, Layers);
        o.Pooling = Pick(random, Poolings); o.Dropout = Pick(random, Dropouts);
        o.LearningRate = LogUniform(random, LearningRates);
        // Settings of one cell, pooling or direction do not carry over to another.
        if (o.Cell is not (SequenceCell.Lstm or SequenceCell.PeepholeLstm)) o.UnitForgetBias = null;
        if (o.Cell != SequenceCell.Rnn) o.RnnActivation = null;
        if (o.Cell != SequenceCell.Gru) o.GruReset = null;
        if (o.Cell is not (SequenceCell.PeepholeLstm or SequenceCell.CoupledLstm)) o.Peepholes = null;
        if (!o.Bidirectional) o.Merge = null;
        if (o.Pooling != PoolingMode.Attention) o.AttentionSize = null;
        string settings = string.Create(CultureInfo.InvariantCulture,
            $"{(o.Bidirectional ? "Bi" : "")}{o.Cell} {o.HiddenSize}{(o.Layers > 1 ? $"×{o.Layers}" : "")}, {o.Pooling}, dropout {o.Dropout}, lr {o.LearningRate:0.#####}");
        var candidate = ModelCandidate.Create($"search {index + 1}: {settings}", featurizer, o);
        candidate.Description = settings;
        return candidate;
    }
}

/// <summary>
/// The choices of an image-model search (<see cref="DeepSeqCatalog.SearchImageModels"/>): each trial draws a depth
/// (blocks per stage), a set of stage widths, an activation and a residual or plain network uniformly, and its
/// learning rate log-uniformly from <see cref="LearningRates"/>. Every other setting comes from the base options.
/// </summary>
public sealed class ImageSearchSpace
{
    /// <summary>Basic blocks per stage (default 1, 2, 3: with three stages, 8, 14 and 20 layers).</summary>
    public int[] BlocksPerStage = [1, 2, 3];
    /// <summary>Channels of each stage, one array per choice (default 16/32/64 and 32/64/128).</summary>
    public int[][] StageWidths = [[16, 32, 64], [32, 64, 128]];
    /// <summary>Activations (default ReLU, Leaky ReLU, PReLU, ELU).</summary>
    public ImageActivation[] Activations = [ImageActivation.Relu, ImageActivation.LeakyRelu, ImageActivation.PRelu, ImageActivation.Elu];
    /// <summary>Skip connections or not (default residual only).</summary>
    public bool[] Residual = [true];
    /// <summary>The peak learning rate's range, drawn log-uniformly (default 0.05 to 0.2, for SGD with momentum).</summary>
    public (float Minimum, float Maximum) LearningRates = (0.05f, 0.2f);

    internal void Validate()
    {
        NotEmpty(BlocksPerStage, nameof(BlocksPerStage)); NotEmpty(StageWidths, nameof(StageWidths));
        NotEmpty(Activations, nameof(Activations)); NotEmpty(Residual, nameof(Residual));
        if (BlocksPerStage.Any(b => b < 1)) throw new ArgumentOutOfRangeException(nameof(BlocksPerStage), $"{nameof(BlocksPerStage)} must each be at least 1.");
        if (StageWidths.Any(w => w is null || w.Length == 0 || w.Any(c => c < 1)))
            throw new ArgumentException($"Each of {nameof(StageWidths)} needs at least one stage, each at least 1 channel wide.", nameof(StageWidths));
        if (Activations.Any(a => !Enum.IsDefined(a))) throw new ArgumentOutOfRangeException(nameof(Activations), $"{nameof(Activations)} holds a value that is not an activation.");
        CheckRange(LearningRates, nameof(LearningRates));
    }

    /// <summary>Trial <paramref name="index"/>: the base options with one draw of each choice, checked as any options are.</summary>
    internal ModelCandidate Sample(Random random, int index, Func<MLContext, IEstimator<ITransformer>> featurizer, ImageClassificationOptions baseOptions)
    {
        var o = baseOptions.Clone();
        o.BlocksPerStage = Pick(random, BlocksPerStage); o.StageWidths = [.. Pick(random, StageWidths)]; o.Activation = Pick(random, Activations); o.Residual = Pick(random, Residual);
        o.LearningRate = LogUniform(random, LearningRates);
        if (!o.Residual) o.ZeroInitResidual = false; // a plain network has no residual branch to zero
        int depth = 2 * o.BlocksPerStage * o.StageWidths.Length + 2;
        string settings = string.Create(CultureInfo.InvariantCulture,
            $"{(o.Residual ? "ResNet" : "plain")}-{depth} {string.Join("/", o.StageWidths)}, {o.Activation}, lr {o.LearningRate:0.####}");
        var candidate = ModelCandidate.Create($"search {index + 1}: {settings}", featurizer, o);
        candidate.Description = settings;
        return candidate;
    }
}

/// <summary>The rules and draws the search spaces share.</summary>
static class SearchDraw
{
    public static void NotEmpty<T>(T[] values, string name)
    {
        if (values is null || values.Length == 0) throw new ArgumentException($"{name} needs at least one value.", name);
    }

    public static void CheckRange((float Minimum, float Maximum) range, string name)
    {
        if (!(range.Minimum > 0 && range.Minimum <= range.Maximum && float.IsFinite(range.Maximum)))
            throw new ArgumentOutOfRangeException(name, range, $"{name} must be a positive, finite range (minimum ≤ maximum).");
    }

    public static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];

    /// <summary>Log-uniform in the range: as likely to land in [0.001, 0.002] as in [0.002, 0.004].</summary>
    public static float LogUniform(Random random, (float Minimum, float Maximum) range) =>
        (float)Math.Exp(Math.Log(range.Minimum) + random.NextDouble() * (Math.Log(range.Maximum) - Math.Log(range.Minimum)));
}

/// <summary>
/// Successive halving on a train/validation split: draw the trials, train them all on a share of the training
/// rows, keep the best 1/η by the validation metric, train those again on η times the rows, and so on until the
/// last round trains on every row. Each round gets an equal share of the time left; within a round each trial gets
/// an equal share of the round's (the comparison's rule). The test rows are never seen.
/// </summary>
internal static class ModelSearch
{
    public static ModelComparisonResult Search(MLContext ml, Func<Random, int, ModelCandidate> sample, IDataView train, IDataView validation,
        ModelComparisonOptions o, ModelSearchOptions s)
    {
        var clock = Stopwatch.StartNew();
        var random = new Random(o.Seed);
        var trials = Enumerable.Range(0, s.Trials).Select(i => sample(random, i) ?? throw new InvalidOperationException($"The sampler returned no candidate for trial {i}.")).ToList();
        var byName = trials.ToDictionary(t => t.Name); // throws on a repeated name, as a comparison would
        long rows = train.GetRowCount() ?? CountRows(train);
        var shuffled = ml.Data.ShuffleRows(train, seed: o.Seed, shufflePoolSize: (int)Math.Min(rows, 100_000));

        int rounds = s.Rounds;
        var stopped = new List<ModelComparisonEntry>();
        ModelComparisonResult? last = null;
        var survivors = trials;
        int reached = 0;
        for (int r = 0; r < rounds && survivors.Count > 0; r++)
        {
            double fraction = Math.Pow(s.ReductionFactor, r - (rounds - 1));
            var subset = r == rounds - 1 ? train : ml.Data.TakeRows(shuffled, Math.Max(1, (long)Math.Ceiling(rows * fraction)));
            var round = o.Clone();
            round.EnsembleSize = 0;
            if (o.TimeBudget is { } budget)
            {
                var left = budget - clock.Elapsed;
                if (left <= TimeSpan.Zero) break;
                round.TimeBudget = left / (rounds - r);
            }
            reached = r + 1;
            last = ModelComparison.Compare(ml, survivors, [new ModelComparison.Fold(subset, validation, validation)], train, round);
            string where = $"round {r + 1}/{rounds} ({fraction:P0} of the training rows)";
            var completed = last.Leaderboard.Where(e => e.Status == CandidateStatus.Completed).ToList();
            int keep = r == rounds - 1 ? completed.Count : (int)Math.Ceiling(survivors.Count / (double)s.ReductionFactor);
            foreach (var e in last.Leaderboard.Except(completed.Take(keep)))
                stopped.Add(e.Status == CandidateStatus.Completed
                    ? e with { Status = CandidateStatus.Eliminated, Rank = 0, Reason = $"eliminated after {where}: {o.Metric} {e.Metric:F4}" }
                    : e with { Reason = $"{where}: {e.Reason}" });
            if (r < rounds - 1) survivors = [.. completed.Take(keep).Select(e => byName[e.Name])];
        }
        // Trials never reached (the budget ran out between rounds) are reported as skipped.
        var reported = stopped.Select(e => e.Name).Concat(last?.Leaderboard.Select(e => e.Name) ?? []).ToHashSet();
        foreach (var t in survivors.Where(t => !reported.Contains(t.Name)))
            stopped.Add(new ModelComparisonEntry { Name = t.Name, Description = t.Description, Status = CandidateStatus.Skipped, Reason = "the time budget was spent before its round" });

        var finalists = last?.Leaderboard.Where(e => e.Status == CandidateStatus.Completed && survivors.Any(t => t.Name == e.Name)) ?? [];
        if (reached < rounds) // the budget ran out between rounds: the finalists are the best of the last round run, on fewer rows
            finalists = finalists.Select(e => e with { Reason = $"best of round {reached}/{rounds}; the time budget was spent before round {reached + 1}" });
        var board = ModelComparison.Rank(finalists.Concat(stopped), o.LowerIsBetter);
        var result = last;
        return new ModelComparisonResult(ml, train.Schema, o.Metric, board, clock.Elapsed, name => result!.GetModel(name));
    }

    static long CountRows(IDataView data)
    {
        long n = 0;
        using var cursor = data.GetRowCursor([]);
        while (cursor.MoveNext()) n++;
        return n;
    }
}
