namespace DeepSeq.Bench;

/// <summary>
/// Review-like text without the IMDB download: words of a fixed vocabulary of <see cref="VocabularySize"/>
/// made-up words (letters only, shorter words more frequent), drawn with Zipf frequencies (s = 1, as in natural
/// text), with some punctuation and capitals for the tokenizer to normalise, and lengths drawn log-normally with
/// the IMDB reviews' median (174 words) and mean (about 230 words), between 10 and 2,500 words.
/// Scoring speed depends on the shape of the work (lengths, vocabulary, model size), not on what the words mean.
/// </summary>
sealed class SyntheticReviews
{
    public const int VocabularySize = 20_000;
    const double MedianLength = 174, LengthSigma = 0.75; // e^(σ²/2) · 174 ≈ 230
    const string Consonants = "bcdfghjklmnprstvwz", Vowels = "aeiou";

    readonly string[] _words = new string[VocabularySize];
    readonly double[] _cumulative = new double[VocabularySize];

    public SyntheticReviews()
    {
        // Ranks 0–89 are one syllable, 90–8,189 two, the rest three: all distinct.
        int syllables = Consonants.Length * Vowels.Length;
        for (int r = 0; r < VocabularySize; r++)
        {
            int count = r < syllables ? 1 : r < syllables + syllables * syllables ? 2 : 3;
            int index = count == 1 ? r : count == 2 ? r - syllables : r - syllables - syllables * syllables;
            var chars = new char[2 * count];
            for (int s = 0; s < count; s++, index /= syllables)
            {
                int syllable = index % syllables;
                chars[2 * s] = Consonants[syllable / Vowels.Length];
                chars[2 * s + 1] = Vowels[syllable % Vowels.Length];
            }
            _words[r] = new string(chars);
        }
        double sum = 0;
        for (int r = 0; r < VocabularySize; r++) _cumulative[r] = sum += 1.0 / (r + 1);
        for (int r = 0; r < VocabularySize; r++) _cumulative[r] /= sum;
    }

    /// <summary>A word rank in [0, <see cref="VocabularySize"/>), Zipf-distributed.</summary>
    public int Rank(Random rng)
    {
        int i = Array.BinarySearch(_cumulative, rng.NextDouble());
        return Math.Min(i < 0 ? ~i : i, VocabularySize - 1);
    }

    /// <summary>A review length in words, log-normal with IMDB's median and mean.</summary>
    public static int Length(Random rng)
    {
        double normal = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        return (int)Math.Clamp(Math.Round(MedianLength * Math.Exp(LengthSigma * normal)), 10, 2500);
    }

    /// <summary>One review of <see cref="Length"/> words.</summary>
    public string Review(Random rng)
    {
        int length = Length(rng);
        var text = new System.Text.StringBuilder(length * 6);
        bool sentenceStart = true;
        for (int i = 0; i < length; i++)
        {
            if (i > 0) text.Append(' ');
            string word = _words[Rank(rng)];
            if (sentenceStart) { text.Append(char.ToUpperInvariant(word[0])).Append(word, 1, word.Length - 1); sentenceStart = false; }
            else text.Append(word);
            double p = rng.NextDouble();
            if (p < 1.0 / 15) { text.Append('.'); sentenceStart = true; }
            else if (p < 1.0 / 15 + 1.0 / 20) text.Append(',');
        }
        return text.ToString();
    }

    /// <summary>Every word once, most frequent first: two of these rows give the tokenizer the whole vocabulary.</summary>
    public string Dictionary() => string.Join(' ', _words);
}
