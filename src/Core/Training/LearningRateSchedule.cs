using System.Globalization;

namespace DeepSeq.Core.Training;

/// <summary>The shapes a <see cref="LearningRateSchedule"/> can take.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>The base rate × decay^epoch (1 = constant).</summary>
    EpochDecay,
    /// <summary>Cosine annealing from the base rate to base × <see cref="LearningRateSchedule.MinimumFactor"/> over all steps (Loshchilov &amp; Hutter 2017, no restarts).</summary>
    Cosine,
    /// <summary>
    /// One cycle (Smith &amp; Topin 2019, as PyTorch's <c>OneCycleLR</c> with cosine annealing): from base / <see cref="LearningRateSchedule.InitialDivisor"/>
    /// up to the base rate over the first <see cref="LearningRateSchedule.PeakFraction"/> of the steps, then down to
    /// base / (<see cref="LearningRateSchedule.InitialDivisor"/> · <see cref="LearningRateSchedule.FinalDivisor"/>) at the last step.
    /// </summary>
    OneCycle,
}

/// <summary>
/// The learning rate of every step, from (step, total steps, epoch): per-epoch decay, cosine annealing or one
/// cycle, optionally after a linear warm-up. A pure function of its inputs, so a resumed run needs only the
/// step count.
/// </summary>
/// <remarks>
/// With <see cref="WarmupSteps"/> = W &gt; 0, step s &lt; W takes (s + 1) / W of the rate the schedule has at its
/// start; the schedule itself (cosine, one cycle) then runs over the remaining steps, so it starts at step W.
/// Per-epoch decay counts epochs, not steps, and is only scaled during the warm-up. The rate is never zero.
/// </remarks>
public sealed record LearningRateSchedule
{
    LearningRateSchedule(LearningRateScheduleKind kind) => Kind = kind;

    /// <summary>The shape.</summary>
    public LearningRateScheduleKind Kind { get; }
    /// <summary>Per-epoch factor of <see cref="LearningRateScheduleKind.EpochDecay"/>, in (0, 1].</summary>
    public float Decay { get; init; } = 1f;
    /// <summary>The end of a cosine schedule as a fraction of the base rate, in [0, 1).</summary>
    public float MinimumFactor { get; init; }
    /// <summary>Fraction of the steps a one-cycle schedule spends rising, in (0, 1).</summary>
    public float PeakFraction { get; init; } = 0.3f;
    /// <summary>One cycle starts at base / this (PyTorch's <c>div_factor</c>), ≥ 1.</summary>
    public float InitialDivisor { get; init; } = 25f;
    /// <summary>One cycle ends at its start / this (PyTorch's <c>final_div_factor</c>), ≥ 1.</summary>
    public float FinalDivisor { get; init; } = 1e4f;
    /// <summary>Steps of linear warm-up before the schedule (0 = none).</summary>
    public int WarmupSteps { get; init; }

