using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

namespace DeepSeq.MLNet;

/// <summary>
/// Text → a vector of token keys with a frequency-ranked vocabulary (see <see cref="DeepSeqCatalog.TokenizeText"/>).
/// Fitting counts words; the result is a chain of stock transforms (normalise, split, map to keys), so it saves
/// and loads with the model.
/// </summary>
public sealed class TextTokenizingEstimator : IEstimator<ITransformer>
{
    const string Normalized = "__DeepSeq_Normalized", Words = "__DeepSeq_Words";
    readonly MLContext _ml;
    readonly string _output, _input;
    readonly int _maxVocabulary, _minCount;

    /// <summary>Default values.</summary>
    public static class Defaults
    {
        /// <summary>20,000: most words kept.</summary>
        public const int MaximumVocabularySize = 20_000;
        /// <summary>2: fewest occurrences of a kept word.</summary>
        public const int MinimumCount = 2;
    }

    sealed class Word { public string Value = ""; }

    // Every whitespace character separates words, so a text of tabs or line breaks has no tokens, like an empty one.
    static readonly char[] Whitespace = [' ', '\t', '\n', '\r', '\f', '\v', '\u00A0', '\u2028', '\u2029'];

    // Parameter names in messages are those of DeepSeqCatalog.TokenizeText, which the user wrote.
    internal TextTokenizingEstimator(MLContext ml, string output, string input, int maxVocabulary, int minCount)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new ArgumentException("Set outputColumnName.", "outputColumnName");
        if (string.IsNullOrWhiteSpace(input)) throw new ArgumentException("Set inputColumnName.", "inputColumnName");
        if (maxVocabulary < 1) throw new ArgumentOutOfRangeException("maximumVocabularySize", maxVocabulary, "maximumVocabularySize must be at least 1: the vocabulary needs a word.");
        if (minCount < 1) throw new ArgumentOutOfRangeException("minimumCount", minCount, "minimumCount must be at least 1.");
        _ml = ml; _output = output; _input = input; _maxVocabulary = maxVocabulary; _minCount = minCount;
    }

    /// <summary>Counts the words of <paramref name="input"/> and returns the fitted tokenizer.</summary>
    public ITransformer Fit(IDataView input)
    {
        var column = input.Schema.GetColumnOrNull(_input) ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find input column '{_input}'");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException("inputSchema", $"Schema mismatch for input column '{_input}': expected String, got {column.Type}");
        var split = Split().Fit(input);
        var words = split.Transform(input);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var cursor = words.GetRowCursor([words.Schema[Words]]))
        {
            var getter = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(words.Schema[Words]);
            VBuffer<ReadOnlyMemory<char>> buffer = default;
            var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                foreach (var w in buffer.DenseValues())
                {
                    if (w.IsEmpty) continue;
                    if (lookup.TryGetValue(w.Span, out int n)) lookup[w.Span] = n + 1;
                    else lookup[w.Span] = 1;
                }
            }
        }
        var vocabulary = counts.Where(kv => kv.Value >= _minCount).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(_maxVocabulary).Select(kv => kv.Key).ToList();
        if (vocabulary.Count == 0) throw new InvalidOperationException($"No word in column '{_input}' occurs {_minCount} or more times; lower minimumCount.");
        return Estimator(vocabulary).Fit(input);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => Estimator(["word"]).GetOutputSchema(inputSchema);

    IEstimator<ITransformer> Split() =>
        _ml.Transforms.Text.NormalizeText(Normalized, _input, TextNormalizingEstimator.CaseMode.Lower, keepDiacritics: false, keepPunctuations: false, keepNumbers: true)
            .Append(_ml.Transforms.Text.TokenizeIntoWords(Words, Normalized, Whitespace));

    IEstimator<ITransformer> Estimator(IReadOnlyList<string> vocabulary) =>
        Split().Append(_ml.Transforms.Conversion.MapValueToKey(_output, Words, keyData: _ml.Data.LoadFromEnumerable(vocabulary.Select(w => new Word { Value = w }))))
            .Append(_ml.Transforms.DropColumns(Normalized, Words));
}
