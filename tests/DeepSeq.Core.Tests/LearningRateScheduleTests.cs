using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class LearningRateScheduleTests
{
    const float Base = 0.1f;

    static float[] Curve(LearningRateSchedule s, int total, int stepsPerEpoch = 10) =>
        [.. Enumerable.Range(0, total).Select(k => s.Rate(Base, k, total, k / stepsPerEpoch))];

    [TestMethod]
    public void ConstantAndEpochDecay()
    {
        Assert.IsTrue(Curve(LearningRateSchedule.Constant(), 50).All(r => r == Base));
        var decay = Curve(LearningRateSchedule.EpochDecay(0.5f), 30);
        Assert.AreEqual(Base, decay[9]);
        Assert.AreEqual(Base * 0.5f, decay[10], 1e-9f, "halved at the first step of epoch 2");
        Assert.AreEqual(Base * 0.25f, decay[29], 1e-9f);
    }

    [TestMethod]
    public void CosineFallsSmoothlyFromTheBaseToTheMinimum()
    {
        var r = Curve(LearningRateSchedule.Cosine(minimumFactor: 0.1f), 100);
        Assert.AreEqual(Base, r[0], 1e-7f);
        for (int k = 1; k < r.Length; k++) Assert.IsLessThanOrEqualTo(r[k - 1], r[k], $"non-increasing at {k}");
        Assert.AreEqual(Base * 0.55f, r[50], 1e-6f, "half-way between base and minimum at the middle");
        Assert.AreEqual(Base * 0.1f, r[99], 1e-4f, "ends at the minimum");
        Assert.IsGreaterThan(0f, Curve(LearningRateSchedule.Cosine(), 100)[^1], "never zero");
        // Symmetric about the middle: r(k) − min and max − r(T − k) agree.
        Assert.AreEqual(r[20] - Base * 0.1f, Base - r[80], 1e-6f);
    }

    [TestMethod]
    public void OneCycleRisesToThePeakThenAnnealsAsPyTorch()
    {
        const int total = 100;
        var r = Curve(LearningRateSchedule.OneCycle(), total);
        Assert.AreEqual(Base / 25, r[0], 1e-7f, "starts at max / div_factor");
        int peak = Array.IndexOf(r, r.Max());
        Assert.AreEqual(29, peak, "PyTorch: the rise ends at step pct_start·total − 1");
        Assert.AreEqual(Base, r[peak], 1e-7f);
        for (int k = 1; k <= peak; k++) Assert.IsGreaterThan(r[k - 1], r[k], $"rising at {k}");
        for (int k = peak + 1; k < total; k++) Assert.IsLessThan(r[k - 1], r[k], $"falling at {k}");
        Assert.AreEqual(Base / 25 / 1e4f, r[^1], 1e-9f, "ends at initial / final_div_factor");
        // Half-way up (total 110: the rise ends at step 32), the cosine anneal is at the mean of its ends (PyTorch's _annealing_cos).
        Assert.AreEqual((Base / 25 + Base) / 2, LearningRateSchedule.OneCycle().Rate(Base, 16, 110, 0), 1e-6f);
    }

    [TestMethod]
    public void WarmUpRampsLinearlyIntoTheSchedule()
    {
        var s = LearningRateSchedule.Cosine(warmupSteps: 10);
        var r = Curve(s, 110);
        for (int k = 0; k < 10; k++) Assert.AreEqual(Base * (k + 1) / 10f, r[k], 1e-7f, $"warm-up step {k}");
        Assert.AreEqual(Base, r[10], 1e-7f, "the cosine starts after the warm-up");
        Assert.AreEqual(Base * 0.5f, r[60], 1e-6f, "and runs over the remaining 100 steps");
        var decay = Curve(LearningRateSchedule.EpochDecay(0.5f, warmupSteps: 4), 20);
        Assert.AreEqual(Base / 4, decay[0], 1e-7f);
        Assert.AreEqual(Base / 2, decay[10], 1e-7f, "per-epoch decay counts epochs");
        Assert.AreEqual("cosine(min 0), warm-up 10 steps", s.Describe());
    }

    [TestMethod]
    public void BadSettingsAreRefused()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LearningRateSchedule.OneCycle(peakFraction: 1f).Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(minimumFactor: 1f).Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => (LearningRateSchedule.Constant() with { WarmupSteps = -1 }).Validate());
        var both = new TrainingOptions { LearningRateDecay = 0.5f, Schedule = LearningRateSchedule.Cosine() };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(both.Validate).Message, "not both");
    }
}
