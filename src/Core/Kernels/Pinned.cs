using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepSeq.Core.Kernels;

/// <summary>Arrays on the pinned object heap: their address is stable, so kernels may keep raw pointers.</summary>
internal static unsafe class Pinned
{
    public static float[] Allocate(int length) => GC.AllocateUninitializedArray<float>(length, pinned: true);

    /// <summary>Address of element 0; valid only for arrays from <see cref="Allocate"/>.</summary>
    public static float* Address(float[] array) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
