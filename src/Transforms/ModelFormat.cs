using DeepSeq.Core.Format;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.MLNet.Transforms;

/// <summary>
/// Everything a saved DeepSeq sequence model holds: the task, the architecture, the weights by name, how inputs
/// were cut, the class names and the training report.
/// </summary>
public sealed record SavedSequenceModel(SequenceTask Task, SequenceModelConfig Config, IReadOnlyList<string> ClassNames,
    int MaxLength, bool KeepEnd, int FeaturesPerStep, IReadOnlyDictionary<string, float[]> Weights)
{
    /// <summary>The family name in the saved format.</summary>
    public const string Family = "SequenceClassifier";

    /// <summary>What training did (null for a model not trained by this library's trainers).</summary>
    public TrainingReport? Report { get; init; }

    /// <summary>Captures a trained model (its tensors are copied).</summary>
    public static SavedSequenceModel From(SequenceModel model, SequenceTask task, IReadOnlyList<string> classNames, int maxLength, bool keepEnd, int featuresPerStep)
        => new(task, model.Config, classNames, maxLength, keepEnd, featuresPerStep, model.SnapshotTensors());

    /// <summary>Builds a model with these weights (one per thread that predicts: models keep per-batch state).</summary>
    /// <exception cref="InvalidDataException">The weights do not fit the architecture.</exception>
    public SequenceModel CreateModel()
    {
        var model = new SequenceModel(Config);
        model.Load(Weights);
        return model;
    }

    /// <summary>The model in the common saved form.</summary>
    public SavedModel ToSaved() => SavedModel.Create(Family, new Settings(Task, Config, ClassNames, MaxLength, KeepEnd, FeaturesPerStep, Report), Weights);

    /// <summary>Reads a sequence model from the common saved form.</summary>
    /// <exception cref="InvalidDataException">The saved model is of another family or its configuration is unreadable.</exception>
    public static SavedSequenceModel FromSaved(SavedModel saved)
    {
        ArgumentNullException.ThrowIfNull(saved);
        if (saved.Family != Family) throw new InvalidDataException($"The saved model is a {saved.Family} model, not a {Family} model.");
        var s = saved.Config<Settings>();
        return new SavedSequenceModel(s.Task, s.Model, s.ClassNames, s.MaxLength, s.KeepEnd, s.FeaturesPerStep, saved.Tensors) { Report = s.Report };
    }

    // The typed configuration stored as JSON beside the tensors.
    sealed record Settings(SequenceTask Task, SequenceModelConfig Model, IReadOnlyList<string> ClassNames, int MaxLength, bool KeepEnd,
        int FeaturesPerStep, TrainingReport? Report);
}

/// <summary>
/// The text form of a saved model, stored by ML.NET's value mapping inside the model zip: <c>DeepSeq.v2:</c> +
/// base64 of the <see cref="ModelFile"/> bytes (format version and SHA-256 checksum inside).
/// A damaged, foreign, older or newer blob gives a clear <see cref="InvalidDataException"/>.
/// </summary>
public static class ModelFormat
{
    /// <summary>Prefix of every blob of this format version.</summary>
    public const string Prefix = "DeepSeq.v2:";

    /// <summary>Serialises a sequence model to its text form.</summary>
    public static string Write(SavedSequenceModel m) => WriteText(m.ToSaved());

    /// <summary>Serialises any saved model to its text form.</summary>
    public static string WriteText(SavedModel model) => Prefix + Convert.ToBase64String(ModelFile.Write(model));

    /// <summary>Reads a sequence model from its text form.</summary>
    public static SavedSequenceModel Read(ReadOnlySpan<char> text) => SavedSequenceModel.FromSaved(ReadText(text));

    /// <summary>Reads any saved model from its text form; throws <see cref="InvalidDataException"/> when it is damaged or not a DeepSeq model.</summary>
    public static SavedModel ReadText(ReadOnlySpan<char> text)
    {
        if (!text.StartsWith("DeepSeq.v", StringComparison.Ordinal))
            throw new InvalidDataException("The model column does not hold a DeepSeq model: the model file is damaged or was not written by DeepSeq.MLNet.");
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            var tag = text[..Math.Max(0, text.IndexOf(':'))];
            bool older = tag.Length > 9 && int.TryParse(tag[9..], out int v) && v < ModelFile.Version;
            throw new InvalidDataException(older
                ? $"The model was saved in DeepSeq format '{tag}' by an earlier preview; this library reads v{ModelFile.Version}. Train it again."
                : $"The model was saved in a newer DeepSeq format ('{text[..Math.Min(12, text.Length)]}…'); this library reads format v{ModelFile.Version}. Update DeepSeq.MLNet.");
        }
        byte[] bytes;
        try { bytes = Convert.FromBase64String(text[Prefix.Length..].ToString()); }
        catch (FormatException) { throw new InvalidDataException("The DeepSeq model is damaged (its text is not valid base64); save it again or restore the file from a backup."); }
        return ModelFile.Read(bytes);
    }
}
