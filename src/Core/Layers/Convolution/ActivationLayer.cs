using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Convolution;

/// <summary>The activations a convolutional network can use between its layers.</summary>
public enum ActivationFunction
{
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>x for x &gt; 0, 0.01x otherwise.</summary>
    LeakyRelu,
    /// <summary>x for x &gt; 0, a_c·x otherwise with a learned slope per channel (initially 0.25).</summary>
    PRelu,
    /// <summary>x for x &gt; 0, a·x otherwise with a random in [1/8, 1/3] per value in training and their mean at inference.</summary>
    RRelu,
    /// <summary>x for x &gt; 0, eˣ − 1 otherwise.</summary>
    Elu,
    /// <summary>GELU (tanh approximation).</summary>
    Gelu,
    /// <summary>SELU.</summary>
    Selu,
    /// <summary>The larger of two channels: the layer before produces 2C channels, the activation keeps C.</summary>
    Maxout,
}

/// <summary>
/// One activation of the <see cref="ActivationFunction"/> family over channels-last values, in the argument
/// order of the other layers. Shape key: M rows (images × positions), C output channels; x (M, Cin) with
/// Cin = <see cref="InputChannels"/> (2C for maxout, C otherwise); y (M, C).
/// </summary>
public sealed unsafe class ActivationLayer : Module
{
    readonly Activation _elementwise;
    readonly PRelu? _prelu;
    readonly RRelu? _rrelu;
    readonly Maxout? _maxout;

    /// <summary>Creates the activation for <paramref name="channels"/> output channels (seeded for RReLU).</summary>
    public ActivationLayer(ActivationFunction function, int channels, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        Function = function; Channels = channels;
        switch (function)
        {
            case ActivationFunction.PRelu: _prelu = AddChild("prelu", new PRelu(channels)); break;
            case ActivationFunction.RRelu: _rrelu = AddChild("rrelu", new RRelu(seed: seed)); break;
            case ActivationFunction.Maxout: _maxout = new Maxout(2); break;
            default:
                _elementwise = new Activation(function switch
                {
                    ActivationFunction.Relu => ActivationKind.Relu,
                    ActivationFunction.LeakyRelu => ActivationKind.LeakyRelu,
                    ActivationFunction.Elu => ActivationKind.Elu,
                    ActivationFunction.Gelu => ActivationKind.Gelu,
                    ActivationFunction.Selu => ActivationKind.Selu,
                    _ => throw new ArgumentOutOfRangeException(nameof(function), function, "Unknown activation."),
                });
                break;
        }
    }

    /// <summary>The function.</summary>
    public ActivationFunction Function { get; }
    /// <summary>Output channels C.</summary>
    public int Channels { get; }
    /// <summary>Channels read per row: 2C for maxout (the two pieces of channel j are inputs 2j and 2j + 1), C otherwise.</summary>
    public int InputChannels => Function == ActivationFunction.Maxout ? 2 * Channels : Channels;

    /// <summary>y = f(x) over <paramref name="rows"/> rows; <paramref name="training"/> draws RReLU slopes.</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x, int rows, bool training)
    {
        if (x.Length != rows * InputChannels || y.Length != rows * Channels)
            throw new ArgumentException($"{Function} over {rows} rows needs {rows * InputChannels} inputs and {rows * Channels} outputs, got {x.Length} and {y.Length}.");
        if (_prelu is not null) _prelu.Forward(y, x, rows, 1);
        else if (_rrelu is not null) _rrelu.Forward(y, x, training);
        else if (_maxout is not null) _maxout.Forward(y, x);
        else fixed (float* py = y, px = x) ParallelRange.Run(x.Length, Quantum, new Elementwise(_elementwise, py, px, null, null));
    }

    /// <summary>dx += dy·f'(x), given the forward's x and y (and the slopes or winners it kept).</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, int rows)
        => Backward(dx, dy, x, y, rows, accumulate: true);

    /// <summary>dx += dy·f'(x), or dx = dy·f'(x) when not <paramref name="accumulate"/> (dx need not be cleared first).</summary>
    internal void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, int rows, bool accumulate)
    {
        if (_prelu is not null || _rrelu is not null || _maxout is not null)
        {
            if (!accumulate) dx.Clear();
            if (_prelu is not null) _prelu.Backward(dx, dy, x, rows, 1);
            else if (_rrelu is not null) _rrelu.Backward(dx, dy, x);
            else _maxout!.Backward(dx, dy);
            return;
        }
        if (x.Length != dx.Length || y.Length != dx.Length || dy.Length != dx.Length) throw new ArgumentException($"{Function}'s backward needs x, y, dx and dy of one length, got {x.Length}, {y.Length}, {dx.Length} and {dy.Length}.");
        fixed (float* pdx = dx, pdy = dy, px = x, py = y) ParallelRange.Run(dx.Length, Quantum, new Elementwise(_elementwise, py, px, pdx, pdy, accumulate));
    }

    // Values per quantum of a split element-wise pass: whole cache lines.
    const int Quantum = 16;
    // Values a backward pass that overwrites dx clears and then adds to at a time, while they are in L1.
    const int Block = 2048;

    // The parameter-free functions, split over the worker pool (each value's result does not depend on the split);
    // forward when dx is null. PReLU (per-channel slope gradients), RReLU (one random stream) and maxout stay serial.
    readonly struct Elementwise(Activation f, float* y, float* x, float* dx, float* dy, bool accumulate = true) : IRangeWork
    {
        public void Run(int start, int length)
        {
            if (dx == null)
            {
                f.Forward(new Span<float>(y + start, length), new ReadOnlySpan<float>(x + start, length));
                return;
            }
            for (int at = start, end = start + length; at < end; at += Block)
            {
                int n = Math.Min(Block, end - at);
                var d = new Span<float>(dx + at, n);
                if (!accumulate) d.Clear();
                f.Backward(d, new ReadOnlySpan<float>(dy + at, n), new ReadOnlySpan<float>(x + at, n), new ReadOnlySpan<float>(y + at, n));
            }
        }
    }
}
