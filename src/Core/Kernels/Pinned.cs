using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// Arrays on the pinned object heap, used through a 64-byte-aligned address: their address is stable, so
/// kernels may keep raw pointers, and 512-bit loads never straddle two cache lines (an array's data starts
/// only 16-byte aligned, which would split every such load in two).
/// </summary>
internal static unsafe class Pinned
{
    const int Slack = 16; // floats: room to move the start up to the next 64-byte boundary

    public static float[] Allocate(int length) => GC.AllocateUninitializedArray<float>(length + Slack, pinned: true);

    /// <summary>As <see cref="Allocate"/>, with every value zero.</summary>
    public static float[] AllocateZeroed(int length) => GC.AllocateArray<float>(length + Slack, pinned: true);

    /// <summary>The first <paramref name="length"/> usable floats, from the 64-byte-aligned address on (arrays from <see cref="Allocate"/> or <see cref="AllocateZeroed"/>).</summary>
    public static Span<float> Span(float[] array, int length) =>
        array.AsSpan((int)(Address(array) - (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array))), length);

    /// <summary>Usable floats from <see cref="Address"/> on; 0 for arrays not from <see cref="Allocate"/> (e.g. empty).</summary>
    public static int Capacity(float[] array) => Math.Max(0, array.Length - Slack);

    /// <summary>64-byte-aligned address of the usable part; valid only for arrays from <see cref="Allocate"/> or <see cref="AllocateZeroed"/>.</summary>
    public static float* Address(float[] array)
    {
        nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (float*)((start + 63) & ~(nint)63);
    }
}
