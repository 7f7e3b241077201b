using System.Globalization;
using System.Numerics.Tensors;
using DeepSeq.Core.Layers.Recurrent;

namespace DeepSeq.Core.Diagnostics;

// Gradient flow through time (Pascanu, Mikolov & Bengio 2013): how far back the training signal of a recurrent
// layer reaches. Shape key: d distance back from a sequence's last processed step (0 = the step nearest the
// loss), H hidden units; state δ_t = dL/dh_t, with dL/dc_t beside it for an LSTM (its state is (h, c)).
//
// What one sampled backward pass records, per layer and direction, summed over the sequences of the batch at
// each distance d:
//   ‖dL/dh‖²          the total gradient reaching h at that step (from the loss there and from later steps)
//   ‖δ_t‖², ‖δ_{t−1}‖²  the state gradient before and after one step of BPTT: δ_{t−1} = J_tᵀ δ_t with
//                     J_t = ∂s_t/∂s_{t−1} (diag(f′)·W_hh for an Elman RNN, the gated equivalent otherwise)
// from which η_t = ‖J_tᵀ δ_t‖ / ‖δ_t‖, the gain of one step along the gradient actually flowing. It is a lower
// bound of the spectral norm ‖J_t‖ that the bound ‖∏ J‖ ≤ η^{t−k} uses, and the one that decides what reaches
// back: the product of the gains from the last step to distance d is ‖dL/ds_k‖ / ‖dL/ds_T‖ exactly when the loss
// reads only the last state. The cost: four squared norms of H values per sequence and step, on sampled batches
// only; a layer with no trace attached pays one null check per step.

/// <summary>Settings of the gradient-flow diagnostics of <see cref="Training.Trainer"/> (see <see cref="GradientFlowSample"/>).</summary>
public sealed record GradientFlowOptions
{
    /// <summary>Record one training batch in this many (the first batch of training always). Default 50.</summary>
    public int EveryBatches { get; init; } = 50;
    /// <summary>
    /// Samples kept at most (default 200): when full, every second one is dropped and the interval doubles, so the
    /// samples keep spanning training from its first step, with bounded memory.
    /// </summary>
    public int MaxSamples { get; init; } = 200;
    /// <summary>The fraction of the gradient norm at the last step below which a signal counts as gone (effective memory); default 10⁻³.</summary>
    public double MemoryThreshold { get; init; } = 1e-3;

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (EveryBatches < 1) throw new ArgumentOutOfRangeException(nameof(EveryBatches), EveryBatches, "Must be at least 1.");
        if (MaxSamples < 2) throw new ArgumentOutOfRangeException(nameof(MaxSamples), MaxSamples, "Must be at least 2.");
        if (!(MemoryThreshold > 0 && MemoryThreshold < 1)) throw new ArgumentOutOfRangeException(nameof(MemoryThreshold), MemoryThreshold, "Must be in (0, 1).");
    }
}

/// <summary>
/// The gradient flow of one recurrent layer and direction in one sampled batch, by distance back in time d from
/// each sequence's last processed step (the end of the sequence; its start for a reverse direction). Norms are
/// root-mean-square over the sequences that reach that far back.
/// </summary>
public sealed record LayerGradientFlow
{
    /// <summary>The layer's name in the model, e.g. <c>recurrent.layers.0.forward</c>.</summary>
    public required string Name { get; init; }
    /// <summary>‖dL/dh‖ at distance d (d = 0: the last step): how far back the signal reaches.</summary>
    public required IReadOnlyList<double> GradientNorm { get; init; }
    /// <summary>‖dL/ds‖ of the whole state at distance d: h, and c for an LSTM.</summary>
    public required IReadOnlyList<double> StateGradientNorm { get; init; }
    /// <summary>
    /// η at distance d: ‖∂s_{t}/∂s_{t−1}ᵀ · δ‖ / ‖δ‖, the gain of one backward step from distance d to d + 1 along the
    /// gradient δ flowing there (a lower bound of the Jacobian's norm). Below 1 the signal shrinks, above 1 it grows.
    /// </summary>
    public required IReadOnlyList<double> Gain { get; init; }
    /// <summary>
    /// The product of the gains from the last step back to distance d (1 at d = 0): the norm of the Jacobian
    /// product applied to the gradient direction; equals ‖dL/ds_d‖ / ‖dL/ds_0‖ when the loss reads only the last state.
    /// </summary>
    public required IReadOnlyList<double> JacobianProduct { get; init; }
    /// <summary>The geometric mean of <see cref="Gain"/>: the layer's η for this batch (NaN when undefined).</summary>
    public required double Eta { get; init; }
    /// <summary>
    /// Steps back until <see cref="GradientNorm"/> falls below the memory threshold (10⁻³ by default) times its value
    /// at the last step; null when it never does within the sequences (the signal reaches their start).
    /// </summary>
    public required int? EffectiveMemory { get; init; }
    /// <summary>The longest distance recorded (the batch's longest sequence).</summary>
    public int Length => GradientNorm.Count;
}

