namespace DeepSeq.Bench;

/// <summary>One case as one child run measured it (median times over the run's repetitions).</summary>
sealed record CaseResult(string Name, int Threads, double Flops, string Formula, int Rows, double DeepSeqMs, double TorchMs, string? Error);

/// <summary>The vector-path run's LSTM training step, DeepSeq alone, with what the runtime really accelerated.</summary>
sealed record PathResult(string Path, string Env, bool Vector512, bool Vector256, bool Vector128, bool Fma, int Width,
    string Arithmetic, double PeakGflops, string Case, double Flops, double Ms, string? Error);

/// <summary>
/// One library's short IMDB training in a process of its own: the resident set right before the model was built
/// and the process's peak (bytes), and managed-heap figures over the steady-state steps.
/// </summary>
/// <param name="Library">"DeepSeq" or "TorchSharp".</param>
/// <param name="Source">Where the resident figures come from (VmRSS/VmHWM, or the Process fallback).</param>
/// <param name="FinalBytes">The resident set after the last step.</param>
/// <param name="ManagedLiveBytes">The managed heap after the steps and a full collection: what the run keeps alive.</param>
/// <param name="AllocatedPerStep">Managed bytes allocated per step over the steps after warm-up, all threads.</param>
/// <param name="Collections">Garbage collections (any generation) during those steps.</param>
/// <param name="TorchLoaded">True when TorchSharp or libtorch was in the process (it must not be in DeepSeq's).</param>
sealed record MemoryResult(string Library, int Threads, int WarmupSteps, int Steps, string Source, long BaselineBytes, long PeakBytes,
    long FinalBytes, long ManagedLiveBytes, double AllocatedPerStep, int Collections, bool TorchLoaded, string? Error);

/// <summary>A measured multiply-add peak.</summary>
sealed record PeakResult(int WidthBits, string Arithmetic, int Threads, double Gflops);

/// <summary>A vector path: the name shown and the runtime setting that selects it (null: the default).</summary>
sealed record VectorPath(string Name, string? Variable)
{
    /// <summary>The paths the bench reports: default (AVX-512 where the CPU has it), then ever narrower.</summary>
    public static readonly VectorPath[] All =
    [
        new("default", null),
        new("AVX-512 off", "DOTNET_EnableAVX512"),
        new("AVX2 off", "DOTNET_EnableAVX2"),
        new("HW intrinsics off", "DOTNET_EnableHWIntrinsic"),
    ];

    public string Env => Variable is null ? "(none)" : $"{Variable}=0";
}
