using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;
using DeepSeq.Core.Diagnostics;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>
/// Runs a <see cref="RecurrentCell"/> over a batch of variable-length sequences in one direction.
/// Shapes (time-major): x (T, B, I), y (T, B, H), states (B, H).
/// </summary>
/// <remarks>
/// Sequences must come sorted by non-increasing length (<see cref="RecurrentNetwork"/> sorts for you). At step t
/// only the first B_t = #{b : length_b &gt; t} rows take part — the packed-sequence scheme of cuDNN and PyTorch —
/// so a padded batch computes exactly what each sequence would alone: outputs past a sequence's end are zero,
/// its final state is the one at its own last step, and padding receives no gradient.
/// A reverse layer reads each sequence backwards from its own last element.
/// </remarks>
public sealed class RecurrentLayer
{
    // Everything forward keeps for backward, reused across batches.
    float[]? _x;       // (T, B, I) the input in processing order (reversed per sequence when Reverse)
    float[]? _gates;   // (T, B, G·H) gate values
    float[]? _hs;      // (T + 1, B, H) h_{−1} = h0, then h_t
    float[]? _cs;      // (T + 1, B, H) c, LSTM only
    float[]? _cache;   // (T, B, CacheWidth)
    int[] _active = []; // (T) B_t
    int[] _lengths = [];
    int _t, _b;
    bool _projectedInput; // the last forward took its input projections from a table: nothing kept for backward
    int _reservedSteps, _reservedBatch;
    float[] _bias = []; // (G·H) forward: b_ih (+ b_hh); backward: the shared bias gradient
    // Backward scratch.
    float[]? _dgx, _dgh, _dh, _dhPrev, _dc, _dcPrev, _flip;

    // Buffers start on a 64-byte boundary (Pinned): a step's product splits C (the gates) by columns and its gate maths
    // split rows between threads, and a cache line across such a boundary moved between the cores at every step
    // (the recurrent products ran 8–9 % slower with C off the boundary).
    static float[] Buffer(int length) => Pinned.AllocateZeroed(length);
    static Span<float> View(float[]? buffer, int length) => Pinned.Span(buffer!, length);

    /// <summary>Wraps <paramref name="cell"/>; <paramref name="reverse"/> runs each sequence from its end.</summary>
    public RecurrentLayer(RecurrentCell cell, bool reverse = false)
    {
        Cell = cell ?? throw new ArgumentNullException(nameof(cell));
        Reverse = reverse;
    }

    /// <summary>The cell.</summary>
    public RecurrentCell Cell { get; }
    /// <summary>True when sequences are read from their last element to their first.</summary>
    public bool Reverse { get; }

    // Gradient-flow diagnostics (GradientFlowProbe): when set, backward records per-step gradient norms into it.
    internal StepGradientTrace? Trace { get; set; }