/// <summary>The gradient flow of one sampled training batch.</summary>
public sealed record GradientFlowSample
{
    /// <summary>1-based epoch.</summary>
    public required int Epoch { get; init; }
    /// <summary>0-based step of training (across epochs).</summary>
    public required long Step { get; init; }
    /// <summary>The batch's loss.</summary>
    public required double Loss { get; init; }
    /// <summary>The global L2 norm of all parameter gradients, before clipping.</summary>
    public required double GradientNorm { get; init; }
    /// <summary>Each recurrent layer and direction, in the order of the model's parameters.</summary>
    public required IReadOnlyList<LayerGradientFlow> Layers { get; init; }

    /// <summary>One line: step, loss, gradient norm, and per layer η and effective memory.</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        var layers = Layers.Select(l => string.Create(c,
            $"{l.Name} η {l.Eta:F3}, memory {(l.EffectiveMemory is int m ? m.ToString(c) : "≥" + l.Length.ToString(c))} steps"));
        return string.Create(c, $"step {Step}: loss {Loss:G4}, gradient norm {GradientNorm:G3}; ") + string.Join("; ", layers);
    }
}

/// <summary>The gradient-flow diagnostics of a training run (<see cref="Training.TrainingOptions.GradientFlow"/>).</summary>
public sealed record GradientFlowReport
{
    /// <summary>The sampled batches, in order of training (thinned evenly when more than the maximum were taken).</summary>
    public required IReadOnlyList<GradientFlowSample> Samples { get; init; }
    /// <summary>The largest global gradient norm (before clipping) of any step, sampled or not; ∞ or NaN when a step overflowed.</summary>
    public required double LargestGradientNorm { get; init; }
    /// <summary>The step at which <see cref="LargestGradientNorm"/> was seen.</summary>
    public required long LargestGradientNormStep { get; init; }
    /// <summary>Steps observed (after a resume: since the resume).</summary>
    public required long Steps { get; init; }
    /// <summary>The first sample, or null.</summary>
    public GradientFlowSample? First => Samples.Count > 0 ? Samples[0] : null;
    /// <summary>The last sample, or null.</summary>
    public GradientFlowSample? Last => Samples.Count > 0 ? Samples[^1] : null;

    /// <summary>A few lines for a log: η and effective memory at the first and last sample, and the largest gradient norm.</summary>
    public IEnumerable<string> Describe()
    {
        if (First is { } first) yield return "Gradient flow at the start, " + first;
        if (Last is { } last && Samples.Count > 1) yield return "Gradient flow at the end, " + last;
        yield return string.Create(CultureInfo.InvariantCulture, $"Largest gradient norm {LargestGradientNorm:G4} (step {LargestGradientNormStep}) over {Steps} steps.");
    }
}

/// <summary>
/// Records the gradient flow through time of every recurrent layer of a model for chosen backward passes:
/// <see cref="Arm"/> before a forward–backward pass, <see cref="Collect"/> after it. Unarmed, the layers carry no
/// trace and pay one null check per step. Recording only reads the gradients: training is unchanged.
/// </summary>
public sealed class GradientFlowProbe
{
    readonly (string Name, RecurrentLayer Layer, StepGradientTrace Trace)[] _layers;
    readonly double _threshold;

