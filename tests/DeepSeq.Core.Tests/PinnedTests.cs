using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class PinnedTests
{
    // The recurrent layer's buffers come from here, so that threads writing their own columns or rows of a step never
    // share a cache line: every span must start on a 64-byte boundary, whatever the array's own start, and hold zeros.
    [TestMethod]
    public unsafe void ZeroedSpansStartOnACacheLine()
    {
        foreach (int length in (int[])[1, 15, 16, 17, 1000, 40_000]) // small arrays and one on the large object heap
        {
            var array = Pinned.AllocateZeroed(length);
            var span = Pinned.Span(array, length);
            Assert.AreEqual(length, span.Length);
            fixed (float* p = span) Assert.AreEqual(0L, (long)p % 64, $"length {length}");
            Assert.AreEqual(-1, span.IndexOfAnyExcept(0f), $"length {length}: not all zero");
            Assert.IsTrue(Pinned.Address(array) == (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref span[0]));
        }
    }
}
