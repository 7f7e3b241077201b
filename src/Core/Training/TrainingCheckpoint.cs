using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace DeepSeq.Core.Training;

/// <summary>A named tensor in a checkpoint: its full name, shape and values.</summary>
public sealed record CheckpointTensor(string Name, int[] Shape, float[] Values);

/// <summary>
/// Everything a training run needs to go on exactly where it stopped: the model's tensors, the optimiser's
/// state, the averaged and the best weights, the counters and the partial epoch's figures. The random draws need
/// no saving: the batch order of an epoch derives from (seed, epoch) and the model's random streams from
/// (seed, step). <see cref="Trainer"/> writes it; <see cref="Read"/> lets a caller look inside.
/// </summary>
/// <remarks>
/// File layout (little-endian): the 8 magic bytes <c>DSQTRAIN</c>, the format version (int32), the body, and the
/// SHA-256 of everything before it (32 bytes). A file is written to <c>path.tmp</c> beside the target, flushed
/// to disk and renamed over it, so a process killed while writing leaves the previous checkpoint intact.
/// </remarks>
public sealed class TrainingCheckpoint
{
    /// <summary>The format version this library writes and reads.</summary>
    public const int FormatVersion = 1;
    static ReadOnlySpan<byte> Magic => "DSQTRAIN"u8;

    /// <summary>The settings that fix the course of training (<see cref="TrainingOptions.TrajectorySettings"/>), plus the example count.</summary>
    public required IReadOnlyDictionary<string, string> Settings { get; init; }
    /// <summary>The epoch in progress, 1-based (after a completed epoch: the next one).</summary>
    public required int Epoch { get; init; }
    /// <summary>Batches done in <see cref="Epoch"/>.</summary>
    public required int Step { get; init; }
    /// <summary>Steps done in all.</summary>
    public required long GlobalStep { get; init; }
    /// <summary>True when training ended (all epochs, early stopping or divergence): <see cref="Model"/> holds the result.</summary>
    public required bool Finished { get; init; }
    /// <summary>Why training diverged, or null.</summary>
    public string? Divergence { get; init; }
    /// <summary>The epoch of <see cref="Best"/> (0: none yet; then <see cref="Best"/> holds the initial weights).</summary>
    public required int BestEpoch { get; init; }
    /// <summary>The best validation metric so far (−∞ before the first epoch).</summary>
    public required double BestMetric { get; init; }
    /// <summary>Epochs since the best one (for early stopping).</summary>
    public required int EpochsSinceBest { get; init; }
    /// <summary>The loss of the first step of training (NaN before it), for the rising-loss warning.</summary>
    public required double InitialLoss { get; init; }
    /// <summary>Σ loss × examples over the partial epoch.</summary>
    public required double EpochLossSum { get; init; }
    /// <summary>Examples seen in the partial epoch.</summary>
    public required long EpochExamples { get; init; }
    /// <summary>The mean loss of every batch of the partial epoch (for the rising-loss warning).</summary>
    public required IReadOnlyList<float> EpochBatchLosses { get; init; }
    /// <summary>Time spent in the partial epoch.</summary>
    public required TimeSpan EpochElapsed { get; init; }
    /// <summary>Time spent training so far.</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>The completed epochs' figures.</summary>
    public required IReadOnlyList<EpochSummary> Epochs { get; init; }
    /// <summary>Warnings so far.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
    /// <summary>The optimiser's step count.</summary>
    public required long OptimizerSteps { get; init; }
    /// <summary>Every tensor of the model (parameters, then state) as training left it (when <see cref="Finished"/>: the result).</summary>
    public required IReadOnlyList<CheckpointTensor> Model { get; init; }
    /// <summary>The best weights so far (parameters and state).</summary>
    public required IReadOnlyList<CheckpointTensor> Best { get; init; }
    /// <summary>The moving average of the parameters, or empty without averaging.</summary>
    public required IReadOnlyList<CheckpointTensor> Average { get; init; }
    /// <summary>The optimiser's buffers, named <c>buffer/parameter</c> (e.g. <c>m/head.weight</c>).</summary>
    public required IReadOnlyList<CheckpointTensor> Optimizer { get; init; }

