namespace Translation;

/// <summary>The protocol's scores: WER and PER for CMUdict, corpus BLEU-4 for sentence pairs.</summary>
public static class Metrics
{
    /// <summary>Levenshtein distance between token sequences.</summary>
    public static int EditDistance(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var prev = new int[b.Count + 1];
        var cur = new int[b.Count + 1];
        for (int j = 0; j <= b.Count; j++) prev[j] = j;
        for (int i = 1; i <= a.Count; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Count; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Count];
    }

    /// <summary>
    /// WER = share of examples whose prediction equals none of the references; PER = Σ min edit distance to a
    /// reference / Σ length of that reference (tokens are space-separated).
    /// </summary>
    public static (double Wer, double Per) WerPer(IReadOnlyList<Example> examples, IReadOnlyList<string> predictions)
    {
        int wrong = 0; long edits = 0, length = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var p = Tokens(predictions[i]);
            if (!examples[i].References.Contains(predictions[i])) wrong++;
            int best = int.MaxValue, bestLength = 0;
            foreach (string r in examples[i].References)
            {
                var rt = Tokens(r);
                int d = EditDistance(p, rt);
                if (d < best) { best = d; bestLength = rt.Length; }
            }
            edits += best; length += bestLength;
        }
        return ((double)wrong / examples.Count, (double)edits / length);
    }

    static string[] Tokens(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Corpus BLEU-4 (Papineni et al. 2002): uniform weights, clipped n-gram counts against all references, brevity
    /// penalty against the closest reference length, no smoothing.
    /// </summary>
    public static double Bleu(IReadOnlyList<IReadOnlyList<string>> hypotheses, IReadOnlyList<IReadOnlyList<IReadOnlyList<string>>> references)
    {
        var matched = new long[4]; var total = new long[4];
        long hypLength = 0, refLength = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var h = hypotheses[i];
            hypLength += h.Count;
            refLength += references[i].OrderBy(r => Math.Abs(r.Count - h.Count)).ThenBy(r => r.Count).First().Count;
            for (int n = 1; n <= 4; n++)
            {
                var counts = NGrams(h, n);
                var maxRef = new Dictionary<string, int>();
                foreach (var r in references[i])
                    foreach (var (g, c) in NGrams(r, n)) maxRef[g] = Math.Max(maxRef.GetValueOrDefault(g), c);
                foreach (var (g, c) in counts) matched[n - 1] += Math.Min(c, maxRef.GetValueOrDefault(g));
                total[n - 1] += Math.Max(0, h.Count - n + 1);
            }
        }
        double logPrecision = 0;
        for (int n = 0; n < 4; n++)
        {
            if (matched[n] == 0 || total[n] == 0) return 0;
            logPrecision += Math.Log((double)matched[n] / total[n]) / 4;
        }
        double bp = hypLength >= refLength ? 1 : Math.Exp(1 - (double)refLength / Math.Max(hypLength, 1));
        return bp * Math.Exp(logPrecision);
    }

    static Dictionary<string, int> NGrams(IReadOnlyList<string> tokens, int n)
    {
        var d = new Dictionary<string, int>();
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            string g = string.Join('\u0001', tokens.Skip(i).Take(n));
            d[g] = d.GetValueOrDefault(g) + 1;
        }
        return d;
    }
}