    /// <summary>The base rate throughout (optionally after a warm-up).</summary>
    public static LearningRateSchedule Constant(int warmupSteps = 0) => new(LearningRateScheduleKind.EpochDecay) { WarmupSteps = warmupSteps };
    /// <summary>The base rate × <paramref name="decay"/>^epoch, epochs counted from 0.</summary>
    public static LearningRateSchedule EpochDecay(float decay, int warmupSteps = 0) => new(LearningRateScheduleKind.EpochDecay) { Decay = decay, WarmupSteps = warmupSteps };
    /// <summary>Cosine annealing to base × <paramref name="minimumFactor"/>.</summary>
    public static LearningRateSchedule Cosine(float minimumFactor = 0f, int warmupSteps = 0) => new(LearningRateScheduleKind.Cosine) { MinimumFactor = minimumFactor, WarmupSteps = warmupSteps };
    /// <summary>One cycle peaking at the base rate (PyTorch's defaults).</summary>
    public static LearningRateSchedule OneCycle(float peakFraction = 0.3f, float initialDivisor = 25f, float finalDivisor = 1e4f, int warmupSteps = 0) =>
        new(LearningRateScheduleKind.OneCycle) { PeakFraction = peakFraction, InitialDivisor = initialDivisor, FinalDivisor = finalDivisor, WarmupSteps = warmupSteps };

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (!(Decay > 0 && Decay <= 1)) throw new ArgumentOutOfRangeException(nameof(Decay), Decay, "Must be in (0, 1].");
        if (!(MinimumFactor >= 0 && MinimumFactor < 1)) throw new ArgumentOutOfRangeException(nameof(MinimumFactor), MinimumFactor, "Must be in [0, 1).");
        if (!(PeakFraction > 0 && PeakFraction < 1)) throw new ArgumentOutOfRangeException(nameof(PeakFraction), PeakFraction, "Must be in (0, 1).");
        if (!(InitialDivisor >= 1) || float.IsInfinity(InitialDivisor)) throw new ArgumentOutOfRangeException(nameof(InitialDivisor), InitialDivisor, "Must be at least 1 and finite.");
        if (!(FinalDivisor >= 1) || float.IsInfinity(FinalDivisor)) throw new ArgumentOutOfRangeException(nameof(FinalDivisor), FinalDivisor, "Must be at least 1 and finite.");
        if (WarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, "Must be non-negative.");
    }

    /// <summary>
    /// The learning rate of step <paramref name="step"/> (0-based, counted over the whole run) of
    /// <paramref name="totalSteps"/>, taken in epoch <paramref name="epoch"/> (0-based), for base rate <paramref name="baseRate"/>.
    /// </summary>
    public float Rate(float baseRate, long step, long totalSteps, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        totalSteps = Math.Max(totalSteps, step + 1);
        long warm = Math.Min(WarmupSteps, totalSteps - 1);
        double factor = step < warm
            ? (step + 1.0) / warm * Factor(0, totalSteps - warm, epoch)
            : Factor(step - warm, totalSteps - warm, epoch);
        return Math.Max((float)(baseRate * factor), 1e-30f); // positive: optimisers refuse a zero rate
    }

    // The schedule's factor at step s of n (s < n), after any warm-up.
    double Factor(long s, long n, int epoch)
    {
        switch (Kind)
        {
            case LearningRateScheduleKind.Cosine:
                return MinimumFactor + (1 - MinimumFactor) * 0.5 * (1 + Math.Cos(Math.PI * s / n));
            case LearningRateScheduleKind.OneCycle:
            {
                // PyTorch: the rise ends at step PeakFraction·n − 1, the fall at step n − 1; both anneal by cosine.
                double start = 1.0 / InitialDivisor, end = start / FinalDivisor, up = Math.Max(PeakFraction * n - 1, 0);
                if (s <= up) return up == 0 ? 1 : Anneal(start, 1, s / up);
                double down = n - 1 - up;
                return down <= 0 ? end : Anneal(1, end, Math.Min((s - up) / down, 1));
            }
            default:
                return Math.Pow(Decay, epoch);
        }
    }

    static double Anneal(double from, double to, double t) => to + (from - to) * 0.5 * (1 + Math.Cos(Math.PI * t));

    /// <summary>Invariant text naming the shape and its settings (checkpoints compare it).</summary>
    public string Describe()
    {
        static string F(float v) => v.ToString("R", CultureInfo.InvariantCulture);
        string shape = Kind switch
        {
            LearningRateScheduleKind.Cosine => $"cosine(min {F(MinimumFactor)})",
            LearningRateScheduleKind.OneCycle => $"one-cycle(peak {F(PeakFraction)}, div {F(InitialDivisor)}, final div {F(FinalDivisor)})",
            _ => Decay == 1f ? "constant" : $"×{F(Decay)} per epoch",
        };
        return WarmupSteps > 0 ? $"{shape}, warm-up {WarmupSteps} steps" : shape;
    }

    /// <inheritdoc/>
    public override string ToString() => Describe();
}
