using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeq.Core.Format;

/// <summary>
/// A trained model as saved, for every model family: the family's name, its typed configuration (as JSON) and
/// every tensor by its full name (<see cref="Module.NamedTensors"/>: parameters and state).
/// <see cref="ModelFile"/> turns it into bytes and back.
/// </summary>
public sealed class SavedModel
{
    static readonly JsonSerializerOptions s_json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // NaN losses in a report stay readable
    };

    /// <summary>Creates a saved model from raw parts (or use one of the <c>Create</c> methods).</summary>
    public SavedModel(string family, string configJson, IReadOnlyDictionary<string, float[]> tensors)
    {
        ArgumentException.ThrowIfNullOrEmpty(family);
        ArgumentNullException.ThrowIfNull(configJson);
        ArgumentNullException.ThrowIfNull(tensors);
        Family = family; ConfigJson = configJson; Tensors = tensors;
    }

    /// <summary>Captures <paramref name="model"/>'s tensors (copied) with its configuration.</summary>
    public static SavedModel Create<TConfig>(string family, TConfig config, Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Create(family, config, model.SnapshotTensors());
    }

    /// <summary>A saved model from a configuration and tensors by full name.</summary>
    public static SavedModel Create<TConfig>(string family, TConfig config, IReadOnlyDictionary<string, float[]> tensors)
        => new(family, JsonSerializer.Serialize(config, s_json), tensors);

    /// <summary>The model family, e.g. <c>SequenceClassifier</c>; decides how <see cref="ConfigJson"/> is read.</summary>
    public string Family { get; }
    /// <summary>The family's configuration as JSON (enums by name).</summary>
    public string ConfigJson { get; }
    /// <summary>Every tensor by full name.</summary>
    public IReadOnlyDictionary<string, float[]> Tensors { get; }

    /// <summary>Reads the configuration as <typeparamref name="TConfig"/>.</summary>
    /// <exception cref="InvalidDataException">The configuration does not fit the type.</exception>
    public TConfig Config<TConfig>()
    {
        try { return JsonSerializer.Deserialize<TConfig>(ConfigJson, s_json) ?? throw new InvalidDataException($"The saved {Family} model has an empty configuration."); }
        catch (JsonException e) { throw new InvalidDataException($"The saved {Family} model's configuration cannot be read: {e.Message}", e); }
    }
}

/// <summary>
/// The one file format of DeepSeq models: magic <c>DSEQ</c>, format version (int32), payload length (int64),
/// payload, SHA-256 of the payload. Payload: family, configuration JSON, tensor count, then per tensor its name,
/// value count and little-endian float32 values. Strings are length-prefixed UTF-8.
/// A damaged, foreign or newer file gives a clear <see cref="InvalidDataException"/>.
/// </summary>
public static class ModelFile
{
    /// <summary>The format version written (and the newest read).</summary>
    public const int Version = 2;
    static ReadOnlySpan<byte> Magic => "DSEQ"u8;

    /// <summary>Serialises a saved model.</summary>
    public static byte[] Write(SavedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(model.Family); w.Write(model.ConfigJson);
            w.Write(model.Tensors.Count);
            foreach (var (name, values) in model.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal)) // stable bytes for equal models
            {
                w.Write(name); w.Write(values.Length);
                if (BitConverter.IsLittleEndian) w.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                else foreach (float v in values) w.Write(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(v)));
            }
        }
        var body = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        var all = new byte[4 + 4 + 8 + body.Length + 32];
        Magic.CopyTo(all);
        BinaryPrimitives.WriteInt32LittleEndian(all.AsSpan(4), Version);
        BinaryPrimitives.WriteInt64LittleEndian(all.AsSpan(8), body.Length);
        body.CopyTo(all.AsSpan(16));
        SHA256.HashData(body, all.AsSpan(16 + body.Length));
        return all;
    }

    /// <summary>Reads a saved model; throws <see cref="InvalidDataException"/> when the bytes are damaged, foreign or newer.</summary>
    public static SavedModel Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 16 || !bytes[..4].SequenceEqual(Magic)) throw Damaged("it does not start with a DeepSeq header");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        if (version > Version)
            throw new InvalidDataException($"The model was saved in DeepSeq format v{version}, newer than this library reads (v{Version}). Update DeepSeq.MLNet.");
        if (version < Version)
            throw new InvalidDataException($"The model was saved in DeepSeq format v{version} by an earlier preview; this library reads v{Version}. Train it again.");
        long length = BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]);
        if (length < 0 || 16 + length + 32 != bytes.Length) throw Damaged("its length does not match");
        var body = bytes.Slice(16, (int)length);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(body, hash);
        if (!hash.SequenceEqual(bytes[(16 + (int)length)..])) throw Damaged("its checksum does not match");
        try
        {
            using var r = new BinaryReader(new MemoryStream(body.ToArray()), Encoding.UTF8);
            string family = r.ReadString(), config = r.ReadString();
            int count = r.ReadInt32();
            if (count < 0) throw Damaged("its tensor count is negative");
            var tensors = new Dictionary<string, float[]>(count);
            for (int i = 0; i < count; i++)
            {
                string name = r.ReadString();
                int n = r.ReadInt32();
                if (n < 0 || (long)n * 4 > r.BaseStream.Length - r.BaseStream.Position) throw Damaged($"tensor '{name}' has a wrong size");
                var values = new float[n];
                r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
                if (!BitConverter.IsLittleEndian)
                    for (int k = 0; k < n; k++) values[k] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(values[k])));
                if (!tensors.TryAdd(name, values)) throw Damaged($"tensor '{name}' appears twice");
            }
            return new SavedModel(family, config, tensors);
        }
        catch (EndOfStreamException) { throw Damaged("it ends early"); }
    }

    static InvalidDataException Damaged(string why) => new($"The DeepSeq model is damaged ({why}); save it again or restore the file from a backup.");
}
