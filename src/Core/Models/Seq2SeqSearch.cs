namespace DeepSeq.Core.Models;

/// <summary>A decoded sequence.</summary>
/// <param name="Tokens">Target ids, without BOS and EOS.</param>
/// <param name="Score">Σ log p of the chosen tokens, EOS included (when reached).</param>
/// <param name="Attention">Attention weights (steps × source steps as fed), one row per output token and one for EOS; empty without attention.</param>
/// <param name="Source">The source ids as the encoder read them (the columns of <paramref name="Attention"/>).</param>
public sealed record Seq2SeqPrediction(int[] Tokens, float Score, float[][] Attention, int[] Source);

/// <summary>Greedy and beam-search decoding over <see cref="Seq2SeqModel.DecodeStep"/>.</summary>
public static class Seq2SeqSearch
{
    /// <summary>The default longest output: 2 × the source length (as fed) + 10 tokens.</summary>
    public static int DefaultMaxLength(int sourceLength) => 2 * sourceLength + 10;

    /// <summary>
    /// Greedy decoding of every source (in batches of <paramref name="batchSize"/>): the most probable token at
    /// each step, until EOS or <paramref name="maxLength"/> tokens (0: <see cref="DefaultMaxLength"/>).
    /// </summary>
    public static Seq2SeqPrediction[] Greedy(Seq2SeqModel model, IReadOnlyList<int[]> sources, int maxLength = 0, int batchSize = 64, bool keepAttention = true)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var result = new Seq2SeqPrediction[sources.Count];
        int V = model.Config.TargetVocabularySize;
        // Sources of similar length share a batch: less padding in the encoder.
        var order = Enumerable.Range(0, sources.Count).OrderBy(i => sources[i]?.Length ?? 0).ToArray();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var idx = order[start..Math.Min(start + batchSize, order.Length)];
            var state = model.StartDecoding([.. idx.Select(i => sources[i])]);
            int R = state.Rows, S = state.SourceSteps;
            var logp = new float[R * V];
            var weights = new float[R * S];
            var previous = Enumerable.Repeat(Seq2SeqVocabulary.Bos, R).ToArray();
            var tokens = Enumerable.Range(0, R).Select(_ => new List<int>()).ToArray();
            var maps = Enumerable.Range(0, R).Select(_ => new List<float[]>()).ToArray();
            var scores = new float[R];
            var done = new bool[R];
            int limit = Enumerable.Range(0, R).Max(r => Limit(maxLength, state.Sources[r].Length));
            for (int step = 0; step <= limit && done.Contains(false); step++)
            {
                model.DecodeStep(logp, keepAttention && model.Attention is not null ? weights : default, state, previous);
                for (int r = 0; r < R; r++)
                {
                    if (done[r]) { previous[r] = Seq2SeqVocabulary.Eos; continue; }
                    var row = logp.AsSpan(r * V, V);
                    row[Seq2SeqVocabulary.Pad] = row[Seq2SeqVocabulary.Bos] = float.NegativeInfinity; // never predicted
                    int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
                    if (step == Limit(maxLength, state.Sources[r].Length)) best = Seq2SeqVocabulary.Eos; // out of room: stop here
                    else scores[r] += row[best];
                    if (keepAttention && model.Attention is not null) maps[r].Add(weights.AsSpan(r * S, state.Sources[r].Length).ToArray());
                    if (best == Seq2SeqVocabulary.Eos) done[r] = true;
                    else tokens[r].Add(best);
                    previous[r] = best;
                }
            }
            for (int r = 0; r < R; r++) result[idx[r]] = new Seq2SeqPrediction([.. tokens[r]], scores[r], [.. maps[r]], state.Sources[r]);
        }
        return result;
    }

    static int Limit(int maxLength, int sourceLength) => maxLength > 0 ? maxLength : DefaultMaxLength(sourceLength);

    /// <summary>
    /// Beam search for one source: keeps the <paramref name="beamWidth"/> best partial sequences; a sequence ends at
    /// EOS or after <paramref name="maxLength"/> tokens (0: <see cref="DefaultMaxLength"/>). Finished sequences are
    /// ranked by Σ log p / length^<paramref name="lengthPenalty"/> (length counts EOS; 0 = no normalisation, 1 = the
    /// mean log-probability). Returns the best <paramref name="results"/> (at most the beam width), best first.
    /// Beam width 1 gives the greedy sequence.
    /// </summary>
    public static Seq2SeqPrediction[] Beam(Seq2SeqModel model, int[] source, int beamWidth = 5, float lengthPenalty = 1f, int maxLength = 0, int results = 1)
    {
        ArgumentNullException.ThrowIfNull(model); ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(beamWidth, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        if (!(lengthPenalty >= 0)) throw new ArgumentOutOfRangeException(nameof(lengthPenalty), lengthPenalty, "Must be non-negative.");
        ArgumentOutOfRangeException.ThrowIfLessThan(results, 1);
        int k = beamWidth, V = model.Config.TargetVocabularySize;
        var state = model.StartDecoding([source], k);
        int S = state.SourceSteps, limit = Limit(maxLength, S);
        bool attend = model.Attention is not null;
        var logp = new float[k * V];
        var weights = new float[k * S];
        var previous = Enumerable.Repeat(Seq2SeqVocabulary.Bos, k).ToArray();
        var beams = new Hypothesis[k];
        beams[0] = new Hypothesis([], 0f, []);
        int alive = 1;                                   // rows ≥ alive hold nothing (at the start every row is the same)
        var finished = new List<(Hypothesis H, float Rank)>();
        var parents = new int[k];
        var candidates = new List<(float Score, int Row, int Token)>(k * (k + 1));
        var top = new List<int>(k + 1);
        for (int step = 0; alive > 0; step++)
        {
            model.DecodeStep(logp, attend ? weights : default, state, previous);
            candidates.Clear();
            for (int r = 0; r < alive; r++)
            {
                var row = logp.AsSpan(r * V, V);
                if (step == limit) { candidates.Add((beams[r].Score, r, Seq2SeqVocabulary.Eos)); continue; } // out of room: ends here, EOS not scored
                // Only a row's best k + 1 tokens can be among the best k extensions that are not EOS, plus EOS itself.
                TopTokens(row, k + 1, top);
                foreach (int v in top) candidates.Add((beams[r].Score + row[v], r, v));
            }
            // Best first; ties by row, then token, so that the search is deterministic (and width 1 is greedy's argmax).
            candidates.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Row != b.Row ? a.Row.CompareTo(b.Row) : a.Token.CompareTo(b.Token));
            var next = new Hypothesis[k];
            int kept = 0;
            for (int c = 0; c < candidates.Count && kept < k; c++)
            {
                var (score, r, token) = candidates[c];
                var map = attend ? weights.AsSpan(r * S, S).ToArray() : null;
                var maps = map is null ? beams[r].Maps : [.. beams[r].Maps, map];
                if (token == Seq2SeqVocabulary.Eos)
                {
                    // Only EOS among the best k ends a sequence; lower-ranked EOS would end one too early.
                    if (c < k) finished.Add((new Hypothesis(beams[r].Tokens, score, maps), score / MathF.Pow(beams[r].Tokens.Length + 1, lengthPenalty)));
                    continue;
                }
                next[kept] = new Hypothesis([.. beams[r].Tokens, token], score, maps);
                parents[kept] = r; previous[kept] = token; kept++;
            }
            if (finished.Count >= k) break;
            alive = kept;
            for (int r = kept; r < k; r++) { parents[r] = 0; previous[r] = Seq2SeqVocabulary.Eos; }
            Seq2SeqModel.ReorderRows(state, parents);
            beams = next;
        }
        return [.. finished.OrderByDescending(f => f.Rank).Take(Math.Min(results, k))
            .Select(f => new Seq2SeqPrediction(f.H.Tokens, f.H.Score, f.H.Maps, state.Sources[0]))];
    }

    sealed record Hypothesis(int[] Tokens, float Score, float[][] Maps);

    // The n most probable tokens of a row (never padding or BOS), best first; ties by lower id, as IndexOfMax.
    static void TopTokens(ReadOnlySpan<float> row, int n, List<int> top)
    {
        top.Clear();
        for (int v = 0; v < row.Length; v++)
        {
            if (v == Seq2SeqVocabulary.Pad || v == Seq2SeqVocabulary.Bos) continue;
            if (top.Count == n && !(row[v] > row[top[^1]])) continue;
            int at = top.Count;
            while (at > 0 && row[v] > row[top[at - 1]]) at--;
            top.Insert(at, v);
            if (top.Count > n) top.RemoveAt(n);
        }
    }
}
