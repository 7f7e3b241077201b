using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Training;

/// <summary>Updates parameters from their gradients. State (momenta) is allocated once, per parameter.</summary>
public abstract class Optimizer
{
    private protected Optimizer(IReadOnlyList<Parameter> parameters, float learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters;
        LearningRate = learningRate;
    }

    /// <summary>The parameters updated.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Step size; a schedule may change it between steps.</summary>
    public float LearningRate
    {
        get;
        set => field = value > 0 && float.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(LearningRate), value, "The learning rate must be positive and finite.");
    }

    /// <summary>Number of steps taken.</summary>
    public long StepCount { get; private set; }

    /// <summary>Names of the per-parameter buffers the optimiser keeps (SGD: <c>velocity</c>; Adam: <c>m</c>, <c>v</c>).</summary>
    public abstract IReadOnlyList<string> StateNames { get; }

    /// <summary>
    /// The live buffer <paramref name="name"/> (one of <see cref="StateNames"/>) of parameter <paramref name="index"/>,
    /// as long as the parameter: copy it to save the optimiser, write into it to restore one (with <see cref="RestoreStepCount"/>).
    /// </summary>
    public Span<float> State(string name, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Parameters.Count);
        return StateBuffer(name, index) ?? throw new ArgumentException($"This optimiser keeps no state named '{name}'; it keeps {string.Join(", ", StateNames)}.", nameof(name));
    }

    /// <summary>Sets <see cref="StepCount"/> when restoring a saved optimiser (Adam's bias correction depends on it).</summary>
    public void RestoreStepCount(long steps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        StepCount = steps;
    }

    private protected abstract float[]? StateBuffer(string name, int index);

    /// <summary>Applies one update from the current gradients (it does not zero them).</summary>
    public void Step()
    {
        StepCount++;
        for (int i = 0; i < Parameters.Count; i++)
        {
            Update(i, Parameters[i].Value.Data, Parameters[i].Gradient.Data);
            Parameters[i].MarkChanged();
        }
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGradients()
    {
        for (int i = 0; i < Parameters.Count; i++) Parameters[i].ZeroGradient(); // indexed: no enumerator allocation per step
    }

    private protected abstract void Update(int index, Span<float> w, Span<float> g);
}

/// <summary>SGD with (optionally Nesterov) momentum and L2 weight decay: v = μv + g + λw; w −= lr·v (PyTorch's form).</summary>
public sealed class Sgd : Optimizer
{
    readonly float[][] _velocity;

    /// <summary>Creates the optimiser.</summary>
    public Sgd(IReadOnlyList<Parameter> parameters, float learningRate = 0.01f, float momentum = 0.9f, bool nesterov = false, float weightDecay = 0f)
        : base(parameters, learningRate)
    {
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Momentum must be in [0, 1).");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Weight decay must be non-negative.");
        Momentum = momentum; Nesterov = nesterov; WeightDecay = weightDecay;
        _velocity = [.. parameters.Select(p => new float[p.Value.Length])];
    }

    /// <summary>μ.</summary>
    public float Momentum { get; }
    /// <summary>Nesterov's look-ahead: w −= lr·(g + μv).</summary>
    public bool Nesterov { get; }
    /// <summary>λ, added to the gradient.</summary>
    public float WeightDecay { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> StateNames { get; } = ["velocity"];

    private protected override float[]? StateBuffer(string name, int index) => name == "velocity" ? _velocity[index] : null;

    private protected override void Update(int index, Span<float> w, Span<float> g)
    {
        var v = _velocity[index].AsSpan();
        if (WeightDecay > 0) TensorPrimitives.FusedMultiplyAdd(w, WeightDecay, g, g);  // g += λw
        TensorPrimitives.FusedMultiplyAdd(v, Momentum, g, v);                           // v = μv + g
        if (Nesterov) TensorPrimitives.FusedMultiplyAdd(v, Momentum, g, g);             // step along g + μv
        TensorPrimitives.FusedMultiplyAdd(Nesterov ? g : v, -LearningRate, w, w);
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba 2015) with bias correction. <see cref="DecoupledWeightDecay"/> selects AdamW
/// (Loshchilov &amp; Hutter 2019: w −= lr·λ·w apart from the adaptive step) instead of L2 added to the gradient.
/// </summary>
public sealed unsafe class Adam : Optimizer
{
    readonly float[][] _m, _v;

    /// <summary>Creates the optimiser; defaults as PyTorch.</summary>
    public Adam(IReadOnlyList<Parameter> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0f, bool decoupledWeightDecay = false)
        : base(parameters, learningRate)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "β1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "β2 must be in [0, 1).");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "ε must be positive.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Weight decay must be non-negative.");
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; WeightDecay = weightDecay; DecoupledWeightDecay = decoupledWeightDecay;
        _m = [.. parameters.Select(p => new float[p.Value.Length])];
        _v = [.. parameters.Select(p => new float[p.Value.Length])];
    }

    /// <summary>Creates AdamW (decoupled weight decay, default λ = 0.01 as PyTorch).</summary>
    public static Adam AdamW(IReadOnlyList<Parameter> parameters, float learningRate = 1e-3f, float weightDecay = 0.01f)
        => new(parameters, learningRate, weightDecay: weightDecay, decoupledWeightDecay: true);

    /// <summary>Decay of the first moment.</summary>
    public float Beta1 { get; }
    /// <summary>Decay of the second moment.</summary>
    public float Beta2 { get; }
    /// <summary>Added to √v̂.</summary>
    public float Epsilon { get; }
    /// <summary>λ.</summary>
    public float WeightDecay { get; }
    /// <summary>True for AdamW.</summary>
    public bool DecoupledWeightDecay { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> StateNames { get; } = ["m", "v"];

    private protected override float[]? StateBuffer(string name, int index) => name switch { "m" => _m[index], "v" => _v[index], _ => null };

    private protected override void Update(int index, Span<float> w, Span<float> g)
    {
        var m = _m[index].AsSpan(); var v = _v[index].AsSpan();
        float b1 = Beta1, b2 = Beta2, lr = LearningRate;
        float c1 = 1f / (1f - MathF.Pow(b1, StepCount)), c2 = 1f / (1f - MathF.Pow(b2, StepCount));
        if (WeightDecay > 0)
        {
            if (DecoupledWeightDecay) TensorPrimitives.Multiply(w, 1f - lr * WeightDecay, w);
            else TensorPrimitives.FusedMultiplyAdd(w, WeightDecay, g, g);
        }
        fixed (float* pw = w, pg = g, pm = m, pv = v)
            Lanes.Run(new AdamUpdate                                                    // w −= lr·m̂ / (√v̂ + ε)
            {
                Length = w.Length, W = pw, G = pg, M = pm, V = pv,
                Beta1 = b1, Beta2 = b2, StepSize = lr * c1, C2 = c2, Epsilon = Epsilon,
            });
    }
}
