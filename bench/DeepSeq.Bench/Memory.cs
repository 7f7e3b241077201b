using System.Diagnostics;

namespace DeepSeq.Bench;

/// <summary>This process's resident set: now and its peak since the process started.</summary>
static class ResidentSet
{
    /// <summary>The current and peak resident set in bytes, and where they were read.</summary>
    public static (long Current, long Peak, string Source) Read()
    {
        // The kernel's own figures, shared library pages included (libtorch's code counts once it is touched).
        if (OperatingSystem.IsLinux())
        {
            long current = -1, peak = -1;
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) current = Kilobytes(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line);
            }
            if (current >= 0 && peak >= 0) return (current, peak, "VmRSS/VmHWM");
        }
        using var self = Process.GetCurrentProcess();
        return (self.WorkingSet64, self.PeakWorkingSet64, "WorkingSet64/PeakWorkingSet64");
    }

    // "VmHWM:   123456 kB"
    static long Kilobytes(string line) =>
        1024 * long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>True when TorchSharp's assembly or a libtorch library is loaded in this process.</summary>
    public static bool TorchLoaded() =>
        AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "TorchSharp")
        || (OperatingSystem.IsLinux() && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.Ordinal)));
}
