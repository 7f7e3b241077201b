using System.Security.Cryptography;
using System.Text;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.MLNet.Transforms;

/// <summary>Everything a saved DeepSeq model holds: the task, the architecture, the weights and how inputs were cut.</summary>
public sealed record SavedSequenceModel(SequenceTask Task, SequenceModelConfig Config, IReadOnlyList<string> ClassNames,
    int MaxLength, bool KeepEnd, int FeaturesPerStep, IReadOnlyDictionary<string, float[]> Weights)
{
    /// <summary>The report of the training that made the model, or null when the saved format does not carry it.</summary>
    public TrainingReport? Report { get; init; }

    /// <summary>Captures a trained model.</summary>
    public static SavedSequenceModel From(SequenceModel model, SequenceTask task, IReadOnlyList<string> classNames, int maxLength, bool keepEnd, int featuresPerStep)
        => new(task, model.Config, classNames, maxLength, keepEnd, featuresPerStep,
            model.Parameters.Select((p, i) => (Key: $"{i}:{p.Name}", Value: (float[])p.Value.Data.Clone())).ToDictionary(kv => kv.Key, kv => kv.Value));

    /// <summary>Builds a model with these weights (one per thread that predicts: models keep per-batch state).</summary>
    public SequenceModel CreateModel()
    {
        var model = new SequenceModel(Config);
        var parameters = model.Parameters;
        if (parameters.Count != Weights.Count) throw new InvalidDataException($"The saved model has {Weights.Count} weight tensors; its architecture needs {parameters.Count}.");
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (!Weights.TryGetValue($"{i}:{p.Name}", out var w) || w.Length != p.Value.Length)
                throw new InvalidDataException($"The saved model's weight '{p.Name}' is missing or has the wrong size.");
            w.CopyTo(p.Value.Data, 0);
            p.MarkChanged();
        }
        return model;
    }
}

/// <summary>
/// The text form of a saved model, stored by ML.NET's value mapping inside the model zip:
/// <c>DeepSeq.v1:</c> + base64 of [magic "DSEQ", format version, payload length, payload, SHA-256 of the payload].
/// A damaged or foreign blob gives a clear <see cref="InvalidDataException"/>.
/// </summary>
public static class ModelFormat
{
    /// <summary>Prefix of every blob of this format version.</summary>
    public const string Prefix = "DeepSeq.v1:";
    /// <summary>The format version written.</summary>
    public const int Version = 1;
    static ReadOnlySpan<byte> Magic => "DSEQ"u8;

    /// <summary>Serialises a model to its text form.</summary>
    public static string Write(SavedSequenceModel m)
    {
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            var c = m.Config;
            w.Write((int)m.Task); w.Write(m.MaxLength); w.Write(m.KeepEnd); w.Write(m.FeaturesPerStep);
            w.Write(m.ClassNames.Count); foreach (var name in m.ClassNames) w.Write(name);
            w.Write(c.VocabularySize); w.Write(c.EmbeddingSize); w.Write(c.FeatureSize);
            w.Write((int)c.Cell.Kind); w.Write((int)c.Cell.RnnActivation); w.Write((int)c.Cell.Peepholes); w.Write(c.Cell.CoupledInputForget); w.Write((int)c.Cell.GruReset);
            w.Write(c.HiddenSize); w.Write(c.Layers); w.Write(c.Bidirectional); w.Write((int)c.Merge); w.Write((int)c.Pooling); w.Write(c.AttentionSize); w.Write(c.Dropout); w.Write(c.Outputs);
            w.Write(m.Weights.Count);
            foreach (var (name, values) in m.Weights)
            {
                w.Write(name); w.Write(values.Length);
                w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            }
        }
        var body = payload.ToArray();
        using var all = new MemoryStream();
        using (var w = new BinaryWriter(all))
        {
            w.Write(Magic); w.Write(Version); w.Write(body.Length); w.Write(body); w.Write(SHA256.HashData(body));
        }
        return Prefix + Convert.ToBase64String(all.ToArray());
    }

    /// <summary>Reads a model from its text form; throws <see cref="InvalidDataException"/> when it is damaged or not a DeepSeq model.</summary>
    public static SavedSequenceModel Read(ReadOnlySpan<char> text)
    {
        if (!text.StartsWith("DeepSeq.v", StringComparison.Ordinal))
            throw new InvalidDataException("The model column does not hold a DeepSeq model: the model file is damaged or was not written by DeepSeq.MLNet.");
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
            throw new InvalidDataException($"The model was saved in a newer DeepSeq format ('{text[..Math.Min(12, text.Length)]}…'); this library reads format v{Version}. Update DeepSeq.MLNet.");
        byte[] bytes;
        try { bytes = Convert.FromBase64String(text[Prefix.Length..].ToString()); }
        catch (FormatException) { throw Damaged("its text is not valid base64"); }
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes));
            if (!r.ReadBytes(4).AsSpan().SequenceEqual(Magic)) throw Damaged("its header is wrong");
            int version = r.ReadInt32();
            if (version != Version) throw new InvalidDataException($"The model was saved in DeepSeq format v{version}; this library reads v{Version}.");
            int length = r.ReadInt32();
            if (length < 0 || length > bytes.Length) throw Damaged("its length field is wrong");
            var body = r.ReadBytes(length);
            var hash = r.ReadBytes(32);
            if (body.Length != length || hash.Length != 32 || !SHA256.HashData(body).AsSpan().SequenceEqual(hash)) throw Damaged("its checksum does not match");
            return ReadBody(body);
        }
        catch (EndOfStreamException) { throw Damaged("it ends early"); }
    }

    static SavedSequenceModel ReadBody(byte[] body)
    {
        using var r = new BinaryReader(new MemoryStream(body), Encoding.UTF8);
        var task = (SequenceTask)r.ReadInt32(); int maxLength = r.ReadInt32(); bool keepEnd = r.ReadBoolean(); int featuresPerStep = r.ReadInt32();
        var names = new string[r.ReadInt32()];
        for (int i = 0; i < names.Length; i++) names[i] = r.ReadString();
        var config = new SequenceModelConfig
        {
            VocabularySize = r.ReadInt32(), EmbeddingSize = r.ReadInt32(), FeatureSize = r.ReadInt32(),
            Cell = new RecurrentCellSpec((RecurrentCellKind)r.ReadInt32())
            {
                RnnActivation = (ActivationKind)r.ReadInt32(), Peepholes = (PeepholeGates)r.ReadInt32(),
                CoupledInputForget = r.ReadBoolean(), GruReset = (GruResetPlacement)r.ReadInt32(),
            },
            HiddenSize = r.ReadInt32(), Layers = r.ReadInt32(), Bidirectional = r.ReadBoolean(), Merge = (BidirectionalMerge)r.ReadInt32(),
            Pooling = (PoolingKind)r.ReadInt32(), AttentionSize = r.ReadInt32(), Dropout = r.ReadSingle(), Outputs = r.ReadInt32(),
        };
        var weights = new Dictionary<string, float[]>();
        int count = r.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            string name = r.ReadString();
            var values = new float[r.ReadInt32()];
            r.Read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            weights[name] = values;
        }
        return new SavedSequenceModel(task, config, names, maxLength, keepEnd, featuresPerStep, weights);
    }

    static InvalidDataException Damaged(string why) => new($"The DeepSeq model is damaged ({why}); save it again or restore the file from a backup.");
}