    /// <summary>
    /// Sizes every buffer that forward keeps for backward, and backward's scratch, for batches of up to
    /// <paramref name="steps"/> × <paramref name="batch"/>: smaller batches then run without allocating.
    /// <see cref="Forward"/> reserves a larger shape when one arrives.
    /// </summary>
    public void Reserve(int steps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && batch == _reservedBatch) return;
        int I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, E = Cell.CacheWidth, tb = steps * batch, bh = batch * H;
        _x = Buffer(tb * I);                                  // (T, B, I)
        _gates = Buffer(tb * GH);                             // (T, B, G·H)
        _hs = Buffer(tb * H + bh);                            // (T + 1, B, H)
        _cs = Cell.HasCellState ? Buffer(tb * H + bh) : null;
        _cache = Buffer(Math.Max(tb * E, 1));                 // (T, B, E)
        _active = new int[steps]; _lengths = new int[batch];
        _bias = new float[GH];
        _flip = Buffer(tb * Math.Max(H, I));
        _dgx = Buffer(tb * GH);
        _dgh = Cell.SeparateRecurrentGradient ? Buffer(tb * GH) : null;
        _dh = Buffer(bh); _dhPrev = Buffer(bh); _dc = Buffer(bh); _dcPrev = Buffer(bh);
        Cell.Reserve(batch);
        _reservedSteps = steps; _reservedBatch = batch;
    }

    /// <summary>
    /// Forward pass. <paramref name="h0"/>/<paramref name="c0"/> may be empty (zeros); <paramref name="hT"/>/<paramref name="cT"/>
    /// may be empty when not wanted. <paramref name="lengths"/> must be non-increasing, each in [1, T].
    /// </summary>
    public void Forward(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<float> x, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        ReadOnlySpan<int> lengths, int steps, int batch)
    {
        int I = Cell.InputSize, GH = Cell.GateCount * Cell.HiddenSize;
        Validate(x.Length, steps, batch, lengths, I);
        Start(y, hT, cT, h0, c0, lengths, steps, batch);

        int tb = steps * batch;
        var xs = View(_x, tb * I);
        if (Reverse) FlipWithin(x, xs, I); else ParallelRange.Copy(x, xs);

        // Input projection of every step at once: gates = x·W_ihᵀ + b_ih (+ b_hh).
        var gates = View(_gates, tb * GH);
        var bias = _bias.AsSpan(0, GH);
        Cell.InputBias(bias);
        Cell.InputT.PackIfChanged(true, Cell.WeightIh.Value.Data, I, Cell.WeightIh.Version);
        Gemm.MultiplyAddRow(tb, xs, I, Cell.InputT, bias, gates, GH);

        Recur(y, hT, cT, h0, c0);
    }

    /// <summary>
    /// Inference forward whose input-side pre-activations are rows of <paramref name="table"/> (V, G·H), one per
    /// token id of <paramref name="tokens"/> (T, B) — x·W_ihᵀ + b precomputed per word (ProjectedEmbedding).
    /// Otherwise as <see cref="Forward"/>;
    /// keeps nothing for <see cref="Backward"/>.
    /// </summary>
    internal void ForwardProjected(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<int> tokens, ReadOnlySpan<float> table,
        ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, ReadOnlySpan<int> lengths, int steps, int batch)
    {
        CheckTable(tokens, table, lengths, steps, batch);
        Start(y, hT, cT, h0, c0, lengths, steps, batch);
        Recur(y, hT, cT, h0, c0, tokens, table);
    }

    /// <summary>
    /// <see cref="ForwardProjected"/> from zero initial states that keeps, per row, only the maximum
    /// (<paramref name="max"/>) and the mean (<paramref name="mean"/>) of h over the row's own steps, (B, H) each,
    /// either empty when not wanted: h and c live in two steps' rows, so nothing T steps long is written (scoring with
    /// Max, Mean or MaxMean pooling).
    /// </summary>
    internal void ForwardProjectedPooled(Span<float> max, Span<float> mean, ReadOnlySpan<int> tokens, ReadOnlySpan<float> table,
        ReadOnlySpan<int> lengths, int steps, int batch)
    {
        CheckTable(tokens, table, lengths, steps, batch);
        CheckOptional(max.Length, batch * Cell.HiddenSize, "max"); CheckOptional(mean.Length, batch * Cell.HiddenSize, "mean");
        Prepare(lengths, steps, batch);
        Recur(default, default, default, default, default, tokens, table, max, mean);
    }

    void CheckTable(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, ReadOnlySpan<int> lengths, int steps, int batch)
    {
        int GH = Cell.GateCount * Cell.HiddenSize, words = table.Length / GH;
        if (table.Length != words * GH) throw new ArgumentException($"The table has {table.Length} values, not a multiple of G·H = {GH}.", nameof(table));
        Validate(tokens.Length, steps, batch, lengths, 1);
        foreach (int id in tokens)
            if ((uint)id >= (uint)words)
                throw new ArgumentOutOfRangeException(nameof(tokens), id, $"Token id {id} is outside the table's vocabulary [0, {words}).");
    }

    // What the forwards share before the input projection: checks, then Prepare.
    void Start(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, ReadOnlySpan<int> lengths, int steps, int batch)
    {
        int H = Cell.HiddenSize;
        CheckLength(y.Length, steps * batch * H, "y");
        CheckOptional(h0.Length, batch * H, "h0"); CheckOptional(c0.Length, batch * H, "c0");
        CheckOptional(hT.Length, batch * H, "hT"); CheckOptional(cT.Length, batch * H, "cT");
        Prepare(lengths, steps, batch);
    }

    // Buffers, lengths and the active rows per step.
    void Prepare(ReadOnlySpan<int> lengths, int steps, int batch)
    {
        Reserve(steps, batch);
        _t = steps; _b = batch;
        lengths.CopyTo(_lengths);
        for (int t = 0, b = batch; t < steps; t++)
        {
            while (b > 0 && lengths[b - 1] <= t) b--;
            _active[t] = b;
        }
    }

    // The recurrence over the input-side pre-activations in _gates, then the outputs and final states. With a
    // table, each step's pre-activations are its tokens' rows, gathered just before the step; nothing is kept for a
    // backward, so every step reuses the first step's rows of pre-activations and cache, which stay in cache (each
    // step's own rows were fresh memory, T·B·G·H floats in all). With max or mean (pooling as it goes), h and c take
    // turns in two steps' rows and the pooled values are the only outputs.
    void Recur(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        ReadOnlySpan<int> tokens = default, ReadOnlySpan<float> table = default, Span<float> max = default, Span<float> mean = default)
    {
        int steps = _t, batch = _b, H = Cell.HiddenSize, GH = Cell.GateCount * H, E = Cell.CacheWidth, tb = steps * batch;
        bool pooling = !max.IsEmpty || !mean.IsEmpty;
        _projectedInput = !table.IsEmpty;
        var gates = View(_gates, tb * GH);
        var hs = View(_hs, (tb + batch) * H);
        var cs = Cell.HasCellState ? View(_cs, (tb + batch) * H) : default;
        var cache = View(_cache, tb * E);
        int bh = batch * H;
        Initial(hs[..bh], h0);
        if (Cell.HasCellState) Initial(cs[..bh], c0);

        Cell.PackForForward();
        for (int t = 0; t < steps; t++)
        {
            int n = _active[t], kept = table.IsEmpty ? t : 0;
            int prev = pooling ? t & 1 : t, next = pooling ? (t + 1) & 1 : t + 1; // the rows of h_{t−1} and h_t
            // Rows whose sequence has ended get zero outputs, which the step does not write (and which the weight
            // gradient's product over all rows reads); every other row is written, so h needs no clearing up front.
            // c is read only on active rows.
            if (n < batch && !pooling) hs.Slice(next * bh + n * H, (batch - n) * H).Clear();
            var stepGates = gates.Slice(kept * batch * GH, n * GH);
            if (!table.IsEmpty) Gather(stepGates, GH, tokens, table, t, n);
            Cell.ForwardStep(new StepForward
            {
                Rows = n,
                Gates = stepGates,
                HPrev = hs.Slice(prev * bh, n * H),
                CPrev = Cell.HasCellState ? cs.Slice(prev * bh, n * H) : default,
                H = hs.Slice(next * bh, n * H),
                C = Cell.HasCellState ? cs.Slice(next * bh, n * H) : default,
                Cache = cache.Slice(kept * batch * E, n * E),
            });
            if (pooling) SequencePooling.AddStep(max, mean, hs.Slice(next * bh, n * H), t);
        }

        if (pooling)
        {
            if (!mean.IsEmpty) SequencePooling.DivideByLengths(mean, H, H, _lengths.AsSpan(0, batch));
            return;
        }
        if (Reverse) FlipWithin(hs[bh..], y, H); else ParallelRange.Copy<float>(hs[bh..], y);
        for (int b = 0; b < batch; b++)
        {
            int last = _lengths[b]; // h_{len−1} sits at hs[len]
            if (!hT.IsEmpty) hs.Slice(last * bh + b * H, H).CopyTo(hT.Slice(b * H, H));
            if (!cT.IsEmpty && Cell.HasCellState) cs.Slice(last * bh + b * H, H).CopyTo(cT.Slice(b * H, H));
        }
    }

    // Step t's table rows into its pre-activations (gates: the step's rows); the next step's rows are prefetched
    // meanwhile, as the table (V × G·H) is far larger than the caches and each row is read at a random place.
    unsafe void Gather(Span<float> gates, int GH, ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, int t, int n)
    {
        for (int b = 0; b < n; b++)
            table.Slice(Token(tokens, t, b) * GH, GH).CopyTo(gates.Slice(b * GH, GH));
        if (t + 1 >= _t || !Sse.IsSupported) return;
        fixed (float* p = table)
            for (int b = 0, next = _active[t + 1]; b < next; b++)
            {
                byte* row = (byte*)(p + (long)Token(tokens, t + 1, b) * GH);
                for (int i = 0; i < GH * sizeof(float); i += 64) Sse.Prefetch1(row + i);
            }
    }

    int Token(ReadOnlySpan<int> tokens, int t, int b) => tokens[(Reverse ? _lengths[b] - 1 - t : t) * _b + b];

    // The state before the first step: the given one, or zeros.
    internal static void Initial(Span<float> first, ReadOnlySpan<float> given)
    {
        if (given.IsEmpty) first.Clear();
        else given.CopyTo(first);
    }

    /// <summary>
    /// Backward pass for the last <see cref="Forward"/>: adds parameter gradients into the cell's parameters and
    /// dL/dx into <paramref name="dx"/> (skipped when empty); writes dL/dh0, dL/dc0 when those are not empty.
    /// <paramref name="dhT"/>/<paramref name="dcT"/> are the gradients of the final states (empty: zero).
    /// </summary>
    public void Backward(Span<float> dx, Span<float> dh0, Span<float> dc0, ReadOnlySpan<float> dy, ReadOnlySpan<float> dhT, ReadOnlySpan<float> dcT)
    {
        if (_t == 0) throw new InvalidOperationException("Backward called before Forward.");
        if (_projectedInput) throw new InvalidOperationException("The last forward looked its input projections up in a table (inference only); train from a forward over x.");
        int steps = _t, batch = _b, I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, E = Cell.CacheWidth;
        int tb = steps * batch, bh = batch * H;
        CheckLength(dy.Length, tb * H, "dy");
        CheckOptional(dx.Length, tb * I, "dx");
        CheckOptional(dhT.Length, bh, "dhT"); CheckOptional(dcT.Length, bh, "dcT");
        CheckOptional(dh0.Length, bh, "dh0"); CheckOptional(dc0.Length, bh, "dc0");

        var dys = View(_flip, tb * H);
        if (Reverse) FlipWithin(dy, dys, H); else dy.CopyTo(dys);
        var dgx = View(_dgx, tb * GH);
        var dgh = Cell.SeparateRecurrentGradient ? View(_dgh, tb * GH) : dgx;
        var dh = View(_dh, bh);
        var dhPrev = View(_dhPrev, bh);
        var dc = View(_dc, bh);
        var dcPrev = View(_dcPrev, bh);
        if (dhT.IsEmpty) dh.Clear(); else dhT.CopyTo(dh);
        if (dcT.IsEmpty || !Cell.HasCellState) dc.Clear(); else dcT.CopyTo(dc);

        var gates = View(_gates, tb * GH);
        var hs = View(_hs, tb * H + bh);
        var cs = Cell.HasCellState ? View(_cs, tb * H + bh) : default;
        var cache = View(_cache, tb * E);

        Cell.PackForBackward();
        for (int t = steps - 1; t >= 0; t--)
        {
            int n = _active[t], nh = n * H;
            // Rows past B_t have not started (backwards in time): their dh, dc wait for their last step.
            TensorPrimitives.Add(dh[..nh], dys.Slice(t * bh, nh), dh[..nh]);
            dgx.Slice((t * batch + n) * GH, (batch - n) * GH).Clear();
            if (Cell.SeparateRecurrentGradient) dgh.Slice((t * batch + n) * GH, (batch - n) * GH).Clear();
            Cell.BackwardStep(new StepBackward
            {
                Rows = n,
                Gates = gates.Slice(t * batch * GH, n * GH),
                HPrev = hs.Slice(t * bh, nh),
                CPrev = Cell.HasCellState ? cs.Slice(t * bh, nh) : default,
                C = Cell.HasCellState ? cs.Slice((t + 1) * bh, nh) : default,
                Cache = cache.Slice(t * batch * E, n * E),
                DH = dh[..nh],
                DC = dc[..nh],
                DGatesX = dgx.Slice(t * batch * GH, n * GH),
                DGatesH = dgh.Slice(t * batch * GH, n * GH),
                DHPrev = dhPrev[..nh],
                DCPrev = dcPrev[..nh],
            });
            Trace?.Record(t, _lengths.AsSpan(0, batch), n, H, dh[..nh], Cell.HasCellState ? dc[..nh] : default, dhPrev[..nh], Cell.HasCellState ? dcPrev[..nh] : default);
            dhPrev[..nh].CopyTo(dh);
            if (Cell.HasCellState) dcPrev[..nh].CopyTo(dc);
        }
        if (!dh0.IsEmpty) dh.CopyTo(dh0);
        if (!dc0.IsEmpty) { if (Cell.HasCellState) dc.CopyTo(dc0); else dc0.Clear(); }

        // Weight gradients of all steps at once; inactive rows hold zero gradients.
        Cell.AccumulateWeightGradients(dgx, dgh, View(_x, tb * I), hs[..(tb * H)], cache, tb);
        if (Cell.SeparateRecurrentGradient)
        {
            SumRows(dgx, tb, GH, Cell.BiasIh.Gradient.Data);
            SumRows(dgh, tb, GH, Cell.BiasHh.Gradient.Data);
        }
        else
        {
            // b_ih and b_hh enter the same pre-activation, so they share one gradient: sum the rows once.
            var sum = _bias.AsSpan(0, GH);
            sum.Clear();
            SumRows(dgx, tb, GH, sum);
            TensorPrimitives.Add(Cell.BiasIh.Gradient.Data, sum, Cell.BiasIh.Gradient.Data);
            TensorPrimitives.Add(Cell.BiasHh.Gradient.Data, sum, Cell.BiasHh.Gradient.Data);
        }

        if (dx.IsEmpty) return;
        var dxs = View(_flip, tb * I);
        Gemm.Multiply(false, false, tb, I, GH, 1f, dgx, GH, Cell.WeightIh.Value.Data, I, 0f, dxs, I);
        if (Reverse)
        {
            // Un-flip into dx: dx[t, b] += dxs[len_b − 1 − t, b].
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < _lengths[b]; s++)
                {
                    var dst = dx.Slice(((_lengths[b] - 1 - s) * batch + b) * I, I);
                    TensorPrimitives.Add(dst, dxs.Slice((s * batch + b) * I, I), dst);
                }
        }
        else TensorPrimitives.Add(dx, dxs, dx);
    }

    static void SumRows(ReadOnlySpan<float> m, int rows, int cols, Span<float> acc)
    {
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(acc, m.Slice(r * cols, cols), acc);
    }

    // dst[s, b] = src[len_b − 1 − s, b] for s < len_b, else 0 (an involution on the valid part).
    void FlipWithin(ReadOnlySpan<float> src, Span<float> dst, int width)
    {
        int batch = _b;
        for (int s = 0; s < _t; s++)
            for (int b = 0; b < batch; b++)
            {
                var d = dst.Slice((s * batch + b) * width, width);
                if (s < _lengths[b]) src.Slice(((_lengths[b] - 1 - s) * batch + b) * width, width).CopyTo(d);
                else d.Clear();
            }
    }

    static void Validate(int xLength, int steps, int batch, ReadOnlySpan<int> lengths, int inputSize)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "A sequence batch needs at least one time step.");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "A sequence batch needs at least one sequence.");
        CheckLength(xLength, steps * batch * inputSize, "x");
        if (lengths.Length != batch) throw new ArgumentException($"Expected {batch} lengths, got {lengths.Length}.", nameof(lengths));
        for (int b = 0; b < batch; b++)
        {
            CheckSequenceLength(lengths[b], b, steps);
            if (b > 0 && lengths[b] > lengths[b - 1])
                throw new ArgumentException("Lengths must be non-increasing; RecurrentNetwork sorts a batch for you.", nameof(lengths));
        }
    }

    /// <summary>Throws unless sequence <paramref name="index"/>'s length is in [1, steps].</summary>
    internal static void CheckSequenceLength(int length, int index, int steps)
    {
        if (length < 1 || length > steps)
            throw new ArgumentOutOfRangeException("lengths", length, $"Sequence {index} has length {length}; lengths must be in [1, {steps}] (empty sequences are not allowed).");
    }

    static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} has {actual} values, expected {expected}.", name);
    }

    static void CheckOptional(int actual, int expected, string name)
    {
        if (actual != 0) CheckLength(actual, expected, name);
    }
}
