namespace GradientFlow;

/// <summary>
/// A long-range task: sequences of one length L with F features per step, and K targets read from the network's
/// outputs at the last K steps. Examples are generated from a seed, so every split is fixed and nothing is downloaded.
/// </summary>
abstract class LongRangeTask
{
    /// <summary>Short name for tables and files.</summary>
    public abstract string Name { get; }
    /// <summary>Features per step (F).</summary>
    public abstract int Features { get; }
    /// <summary>Outputs per read step: 1 for regression, the alphabet size for classification.</summary>
    public abstract int Outputs { get; }
    /// <summary>Steps at the end whose outputs the loss reads (K).</summary>
    public abstract int ReadSteps { get; }
    /// <summary>True: softmax cross-entropy on class labels; false: squared error.</summary>
    public abstract bool Classification { get; }
    /// <summary>What "solved" means, for the table.</summary>
    public abstract string SolvedWhen { get; }
    /// <summary>True when the validation figures count as solving the task.</summary>
    public abstract bool Solved(double loss, double metric);
    /// <summary>The metric's name (higher is better).</summary>
    public abstract string MetricName { get; }

    /// <summary>x (count, L, F) row-major per example; targets (count, K).</summary>
    public abstract (float[] X, float[] Y) Generate(int count, int length, int seed);
}

/// <summary>
/// The adding problem (Hochreiter &amp; Schmidhuber 1997; Le et al. 2015): each step carries a number in [0, 1) and a
/// marker; two steps are marked, one in each half; the target at the last step is the sum of the two marked numbers.
/// Predicting 1 always gives MSE ≈ 0.167; solved below 0.01.
/// </summary>
sealed class AddingTask : LongRangeTask
{
    public override string Name => "adding";
    public override int Features => 2;
    public override int Outputs => 1;
    public override int ReadSteps => 1;
    public override bool Classification => false;
    public override string SolvedWhen => "validation MSE < 0.01 (always predicting 1: 0.167)";
    public override string MetricName => "−MSE";
    public override bool Solved(double loss, double metric) => loss < 0.01;

    public override (float[] X, float[] Y) Generate(int count, int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count * length * 2]; var y = new float[count];
        for (int i = 0; i < count; i++)
        {
            var row = x.AsSpan(i * length * 2, length * 2);
            for (int t = 0; t < length; t++) row[2 * t] = rng.NextSingle();
            int a = rng.Next(length / 2), b = length / 2 + rng.Next(length - length / 2);
            row[2 * a + 1] = 1; row[2 * b + 1] = 1;
            y[i] = row[2 * a] + row[2 * b];
        }
        return (x, y);
    }
}

/// <summary>
/// The copy task (Hochreiter &amp; Schmidhuber 1997; Arjovsky et al. 2016), small: S symbols from an alphabet of A at
/// the start, blanks, a delimiter at step L − S − 1, then S blanks during which the network must output the S
/// symbols in order. Inputs one-hot over A + 2 (symbols, blank, delimiter). Chance is 1/A per symbol; solved at 95 %.
/// </summary>
sealed class CopyTask(int symbols = 3, int alphabet = 4) : LongRangeTask
{
    public override string Name => "copy";
    public override int Features => alphabet + 2;
    public override int Outputs => alphabet;
    public override int ReadSteps => symbols;
    public override bool Classification => true;
    public override string SolvedWhen => $"validation accuracy ≥ 95 % per symbol ({symbols} symbols of {alphabet}; chance {100.0 / alphabet:F0} %)";
    public override string MetricName => "accuracy";
    public override bool Solved(double loss, double metric) => metric >= 0.95;

    public override (float[] X, float[] Y) Generate(int count, int length, int seed)
    {
        if (length < 2 * symbols + 2) throw new ArgumentOutOfRangeException(nameof(length), length, $"The copy task needs at least {2 * symbols + 2} steps.");
        var rng = new Random(seed);
        int f = Features, blank = alphabet, delimiter = alphabet + 1;
        var x = new float[count * length * f]; var y = new float[count * symbols];
        for (int i = 0; i < count; i++)
        {
            var row = x.AsSpan(i * length * f, length * f);
            for (int t = 0; t < length; t++)
            {
                int token = t < symbols ? rng.Next(alphabet) : t == length - symbols - 1 ? delimiter : blank;
                if (t < symbols) y[i * symbols + t] = token;
                row[t * f + token] = 1;
            }
        }
        return (x, y);
    }
}