    /// <summary>Writes the checkpoint atomically: to <c>path.tmp</c>, flushed to disk, then renamed over <paramref name="path"/>.</summary>
    public void Write(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            // A hash transform passes its input through unchanged: the stream writes the bytes and hashes them on the way.
            using var hash = SHA256.Create();
            using (var hashing = new CryptoStream(file, hash, CryptoStreamMode.Write, leaveOpen: true))
            using (var w = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
            {
                w.Write(Magic);
                w.Write(FormatVersion);
                WriteBody(w);
            }
            file.Write(hash.Hash!);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, full, overwrite: true);
    }

    void WriteBody(BinaryWriter w)
    {
        w.Write(Settings.Count);
        foreach (var (k, v) in Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal)) { w.Write(k); w.Write(v); }
        w.Write(Epoch); w.Write(Step); w.Write(GlobalStep); w.Write(Finished);
        w.Write(Divergence is not null); if (Divergence is not null) w.Write(Divergence);
        w.Write(BestEpoch); w.Write(BestMetric); w.Write(EpochsSinceBest); w.Write(InitialLoss);
        w.Write(EpochLossSum); w.Write(EpochExamples);
        w.Write(EpochBatchLosses.Count); foreach (float l in EpochBatchLosses) w.Write(l);
        w.Write(EpochElapsed.Ticks); w.Write(Elapsed.Ticks);
        w.Write(Epochs.Count);
        foreach (var e in Epochs)
        {
            w.Write(e.Epoch); w.Write(e.TrainLoss);
            w.Write(e.ValidationLoss.HasValue); w.Write(e.ValidationLoss ?? 0);
            w.Write(e.ValidationMetric.HasValue); w.Write(e.ValidationMetric ?? 0);
            w.Write(e.Duration.Ticks);
        }
        w.Write(Warnings.Count); foreach (var s in Warnings) w.Write(s);
        w.Write(OptimizerSteps);
        WriteTensors(w, Model); WriteTensors(w, Best); WriteTensors(w, Average); WriteTensors(w, Optimizer);
    }

    static void WriteTensors(BinaryWriter w, IReadOnlyList<CheckpointTensor> tensors)
    {
        w.Write(tensors.Count);
        foreach (var t in tensors)
        {
            w.Write(t.Name);
            w.Write(t.Shape.Length); foreach (int d in t.Shape) w.Write(d);
            w.Write(t.Values.Length);
            w.Write(MemoryMarshal.AsBytes(t.Values.AsSpan()));
        }
    }

    /// <summary>Reads and verifies a checkpoint.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a training checkpoint, is damaged (checksum), or has a newer format.</exception>
    public static TrainingCheckpoint Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Checkpoints are read on little-endian machines only.");
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long length = file.Length;
        Span<byte> head = stackalloc byte[12];
        if (length < head.Length + 32 || file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) < head.Length || !head[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a DeepSeq training checkpoint.");
        // The checksum covers everything before it: verify it before parsing anything.
        file.Position = 0;
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            var buffer = new byte[1 << 16];
            for (long left = length - 32; left > 0;)
            {
                int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n <= 0) throw new InvalidDataException($"The checkpoint '{path}' is truncated.");
                hash.AppendData(buffer, 0, n); left -= n;
            }
            var stored = new byte[32];
            file.ReadExactly(stored);
            if (!hash.GetHashAndReset().AsSpan().SequenceEqual(stored))
                throw new InvalidDataException($"The checkpoint '{path}' is damaged: its SHA-256 checksum does not match its content (truncated or modified).");
        }
        int version = BitConverter.ToInt32(head[8..]);
        if (version != FormatVersion)
            throw new InvalidDataException($"The checkpoint '{path}' has format version {version}; this library reads version {FormatVersion}.");
        file.Position = head.Length;
        try
        {
            using var r = new BinaryReader(file, Encoding.UTF8, leaveOpen: true);
            return ReadBody(r, length - 32);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or OverflowException or OutOfMemoryException)
        {
            throw new InvalidDataException($"The checkpoint '{path}' passed its checksum but could not be parsed: {e.Message}", e);
        }
    }

    static TrainingCheckpoint ReadBody(BinaryReader r, long end)
    {
        int Count() { int n = r.ReadInt32(); return n >= 0 && n <= end ? n : throw new InvalidDataException($"A count of {n} is out of range."); }
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = Count(); i > 0; i--) { string k = r.ReadString(); settings[k] = r.ReadString(); }
        int epoch = r.ReadInt32(), step = r.ReadInt32(); long globalStep = r.ReadInt64(); bool finished = r.ReadBoolean();
        string? divergence = r.ReadBoolean() ? r.ReadString() : null;
        int bestEpoch = r.ReadInt32(); double bestMetric = r.ReadDouble(); int sinceBest = r.ReadInt32(); double initialLoss = r.ReadDouble();
        double lossSum = r.ReadDouble(); long examples = r.ReadInt64();
        var losses = new float[Count()]; for (int i = 0; i < losses.Length; i++) losses[i] = r.ReadSingle();
        var epochElapsed = TimeSpan.FromTicks(r.ReadInt64()); var elapsed = TimeSpan.FromTicks(r.ReadInt64());
        var epochs = new List<EpochSummary>();
        for (int i = Count(); i > 0; i--)
        {
            int e = r.ReadInt32(); double loss = r.ReadDouble();
            bool hasVl = r.ReadBoolean(); double vl = r.ReadDouble();
            bool hasM = r.ReadBoolean(); double m = r.ReadDouble();
            epochs.Add(new EpochSummary(e, loss, hasVl ? vl : null, hasM ? m : null, TimeSpan.FromTicks(r.ReadInt64())));
        }
        var warnings = new List<string>(); for (int i = Count(); i > 0; i--) warnings.Add(r.ReadString());
        long optimizerSteps = r.ReadInt64();
        var model = ReadTensors(r, end); var best = ReadTensors(r, end); var average = ReadTensors(r, end); var optimizer = ReadTensors(r, end);
        if (r.BaseStream.Position != end) throw new InvalidDataException("Unexpected bytes after the last tensor.");
        return new TrainingCheckpoint
        {
            Settings = settings, Epoch = epoch, Step = step, GlobalStep = globalStep, Finished = finished, Divergence = divergence,
            BestEpoch = bestEpoch, BestMetric = bestMetric, EpochsSinceBest = sinceBest, InitialLoss = initialLoss, EpochLossSum = lossSum, EpochExamples = examples,
            EpochBatchLosses = losses, EpochElapsed = epochElapsed, Elapsed = elapsed, Epochs = epochs, Warnings = warnings,
            OptimizerSteps = optimizerSteps, Model = model, Best = best, Average = average, Optimizer = optimizer,
        };
    }

    static List<CheckpointTensor> ReadTensors(BinaryReader r, long end)
    {
        int count = r.ReadInt32();
        if (count < 0 || count > end) throw new InvalidDataException($"A tensor count of {count} is out of range.");
        var list = new List<CheckpointTensor>(count);
        for (int i = 0; i < count; i++)
        {
            string name = r.ReadString();
            int rank = r.ReadInt32();
            if (rank < 0 || rank > 16) throw new InvalidDataException($"Tensor '{name}' has rank {rank}.");
            var shape = new int[rank]; for (int d = 0; d < rank; d++) shape[d] = r.ReadInt32();
            int n = r.ReadInt32();
            if (n < 0 || 4L * n > end - r.BaseStream.Position) throw new InvalidDataException($"Tensor '{name}' claims {n} values, more than the file holds.");
            var values = new float[n];
            r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
            list.Add(new CheckpointTensor(name, shape, values));
        }
        return list;
    }
}
