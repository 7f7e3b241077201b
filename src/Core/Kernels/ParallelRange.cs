namespace DeepSeq.Core.Kernels;

/// <summary>Work on the sub-range [start, start + length) of a larger range, run by <see cref="ParallelRange.Run{TWork}"/>.</summary>
internal interface IRangeWork
{
    /// <summary>Runs the sub-range; <paramref name="start"/> is a whole number of the caller's quanta.</summary>
    void Run(int start, int length);
}

/// <summary>
/// Element-wise work over a long range (a layer's activations), cut into one part per thread of whole quanta and run
/// on the <see cref="WorkerPool"/>: what each element gets does not depend on the cut, so results do not depend on the
/// thread count.
/// </summary>
internal static class ParallelRange
{
    // Below this many elements (a few µs of element-wise work) waking a second core costs more than it saves.
    const int ParallelLength = 1 << 15;

    /// <summary>Runs <paramref name="work"/> over [0, <paramref name="length"/>) in parts that start at multiples of <paramref name="quantum"/>.</summary>
    public static void Run<TWork>(int length, int quantum, TWork work) where TWork : struct, IRangeWork
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(quantum, 1);
        int quanta = (length + quantum - 1) / quantum;
        int parts = length < ParallelLength ? 1 : Math.Min(quanta, Gemm.Threads);
        WorkerPool.Run(parts, new Part<TWork>(work, length, quantum, quanta, parts));
    }

    /// <summary>
    /// Copies <paramref name="source"/> into the start of <paramref name="destination"/>, split over the pool when
    /// long: one core's copy is well short of the memory's bandwidth, and the other core would only wait.
    /// </summary>
    public static unsafe void Copy<T>(ReadOnlySpan<T> source, Span<T> destination) where T : unmanaged
    {
        if (source.Length < ParallelLength) { source.CopyTo(destination); return; }
        fixed (T* from = source, to = destination[..source.Length]) Run(source.Length, 4096 / sizeof(T), new CopyWork<T>(from, to));
    }

    readonly unsafe struct CopyWork<T>(T* from, T* to) : IRangeWork where T : unmanaged
    {
        public void Run(int start, int length) => new ReadOnlySpan<T>(from + start, length).CopyTo(new Span<T>(to + start, length));
    }

    readonly struct Part<TWork>(TWork work, int length, int quantum, int quanta, int parts) : IPoolWork where TWork : struct, IRangeWork
    {
        public void Run(int part)
        {
            int start = (int)((long)quanta * part / parts) * quantum, end = Math.Min(length, (int)((long)quanta * (part + 1) / parts) * quantum);
            if (end > start) work.Run(start, end - start);
        }
    }
}
