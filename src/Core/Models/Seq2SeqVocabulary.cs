using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace DeepSeq.Core.Models;

/// <summary>What a token of a sequence-to-sequence model is.</summary>
public enum Seq2SeqTokenization
{
    /// <summary>Each character (text element) is a token, e.g. the letters of a word.</summary>
    Character,
    /// <summary>Tokens are separated by white space; punctuation is split off when <see cref="Seq2SeqVocabulary.SplitPunctuation"/> is set.</summary>
    Word,
}

/// <summary>
/// A vocabulary built from training text: ids 0 = padding, 1 = unknown, 2 = begin (BOS), 3 = end (EOS), then the
/// tokens by falling count (ties in ordinal order, so a vocabulary is the same for the same text).
/// </summary>
public sealed class Seq2SeqVocabulary
{
    /// <summary>Padding id.</summary>
    public const int Pad = 0;
    /// <summary>Unknown-token id.</summary>
    public const int Unknown = 1;
    /// <summary>Begin-of-sequence id: the decoder's first input.</summary>
    public const int Bos = 2;
    /// <summary>End-of-sequence id: the decoder's last output.</summary>
    public const int Eos = 3;
    /// <summary>Ids below this are special.</summary>
    public const int FirstToken = 4;

    Dictionary<string, int>? _ids;

    /// <summary>Tokens with ids <see cref="FirstToken"/>, <see cref="FirstToken"/> + 1, … (for the saved format).</summary>
    public IReadOnlyList<string> Tokens { get; init; } = [];
    /// <summary>How text is cut into tokens.</summary>
    public Seq2SeqTokenization Tokenization { get; init; }
    /// <summary>Lower-case text before cutting it.</summary>
    public bool LowerCase { get; init; }
    /// <summary>Word tokens: split punctuation marks into tokens of their own ("ok." → "ok", ".").</summary>
    public bool SplitPunctuation { get; init; }

    /// <summary>Ids in use: the special ones and the tokens.</summary>
    [JsonIgnore] public int Size => FirstToken + Tokens.Count;

    /// <summary>
    /// Builds a vocabulary of the tokens of <paramref name="texts"/> seen at least <paramref name="minCount"/>
    /// times, at most <paramref name="maxSize"/> of them (0: no limit), the most frequent first.
    /// </summary>
    public static Seq2SeqVocabulary Build(IEnumerable<string> texts, Seq2SeqTokenization tokenization, bool lowerCase = false, bool splitPunctuation = false,
        int maxSize = 0, int minCount = 1)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(minCount, 1);
        var shape = new Seq2SeqVocabulary { Tokenization = tokenization, LowerCase = lowerCase, SplitPunctuation = splitPunctuation };
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string text in texts)
            foreach (string token in shape.Split(text ?? ""))
                counts[token] = counts.GetValueOrDefault(token) + 1;
        var tokens = counts.Where(kv => kv.Value >= minCount).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key);
        if (maxSize > 0) tokens = tokens.Take(maxSize);
        return shape.With([.. tokens]);
    }

    Seq2SeqVocabulary With(IReadOnlyList<string> tokens) => new() { Tokens = tokens, Tokenization = Tokenization, LowerCase = LowerCase, SplitPunctuation = SplitPunctuation };

    /// <summary>The tokens of <paramref name="text"/> as this vocabulary cuts it.</summary>
    public IReadOnlyList<string> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (LowerCase) text = text.ToLowerInvariant();
        var tokens = new List<string>();
        if (Tokenization == Seq2SeqTokenization.Character)
        {
            var e = StringInfo.GetTextElementEnumerator(text);
            while (e.MoveNext()) tokens.Add(e.GetTextElement());
            return tokens;
        }
        var word = new StringBuilder();
        void Flush() { if (word.Length > 0) { tokens.Add(word.ToString()); word.Clear(); } }
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c)) Flush();
            else if (SplitPunctuation && char.IsPunctuation(c) && c != '\'') { Flush(); tokens.Add(c.ToString()); }
            else word.Append(c);
        }
        Flush();
        return tokens;
    }

    /// <summary>The ids of <paramref name="text"/>'s tokens (unknown tokens → <see cref="Unknown"/>).</summary>
    public int[] Encode(string text)
    {
        _ids ??= Tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i + FirstToken, StringComparer.Ordinal);
        return [.. Split(text).Select(t => _ids.TryGetValue(t, out int id) ? id : Unknown)];
    }

    /// <summary>The token of <paramref name="id"/>: the special ones as &lt;pad&gt;, &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;.</summary>
    public string Token(int id) => id switch
    {
        Pad => "<pad>",
        Unknown => "<unk>",
        Bos => "<s>",
        Eos => "</s>",
        _ when id >= FirstToken && id < Size => Tokens[id - FirstToken],
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, $"Ids are in [0, {Size})."),
    };

    /// <summary>Text of <paramref name="ids"/> (up to the first EOS): characters joined as they are, words with spaces.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var parts = new List<string>();
        foreach (int id in ids)
        {
            if (id == Eos) break;
            if (id is Pad or Bos) continue;
            parts.Add(Token(id));
        }
        return string.Join(Tokenization == Seq2SeqTokenization.Character ? "" : " ", parts);
    }
}
