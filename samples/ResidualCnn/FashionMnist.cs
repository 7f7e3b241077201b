using System.Diagnostics;
using System.IO.Compression;
using DeepSeq.Core.Models;

namespace ResidualCnn;

/// <summary>
/// Fashion-MNIST (60,000 training and 10,000 test images, 28×28 grey, 10 classes) from the four idx files
/// (gzipped or not): those of the Debian package <c>dataset-fashion-mnist</c>, installed with apt-get when they
/// are absent and the process may, or those in a directory given with <c>--data</c>.
/// </summary>
static class FashionMnist
{
    /// <summary>Where the Debian package puts the files.</summary>
    public const string PackageDirectory = "/usr/share/datasets/fashion-mnist";
    const string Package = "dataset-fashion-mnist";

    /// <summary>The class names, by label.</summary>
    public static readonly string[] ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The training and test sets, pixels scaled to [0, 1].</summary>
    public static (ImageDataset Train, ImageDataset Test) Load(string? directory, Action<string> log)
    {
        string dir = directory ?? PackageDirectory;
        if (directory is null && !File.Exists(Find(dir, "train-images-idx3-ubyte"))) Install(log);
        return (Read(dir, "train"), Read(dir, "t10k"));
    }

    /// <summary>Validation = training images whose index i has i % 12 == 0 (the protocol's split); the rest train.</summary>
    public static (ImageDataset Train, ImageDataset Validation) Split(ImageDataset all)
    {
        var train = new List<int>(); var validation = new List<int>();
        for (int i = 0; i < all.Count; i++) (i % 12 == 0 ? validation : train).Add(i);
        return (all.Subset(train), all.Subset(validation));
    }

    static void Install(Action<string> log)
    {
        log($"Fashion-MNIST is not in {PackageDirectory}; installing the Debian package {Package} …");
        try
        {
            try { Run("apt-get", $"install -y {Package}"); }
            catch (InvalidOperationException)
            {
                // A new machine's package lists are empty until the first update: fetch them once and try again.
                log("apt-get could not install it; updating the package lists and trying again …");
                Run("apt-get", "update");
                Run("apt-get", $"install -y {Package}");
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"Could not install {Package} ({e.Message}). Install it (sudo apt-get install {Package}) or pass --data DIR with the four idx files " +
                "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz).", e);
        }
    }

    static void Run(string file, string arguments)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start.");
        p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed (exit {p.ExitCode}): {err.Trim()}");
    }

    static string Find(string dir, string name)
    {
        string plain = Path.Combine(dir, name);
        return File.Exists(plain) ? plain : plain + ".gz";
    }

    static ImageDataset Read(string dir, string prefix)
    {
        var images = ReadIdx(Find(dir, prefix + "-images-idx3-ubyte"), 0x803, out var dims);
        var labels = ReadIdx(Find(dir, prefix + "-labels-idx1-ubyte"), 0x801, out var labelDims);
        if (dims.Length != 3 || labelDims[0] != dims[0]) throw new InvalidDataException($"{prefix}: {dims[0]} images but {labelDims[0]} labels.");
        var pixels = new float[images.Length];
        for (int i = 0; i < images.Length; i++) pixels[i] = images[i] / 255f;
        return new ImageDataset(pixels, [.. labels.Select(b => (int)b)], dims[1], dims[2], 1);
    }

    // idx format: big-endian magic (0x0803 images, 0x0801 labels), the dimensions, then unsigned bytes.
    static byte[] ReadIdx(string path, int magic, out int[] dims)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Missing {Path.GetFileName(path)} (with or without .gz) in {Path.GetDirectoryName(path)}.", path);
        using Stream file = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var r = new BinaryReader(s);
        int Int() => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(r.ReadInt32());
        int m = Int();
        if (m != magic) throw new InvalidDataException($"{path} is not an idx file of the expected kind (magic 0x{m:X}, expected 0x{magic:X}).");
        dims = new int[magic & 0xFF];
        long count = 1;
        for (int d = 0; d < dims.Length; d++) { dims[d] = Int(); count *= dims[d]; }
        var data = r.ReadBytes(checked((int)count));
        if (data.Length != count) throw new InvalidDataException($"{path} is truncated: {data.Length} of {count} values.");
        return data;
    }
}
