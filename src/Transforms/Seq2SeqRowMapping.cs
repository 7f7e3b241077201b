using System.Collections.Concurrent;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeq.Core.Models;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet.Transforms;

/// <summary>Text in: the source text of a sequence-to-sequence model.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class SourceTextInput
{
    /// <summary>The source text.</summary>
    [ColumnName(DeepSeqColumns.Input)] public ReadOnlyMemory<char> Input;
    /// <summary>The model text (read as memory: a string field would copy the whole model on every row).</summary>
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;
}

/// <summary>
/// Text out: the translation, its score and its attention matrix with the tokens it refers to. A row with no
/// source tokens gets an empty translation, a NaN score and an empty matrix.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class TranslationOutput
{
    /// <summary>The predicted text (renamed to the trainer's output column).</summary>
    [ColumnName(DeepSeqColumns.PredictedName)] public ReadOnlyMemory<char> PredictedText;
    /// <summary>Σ log p of the predicted tokens and the end token; NaN for a row with nothing to translate.</summary>
    public float Score;
    /// <summary>The attention matrix, row-major: one row per predicted token plus one for the end token, one column per source token.</summary>
    [VectorType] public VBuffer<float> Attention;
    /// <summary>The source tokens as the encoder read them (reversed or repeated as the model was trained): the matrix's columns.</summary>
    [VectorType] public VBuffer<ReadOnlyMemory<char>> SourceTokens;
    /// <summary>The predicted tokens; with the end token, the matrix's rows.</summary>
    [VectorType] public VBuffer<ReadOnlyMemory<char>> PredictedTokens;

    internal void Write(Seq2SeqTranslation? t)
    {
        if (t is null || t.SourceTokens.Count == 0)
        {
            PredictedText = ReadOnlyMemory<char>.Empty; Score = float.NaN;
            Attention = new VBuffer<float>(0, []); SourceTokens = new VBuffer<ReadOnlyMemory<char>>(0, []); PredictedTokens = new VBuffer<ReadOnlyMemory<char>>(0, []);
            return;
        }
        PredictedText = t.Text.AsMemory();
        Score = t.Score;
        var flat = t.Attention.SelectMany(row => row).ToArray();
        Attention = new VBuffer<float>(flat.Length, flat);
        SourceTokens = new VBuffer<ReadOnlyMemory<char>>(t.SourceTokens.Count, [.. t.SourceTokens.Select(s => s.AsMemory())]);
        PredictedTokens = new VBuffer<ReadOnlyMemory<char>>(t.Tokens.Count, [.. t.Tokens.Select(s => s.AsMemory())]);
    }
}

/// <summary>The row mapping of a text-to-text sequence-to-sequence model (source text → <see cref="TranslationOutput"/>).</summary>
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class TextToTextMapping : CustomMappingFactory<SourceTextInput, TranslationOutput>
{
    /// <summary>The contract name a saved model refers to.</summary>
    public const string ContractName = "DeepSeq.TextSeq2Seq.v1";

    /// <inheritdoc/>
    public override Action<SourceTextInput, TranslationOutput> GetMapping() => static (input, output) =>
    {
        var source = input.Input.ToString();
        output.Write(string.IsNullOrWhiteSpace(source) ? null : Seq2SeqScoring.Resolve(input.Model).Translate(source));
    };
}

/// <summary>A decoded text-to-text model shared by all rows, with a pool of instances (decoding keeps per-batch state).</summary>
internal sealed class LoadedSeq2SeqModel(Core.Format.SavedModel saved)
{
    readonly ConcurrentBag<Seq2SeqTextModel> _pool = [];

    public Seq2SeqTranslation Translate(string text)
    {
        if (!_pool.TryTake(out var model)) model = Seq2SeqTextModel.Load(saved);
        try { return model.Translate(text); }
        finally { _pool.Add(model); }
    }
}

internal static class Seq2SeqScoring
{
    // Decoded once per model string: ValueMapping hands every row the same string instance.
    static readonly ConditionalWeakTable<string, LoadedSeq2SeqModel> s_models = new();

    public static LoadedSeq2SeqModel Resolve(ReadOnlyMemory<char> blob)
    {
        if (MemoryMarshal.TryGetString(blob, out string? text, out int start, out int length) && start == 0 && length == text.Length)
            return s_models.GetValue(text, t => new LoadedSeq2SeqModel(ModelFormat.ReadText(t)));
        return new LoadedSeq2SeqModel(ModelFormat.ReadText(blob.Span));
    }
}
