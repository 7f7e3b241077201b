using System.Buffers.Binary;
using System.Text;

namespace DeepSeq.Bench;

/// <summary>
/// Makes TorchSharp-cpu 0.107.0 load on systems whose libstdc++ predates GCC 13 (Debian 12: GLIBCXX_3.4.30).
/// </summary>
/// <remarks>
/// TorchSharp's <c>libLibTorchSharp.so</c> was linked by GCC ≥ 13 and so requires the symbol version
/// <c>GLIBCXX_3.4.32</c>, for which the only symbol is <c>std::ios_base_library_init()</c> — referenced by no
/// relocation. The loader refuses the library ("… is not restored", a misleading message) unless that one
/// requirement is marked weak (VER_FLG_WEAK in <c>.gnu.version_r</c>), which is all this does, to the copy in
/// the build output; libtorch itself is untouched. It must run before the first TorchSharp call.
/// </remarks>
public static class LibTorchSharpFix
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>Patches every <c>libLibTorchSharp.so</c> under the application folder; returns how many flags changed.</summary>
    public static int Apply(string version = "GLIBCXX_3.4.32")
    {
        if (!OperatingSystem.IsLinux()) return 0;
        int changed = 0;
        foreach (var path in Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            changed += WeakenVersionRequirement(path, version);
        return changed;
    }

    /// <summary>Marks the requirement on <paramref name="version"/> weak in one ELF64 little-endian file (idempotent).</summary>
    public static int WeakenVersionRequirement(string path, string version)
    {
        var data = File.ReadAllBytes(path);
        if (data.Length < 64 || data[0] != 0x7f || data[1] != (byte)'E' || data[4] != 2 || data[5] != 1)
            throw new InvalidDataException($"{path} is not an ELF64 little-endian file.");
        var span = data.AsSpan();
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]), shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        int changed = 0;
        for (int s = 0; s < shnum; s++)
        {
            var sh = span[(int)(shoff + s * shentsize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            int offset = (int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]), count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]);
            int strtab = (int)BinaryPrimitives.ReadUInt64LittleEndian(span[(int)(shoff + link * shentsize + 0x18)..]);
            for (int n = 0, p = offset; n < count; n++)
            {
                int auxCount = BinaryPrimitives.ReadUInt16LittleEndian(span[(p + 2)..]);
                int aux = p + (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(p + 8)..]);
                for (int a = 0; a < auxCount; a++)
                {
                    int name = strtab + (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 8)..]);
                    int end = span[name..].IndexOf((byte)0);
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span[(aux + 4)..]);
                    if (Encoding.ASCII.GetString(span.Slice(name, end)) == version && (flags & VerFlgWeak) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(span[(aux + 4)..], (ushort)(flags | VerFlgWeak));
                        changed++;
                    }
                    aux += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 12)..]);
                }
                p += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(p + 12)..]);
            }
        }
        if (changed > 0) File.WriteAllBytes(path, data);
        return changed;
    }
}