    /// <summary>Finds every <see cref="RecurrentNetwork"/> in <paramref name="model"/> (itself included).</summary>
    public GradientFlowProbe(Module model, double memoryThreshold = 1e-3)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(memoryThreshold > 0 && memoryThreshold < 1)) throw new ArgumentOutOfRangeException(nameof(memoryThreshold), memoryThreshold, "Must be in (0, 1).");
        _threshold = memoryThreshold;
        var found = new List<(string, RecurrentLayer, StepGradientTrace)>();
        Find(model, "", found);
        _layers = [.. found];
    }

    /// <summary>True when the model has recurrent layers to record.</summary>
    public bool HasRecurrentLayers => _layers.Length > 0;

    static void Find(Module module, string prefix, List<(string, RecurrentLayer, StepGradientTrace)> found)
    {
        if (module is RecurrentNetwork network)
            for (int s = 0; s < network.Layers.Count; s++)
                found.Add(($"{prefix}layers.{s / network.Directions}.{(s % network.Directions == 0 ? "forward" : "reverse")}", network.Layers[s], new StepGradientTrace()));
        foreach (var (name, child) in module.Children) Find(child, $"{prefix}{name}.", found);
    }

    /// <summary>Makes the next backward pass of every recurrent layer record its gradients.</summary>
    public void Arm()
    {
        foreach (var (_, layer, trace) in _layers) { trace.Clear(); layer.Trace = trace; }
    }

    /// <summary>Detaches the traces and returns what the backward pass since <see cref="Arm"/> recorded, per layer and direction.</summary>
    public IReadOnlyList<LayerGradientFlow> Collect()
    {
        var result = new LayerGradientFlow[_layers.Length];
        for (int i = 0; i < _layers.Length; i++)
        {
            var (name, layer, trace) = _layers[i];
            layer.Trace = null;
            result[i] = trace.Summarise(name, _threshold);
        }
        return result;
    }

    /// <summary>Detaches the traces without reading them.</summary>
    public void Disarm()
    {
        foreach (var (_, layer, _) in _layers) layer.Trace = null;
    }
}

/// <summary>
/// Sums per-step squared gradient norms of one layer's backward pass by distance back in time; see the file header.
/// Sized on first use for the longest sequence, then reused.
/// </summary>
internal sealed class StepGradientTrace
{
    double[] _dh = [], _state = [], _prev = []; // (d) Σ_b ‖dL/dh‖², ‖δ_t‖², ‖δ_{t−1}‖²
    int[] _rows = [];                           // (d) sequences reaching distance d
    int _length;                                // longest distance + 1 recorded

    public void Clear()
    {
        Array.Clear(_dh); Array.Clear(_state); Array.Clear(_prev); Array.Clear(_rows);
        _length = 0;
    }

    /// <summary>
    /// Step <paramref name="t"/> (processing order) of a backward pass over <paramref name="rows"/> active sequences of
    /// the given lengths: dh, dc = dL/dh_t, dL/dc_t arriving at the step (dc empty without a cell state); dhPrev,
    /// dcPrev = what the step passed back. All (rows, H).
    /// </summary>
    public void Record(int t, ReadOnlySpan<int> lengths, int rows, int hidden,
        ReadOnlySpan<float> dh, ReadOnlySpan<float> dc, ReadOnlySpan<float> dhPrev, ReadOnlySpan<float> dcPrev)
    {
        if (lengths[0] > _dh.Length)
        {
            int n = lengths[0];
            Array.Resize(ref _dh, n); Array.Resize(ref _state, n); Array.Resize(ref _prev, n); Array.Resize(ref _rows, n);
        }
        for (int b = 0; b < rows; b++)
        {
            int d = lengths[b] - 1 - t, o = b * hidden;
            double h = Square(dh.Slice(o, hidden)), c = dc.IsEmpty ? 0 : Square(dc.Slice(o, hidden));
            double p = Square(dhPrev.Slice(o, hidden)) + (dcPrev.IsEmpty ? 0 : Square(dcPrev.Slice(o, hidden)));
            _dh[d] += h; _state[d] += h + c; _prev[d] += p; _rows[d]++;
            if (d >= _length) _length = d + 1;
        }
    }

