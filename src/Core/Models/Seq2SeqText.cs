using DeepSeq.Core.Format;

namespace DeepSeq.Core.Models;

/// <summary>What a text-to-text <see cref="Seq2SeqTextModel"/> saves: the network's architecture and both vocabularies.</summary>
public sealed record Seq2SeqTextConfig
{
    /// <summary>The network.</summary>
    public Seq2SeqConfig Model { get; init; } = new();
    /// <summary>The source vocabulary (and how source text is tokenised).</summary>
    public Seq2SeqVocabulary Source { get; init; } = new();
    /// <summary>The target vocabulary (and how target tokens are joined).</summary>
    public Seq2SeqVocabulary Target { get; init; } = new();
    /// <summary>How <see cref="Seq2SeqTextModel.Translate(string)"/> decodes by default.</summary>
    public Seq2SeqDecoding Decoding { get; init; } = new();
}

/// <summary>Decoding settings saved with a model.</summary>
public sealed record Seq2SeqDecoding
{
    /// <summary>Beam width: 1 (default) is greedy decoding.</summary>
    public int BeamWidth { get; init; } = 1;
    /// <summary>Beam search ranks finished sequences by Σ log p / length^LengthPenalty (default 1; 0: no normalisation).</summary>
    public float LengthPenalty { get; init; } = 1f;
    /// <summary>Longest output in tokens; 0 (default): 2 × the source length + 10.</summary>
    public int MaxOutputLength { get; init; }

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (BeamWidth < 1) throw new ArgumentOutOfRangeException(nameof(BeamWidth), BeamWidth, "Must be at least 1 (1: greedy).");
        if (!(LengthPenalty >= 0) || !float.IsFinite(LengthPenalty)) throw new ArgumentOutOfRangeException(nameof(LengthPenalty), LengthPenalty, "Must be finite and non-negative.");
        if (MaxOutputLength < 0) throw new ArgumentOutOfRangeException(nameof(MaxOutputLength), MaxOutputLength, "Must be non-negative (0: 2 × the source length + 10).");
    }
}

/// <summary>A translation of one text, with the attention matrix that a user can draw.</summary>
/// <param name="Text">The predicted text (target tokens joined as the target vocabulary says).</param>
/// <param name="Tokens">The predicted tokens (without EOS).</param>
/// <param name="Score">Σ log p of the predicted tokens and EOS.</param>
/// <param name="Attention">Attention weights, one row per predicted token and a last one for EOS, one column per source token as fed (empty without attention).</param>
/// <param name="SourceTokens">The source tokens as the encoder read them (reversed or repeated as configured): the columns of <paramref name="Attention"/>.</param>
public sealed record Seq2SeqTranslation(string Text, IReadOnlyList<string> Tokens, float Score, float[][] Attention, IReadOnlyList<string> SourceTokens);

/// <summary>
/// A <see cref="Seq2SeqModel"/> with its vocabularies: text in, text out (greedy or beam search), saved in the one
/// DeepSeq format under the family <see cref="Family"/>.
/// </summary>
public sealed class Seq2SeqTextModel
{
    /// <summary>The family name in the saved format.</summary>
    public const string Family = "Seq2Seq";

    /// <summary>Wraps a trained model and the vocabularies it was trained with.</summary>
    public Seq2SeqTextModel(Seq2SeqModel model, Seq2SeqVocabulary source, Seq2SeqVocabulary target, Seq2SeqDecoding? decoding = null)
    {
        Decoding = decoding ?? new();
        Decoding.Validate();
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Source = source ?? throw new ArgumentNullException(nameof(source));
        Target = target ?? throw new ArgumentNullException(nameof(target));
        if (source.Size != model.Config.SourceVocabularySize || target.Size != model.Config.TargetVocabularySize)
            throw new ArgumentException($"The vocabularies ({source.Size} source, {target.Size} target ids) do not fit the model ({model.Config.SourceVocabularySize}, {model.Config.TargetVocabularySize}).");
    }

    /// <summary>The network.</summary>
    public Seq2SeqModel Model { get; }
    /// <summary>The source vocabulary.</summary>
    public Seq2SeqVocabulary Source { get; }
    /// <summary>The target vocabulary.</summary>
    public Seq2SeqVocabulary Target { get; }
    /// <summary>The default decoding settings.</summary>
    public Seq2SeqDecoding Decoding { get; }

    /// <summary>Translates one text with the default <see cref="Decoding"/>.</summary>
    public Seq2SeqTranslation Translate(string text) => Translate([text], Decoding.BeamWidth, Decoding.LengthPenalty, Decoding.MaxOutputLength)[0];

    /// <summary>
    /// Translates <paramref name="texts"/>: greedy when <paramref name="beamWidth"/> is 1 (in batches), beam search
    /// otherwise. An empty text (no tokens) gives an empty translation.
    /// </summary>
    public Seq2SeqTranslation[] Translate(IReadOnlyList<string> texts, int beamWidth = 1, float lengthPenalty = 1f, int maxLength = 0, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(beamWidth, 1);
        var ids = texts.Select(t => Source.Encode(t ?? "")).ToArray();
        var result = new Seq2SeqTranslation[texts.Count];
        var nonEmpty = Enumerable.Range(0, ids.Length).Where(i => ids[i].Length > 0).ToArray();
        for (int i = 0; i < ids.Length; i++) if (ids[i].Length == 0) result[i] = new("", [], 0f, [], []);
        var predictions = beamWidth == 1
            ? Seq2SeqSearch.Greedy(Model, [.. nonEmpty.Select(i => ids[i])], maxLength, batchSize)
            : [.. nonEmpty.Select(i => Seq2SeqSearch.Beam(Model, ids[i], beamWidth, lengthPenalty, maxLength)[0])];
        for (int k = 0; k < nonEmpty.Length; k++) result[nonEmpty[k]] = Describe(predictions[k]);
        return result;
    }

    /// <summary>Translates one text (see the batch overload).</summary>
    public Seq2SeqTranslation Translate(string text, int beamWidth, float lengthPenalty = 1f, int maxLength = 0)
        => Translate([text], beamWidth, lengthPenalty, maxLength)[0];

    /// <summary>A prediction in words: its text, tokens and the source tokens its attention columns refer to.</summary>
    public Seq2SeqTranslation Describe(Seq2SeqPrediction prediction)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        return new(Target.Decode(prediction.Tokens), [.. prediction.Tokens.Select(Target.Token)], prediction.Score, prediction.Attention,
            [.. prediction.Source.Select(Source.Token)]);
    }

    /// <summary>The model as saved (configuration, vocabularies and every tensor).</summary>
    public SavedModel Save() => SavedModel.Create(Family, new Seq2SeqTextConfig { Model = Model.Config, Source = Source, Target = Target, Decoding = Decoding }, Model);

    /// <summary>Rebuilds a saved text model.</summary>
    /// <exception cref="InvalidDataException">The saved model is of another family or does not fit its configuration.</exception>
    public static Seq2SeqTextModel Load(SavedModel saved)
    {
        ArgumentNullException.ThrowIfNull(saved);
        if (saved.Family != Family) throw new InvalidDataException($"The saved model is a {saved.Family} model, not a {Family} model.");
        var config = saved.Config<Seq2SeqTextConfig>();
        var model = new Seq2SeqModel(config.Model);
        model.Load(saved.Tensors);
        return new Seq2SeqTextModel(model, config.Source, config.Target, config.Decoding);
    }
}
