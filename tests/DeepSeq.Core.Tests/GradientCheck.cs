using DeepSeq.Core;

namespace DeepSeq.Core.Tests;

/// <summary>
/// Central-difference gradient checks. The loss is L = Σ wᵢ·yᵢ with fixed random weights w, so every output
/// and every element of its gradient matters. Forward runs in float32, so the step is large (1e-2) and the
/// tolerance is relative 2e-2 (kinked functions such as ReLU pass a smaller step) with an absolute floor of 2e-3 — loose enough for rounding, far tighter than
/// any real mistake (a wrong sign, a missing term, a swapped gate).
/// </summary>
internal static class GradientCheck
{
    public const float Step = 1e-2f;

    /// <summary>
    /// Checks d loss / d values for up to <paramref name="samples"/> entries of <paramref name="values"/>.
    /// <paramref name="loss"/> runs forward and returns L; <paramref name="analytic"/> holds the gradient
    /// computed by backward at the unperturbed point.
    /// </summary>
    public static void Check(string name, float[] values, ReadOnlySpan<float> analytic, Func<double> loss, int samples = 24, int seed = 7,
        double relTol = 2e-2, double absTol = 2e-3, float step = Step, bool requireSignal = true, Parameter? owner = null)
    {
        Assert.AreEqual(values.Length, analytic.Length, $"{name}: gradient length");
        var rng = new Random(seed);
        var indices = values.Length <= samples ? Enumerable.Range(0, values.Length) : Enumerable.Range(0, samples).Select(_ => rng.Next(values.Length));
        int nonZero = 0;
        foreach (int i in indices)
        {
            float saved = values[i];
            // A weight written in place must bump its version, or packed copies of it stay stale.
            values[i] = saved + step; owner?.MarkChanged(); double plus = loss();
            values[i] = saved - step; owner?.MarkChanged(); double minus = loss();
            values[i] = saved; owner?.MarkChanged();
            double numeric = (plus - minus) / (2 * step);
            double a = analytic[i];
            if (Math.Abs(numeric) > absTol) nonZero++;
            Assert.IsLessThanOrEqualTo(absTol + relTol * Math.Max(Math.Abs(a), Math.Abs(numeric)), Math.Abs(a - numeric),
                $"{name}[{i}]: analytic {a:G6}, numeric {numeric:G6}");
        }
        if (requireSignal) Assert.IsGreaterThan(0, nonZero, $"{name}: every sampled gradient was ~0; the check would prove nothing.");
    }

    /// <summary>Checks a parameter's gradient (see the other overload), bumping its version after each write.</summary>
    public static void Check(string name, Parameter p, Func<double> loss, int samples = 24, double relTol = 2e-2, double absTol = 2e-3,
        float step = Step, bool requireSignal = true)
        => Check(name, p.Value.Data, p.Gradient.Data, loss, samples, relTol: relTol, absTol: absTol, step: step, requireSignal: requireSignal, owner: p);

    public static float[] Random(int n, Random rng, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = scale * (2f * rng.NextSingle() - 1f);
        return a;
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public static void Randomize(Module layer, Random rng, float scale = 0.5f)
    {
        foreach (var p in layer.Parameters)
        {
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = scale * (2f * rng.NextSingle() - 1f);
            p.MarkChanged();
        }
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            Assert.IsLessThanOrEqualTo(abs + rel * Math.Abs(e), Math.Abs(e - a), $"{what}[{i}]: expected {e:G7}, got {a:G7}");
        }
    }
}