    // ‖v‖², also for the huge and tiny values of exploding and vanishing gradients, whose squares leave float's range.
    // One vectorised pass in the common case; in double only when float's sum of squares overflowed or lost precision.
    static double Square(ReadOnlySpan<float> v)
    {
        float n = TensorPrimitives.Norm(v);
        if (n is > 1e-15f and < 1e15f) return (double)n * n;
        double sum = 0;
        foreach (float x in v) sum += (double)x * x;
        return sum;
    }

    public LayerGradientFlow Summarise(string name, double threshold)
    {
        int n = _length;
        var norm = new double[n]; var state = new double[n]; var gain = new double[n]; var product = new double[n];
        double logSum = 0, running = 1;
        int logs = 0;
        int? memory = null;
        for (int d = 0; d < n; d++)
        {
            int r = Math.Max(_rows[d], 1);
            norm[d] = Math.Sqrt(_dh[d] / r);
            state[d] = Math.Sqrt(_state[d] / r);
            gain[d] = _state[d] > 0 ? Math.Sqrt(_prev[d] / _state[d]) : double.NaN;
            product[d] = running;
            if (double.IsFinite(gain[d])) running *= gain[d];
            if (gain[d] > 0 && double.IsFinite(gain[d])) { logSum += Math.Log(gain[d]); logs++; }
            if (memory is null && d > 0 && norm[d] < threshold * norm[0]) memory = d;
        }
        return new LayerGradientFlow
        {
            Name = name, GradientNorm = norm, StateGradientNorm = state, Gain = gain, JacobianProduct = product,
            Eta = logs > 0 ? Math.Exp(logSum / logs) : double.NaN, EffectiveMemory = memory,
        };
    }
}

/// <summary>
/// The trainer's side of the diagnostics: decides which steps to sample, arms the probe before them, and keeps
/// the samples (thinned to a bounded number) and the largest gradient norm of every step.
/// </summary>
internal sealed class GradientFlowMonitor
{
    readonly GradientFlowOptions _o;
    readonly GradientFlowProbe _probe;
    readonly List<GradientFlowSample> _samples = [];
    long _interval, _steps, _maxStep;
    double _max = double.NegativeInfinity;
    bool _armed;

    public GradientFlowMonitor(Module model, GradientFlowOptions options)
    {
        _o = options;
        _probe = new GradientFlowProbe(model, options.MemoryThreshold);
        _interval = options.EveryBatches;
    }

    /// <summary>The latest sample, or null.</summary>
    public GradientFlowSample? Latest => _samples.Count > 0 ? _samples[^1] : null;

    /// <summary>Before the forward–backward pass of step <paramref name="step"/>: arms the probe when the step is sampled.</summary>
    public void BeforeStep(long step)
    {
        _armed = _probe.HasRecurrentLayers && step % _interval == 0;
        if (_armed) _probe.Arm();
    }

    /// <summary>After the backward pass, with the global gradient norm before clipping. Returns the sample taken, or null.</summary>
    public GradientFlowSample? AfterStep(int epoch, long step, double loss, double gradientNorm)
    {
        _steps++;
        if (!(gradientNorm <= _max)) { _max = gradientNorm; _maxStep = step; } // a NaN (overflow) counts as largest
        if (!_armed) return null;
        _armed = false;
        var sample = new GradientFlowSample { Epoch = epoch, Step = step, Loss = loss, GradientNorm = gradientNorm, Layers = _probe.Collect() };
        _samples.Add(sample);
        if (_samples.Count > _o.MaxSamples)
        {
            // Keep the samples at multiples of the doubled interval: the first stays, spacing stays even.
            _interval *= 2;
            _samples.RemoveAll(s => s.Step % _interval != 0);
        }
        return sample;
    }

    /// <summary>Detaches the probe (e.g. when a step diverged before <see cref="AfterStep"/>).</summary>
    public void Disarm() { _probe.Disarm(); _armed = false; }

    public GradientFlowReport Report() => new()
    {
        Samples = [.. _samples], LargestGradientNorm = _steps > 0 ? _max : double.NaN, LargestGradientNormStep = _maxStep, Steps = _steps,
    };
}
