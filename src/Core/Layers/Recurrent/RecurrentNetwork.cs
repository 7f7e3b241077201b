using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;
using DeepSeq.Core.Models;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>How a bidirectional layer combines its two directions.</summary>
public enum BidirectionalMerge
{
    /// <summary>[forward; backward], 2H values (PyTorch, Keras default).</summary>
    Concat,
    /// <summary>forward + backward, H values.</summary>
    Sum,
    /// <summary>(forward + backward) / 2, H values.</summary>
    Average,
}

/// <summary>
/// Stacked, optionally bidirectional recurrent layers with dropout between layers, over batches of
/// variable-length sequences in any order. Shapes (time-major): x (T, B, I), y (T, B, <see cref="OutputSize"/>),
/// states (L·D, B, H) with L layers and D directions, ordered as PyTorch's <c>h_n</c>: layer 0 forward,
/// layer 0 reverse, layer 1 forward… Parameters are named <c>layers.{l}.forward.weight_ih</c>,
/// <c>layers.{l}.reverse.weight_hh</c> and so on.
/// </summary>
public sealed class RecurrentNetwork : Module
{
    readonly RecurrentLayer[] _layers;   // (L·D) layer l direction d at l·D + d
    readonly Dropout[] _dropouts;        // (L − 1) between layers
    int[] _order = [];                   // (B) batch rows sorted by non-increasing length
    int[] _sortedLengths = [];
    int[] _tokens = [];                  // (T, B) sorted token ids, for a first layer fed through a ProjectedEmbedding
    int _t, _b;
    int _reservedSteps, _reservedBatch;
    // Per layer: its (sorted) input and merged output; per direction: its output. Sized by Reserve.
    readonly float[][] _inputs, _outputs, _dirOut;
    bool _inOrder; // the rows are sorted by length already: permuting them is a plain copy
    float[] _grad = [], _stateIn = [], _stateOut = [], _stateIn2 = [], _stateOut2 = [];
    float[] _pooledMax = [], _pooledMean = []; // (D, B, H) sorted rows, pooling as it goes
    readonly float[][] _gradIn = [[], []], _dirGrad = [[], []]; // per direction
    readonly Action<int>[] _forwardDirection, _backwardDirection; // (L) per layer, made once: no closure per call
    readonly Action<int> _pooledDirection;
    ForwardCall _fwd; BackwardCall _bwd;                          // what the per-direction delegates read

    /// <summary>Creates the network with zero weights (initialise them, e.g. with <c>Initializers.InitializeRecurrent</c>).</summary>
    public RecurrentNetwork(RecurrentCellSpec cell, int inputSize, int hiddenSize, int layers = 1,
        bool bidirectional = false, BidirectionalMerge merge = BidirectionalMerge.Concat, float dropout = 0f, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        Spec = cell; InputSize = inputSize; HiddenSize = hiddenSize; LayerCount = layers;
        Bidirectional = bidirectional; Merge = merge;
        int d = Directions;
        _layers = new RecurrentLayer[layers * d];
        _dropouts = new Dropout[layers - 1];
        var stack = AddChild("layers", new ModuleList());
        for (int l = 0; l < layers; l++)
        {
            var layer = stack.Add(l.ToString(System.Globalization.CultureInfo.InvariantCulture), new ModuleList());
            for (int k = 0; k < d; k++)
                _layers[l * d + k] = new RecurrentLayer(layer.Add(k == 0 ? "forward" : "reverse", cell.Create(l == 0 ? inputSize : OutputSize, hiddenSize)), reverse: k == 1);
            if (l < layers - 1) _dropouts[l] = layer.Add("dropout", new Dropout(dropout, seed + l));
        }
        _inputs = new float[layers][]; _outputs = new float[layers][]; _dirOut = new float[layers * d][];
        _forwardDirection = new Action<int>[layers]; _backwardDirection = new Action<int>[layers];
        for (int l = 0; l < layers; l++)
        {
            int layer = l;
            _forwardDirection[l] = k => ForwardDirection(layer, k);
            _backwardDirection[l] = k => BackwardDirection(layer, k);
        }
        _pooledDirection = PooledDirection;
    }

    /// <summary>The cell description.</summary>
    public RecurrentCellSpec Spec { get; }
    /// <summary>Input features (I).</summary>
    public int InputSize { get; }
    /// <summary>Hidden units per direction (H).</summary>
    public int HiddenSize { get; }
    /// <summary>Stacked layers (L).</summary>
    public int LayerCount { get; }
    /// <summary>True when each layer reads both directions.</summary>
    public bool Bidirectional { get; }
    /// <summary>How directions combine.</summary>
    public BidirectionalMerge Merge { get; }
    /// <summary>Directions (D): 1 or 2.</summary>
    public int Directions => Bidirectional ? 2 : 1;
    /// <summary>Features per output step: 2H for concatenated directions, H otherwise.</summary>
    public int OutputSize => Bidirectional && Merge == BidirectionalMerge.Concat ? 2 * HiddenSize : HiddenSize;
    /// <summary>Values of one state tensor: L·D·B·H for batch B.</summary>
    public int StateLength(int batch) => LayerCount * Directions * batch * HiddenSize;
    /// <summary>
    /// PyTorch's <c>nn.RNN/LSTM/GRU</c> state-dict name of a parameter of this network:
    /// <c>layers.1.reverse.weight_hh</c> → <c>weight_hh_l1_reverse</c> (peepholes keep their DeepSeq names).
    /// The values are laid out as PyTorch's, so a state dict converts one to one.
    /// </summary>
    public static string TorchName(string name)
    {
        var parts = name.Split('.');
        if (parts.Length != 4 || parts[0] != "layers" || parts[2] is not ("forward" or "reverse"))
            throw new ArgumentException($"'{name}' is not a parameter name of a recurrent network (layers.L.forward|reverse.NAME).", nameof(name));
        return $"{parts[3]}_l{parts[1]}" + (parts[2] == "reverse" ? "_reverse" : "");
    }

    /// <summary>The layers, layer l direction d at l·D + d (the gradient-flow probe attaches to them).</summary>
    internal IReadOnlyList<RecurrentLayer> Layers => _layers;

    /// <summary>The cells, layer by layer, forward direction first.</summary>
    public IReadOnlyList<RecurrentCell> Cells => [.. _layers.Select(l => l.Cell)];

    /// <summary>
    /// Sizes every buffer of the network and its layers for batches of up to <paramref name="steps"/> ×
    /// <paramref name="batch"/>, so that such batches run forward and backward without allocating.
    /// <see cref="Forward"/> reserves a larger shape when one arrives.
    /// </summary>
    public void Reserve(int steps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && batch == _reservedBatch) return;
        int d = Directions, O = OutputSize, tb = steps * batch, sl = StateLength(batch), widest = Math.Max(InputSize, O);
        for (int l = 0; l < LayerCount; l++)
        {
            _inputs[l] = new float[tb * (l == 0 ? InputSize : O)];  // (T, B, I or O) sorted rows
            _outputs[l] = new float[tb * O];                         // (T, B, O) merged directions
            // One direction writes straight into the layer's output: nothing to merge.
            for (int k = 0; k < d; k++) { _dirOut[l * d + k] = d == 2 ? new float[tb * HiddenSize] : []; _layers[l * d + k].Reserve(steps, batch); }
        }
        _grad = new float[tb * widest];
        for (int k = 0; k < d; k++) { _dirGrad[k] = new float[tb * HiddenSize]; _gradIn[k] = new float[tb * widest]; }
        _stateIn = new float[sl]; _stateIn2 = new float[sl]; _stateOut = new float[sl]; _stateOut2 = new float[sl];
        _pooledMax = new float[d * batch * HiddenSize]; _pooledMean = new float[d * batch * HiddenSize];
        _order = new int[batch]; _sortedLengths = new int[batch]; _tokens = new int[tb];
        _reservedSteps = steps; _reservedBatch = batch;
    }

    /// <summary>
    /// Forward pass over sequences of the given <paramref name="lengths"/> (any order, each in [1, T]).
    /// Initial states may be empty (zeros); final-state outputs may be empty (not wanted). Outputs past a
    /// sequence's length are zero. <paramref name="training"/> turns dropout between layers on.
    /// </summary>
    public void Forward(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<float> x, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        ReadOnlySpan<int> lengths, int steps, int batch, bool training)
    {
        if (x.Length != steps * batch * InputSize) throw new ArgumentException($"x has {x.Length} values, expected T·B·I = {steps}·{batch}·{InputSize}.", nameof(x));
        Run(y, hT, cT, x, default, null, h0, c0, lengths, steps, batch, training);
    }

    /// <summary>
    /// Inference forward of a token model whose first layer's input projections are looked up per token id
    /// (<paramref name="tokens"/>, (T, B)) in <paramref name="table"/>; otherwise as <see cref="Forward"/>
    /// with zero initial states and no dropout. Keeps nothing for <see cref="Backward"/>.
    /// </summary>
    internal void ForwardProjected(Span<float> y, Span<float> hT, ReadOnlySpan<int> tokens, ProjectedEmbedding table, ReadOnlySpan<int> lengths, int steps, int batch)
    {
        CheckTable(tokens, table, steps, batch);
        Run(y, hT, default, default, tokens, table, default, default, lengths, steps, batch, training: false);
    }

    /// <summary>
    /// True when <see cref="ForwardProjectedPooled"/> serves <paramref name="kind"/>: Max, Mean or MaxMean over one
    /// layer whose directions are concatenated (pooling each direction alone is then pooling their outputs).
    /// </summary>
    internal bool PoolsAsItGoes(PoolingKind kind) =>
        kind is PoolingKind.Max or PoolingKind.Mean or PoolingKind.MaxMean && LayerCount == 1 && (!Bidirectional || Merge == BidirectionalMerge.Concat);

    /// <summary>
    /// <see cref="ForwardProjected"/> followed by <see cref="SequencePooling"/> of <paramref name="kind"/>, without the
    /// (T, B, O) outputs: each direction pools its h step by step (<see cref="PoolsAsItGoes"/> must hold). Writes
    /// <paramref name="pooled"/> (B, O, or 2·O for MaxMean, laid out as SequencePooling's output). The means add the
    /// reverse direction's steps in the order it runs them, so they can differ from SequencePooling's in the last bits.
    /// </summary>
    internal void ForwardProjectedPooled(Span<float> pooled, PoolingKind kind, ReadOnlySpan<int> tokens, ProjectedEmbedding table, ReadOnlySpan<int> lengths, int steps, int batch)
    {
        if (!PoolsAsItGoes(kind)) throw new ArgumentException($"{kind} pooling of this network ({LayerCount} layers, {Merge}) cannot be taken step by step.", nameof(kind));
        CheckTable(tokens, table, steps, batch);
        int H = HiddenSize, O = OutputSize, width = kind == PoolingKind.MaxMean ? 2 * O : O, bh = batch * H;
        if (pooled.Length != batch * width) throw new ArgumentException($"pooled has {pooled.Length} values, expected B·{width} = {batch * width}.", nameof(pooled));
        Begin(lengths, steps, batch);
        PermuteRows(tokens, _tokens.AsSpan(0, steps * batch), 1, toSorted: true);
        _fwd = new ForwardCall(true, true, table, kind);
        ForEachDirection(_pooledDirection);
        // Sorted rows back to the caller's order: [max | mean] of [forward | reverse] units.
        for (int k = 0; k < Directions; k++)
            for (int row = 0; row < batch; row++)
            {
                var to = pooled.Slice(_order[row] * width + k * H);
                if (kind != PoolingKind.Mean) _pooledMax.AsSpan(k * bh + row * H, H).CopyTo(to);
                if (kind != PoolingKind.Max) _pooledMean.AsSpan(k * bh + row * H, H).CopyTo(to[(kind == PoolingKind.MaxMean ? O : 0)..]);
            }
    }

    void PooledDirection(int k)
    {
        int bh = _b * HiddenSize;
        var kind = _fwd.Pooling!.Value;
        _layers[k].ForwardProjectedPooled(kind == PoolingKind.Mean ? default : _pooledMax.AsSpan(k * bh, bh),
            kind == PoolingKind.Max ? default : _pooledMean.AsSpan(k * bh, bh),
            _tokens.AsSpan(0, _t * _b), _fwd.Table!.Table(k), _sortedLengths.AsSpan(0, _b), _t, _b);
    }

    void CheckTable(ReadOnlySpan<int> tokens, ProjectedEmbedding table, int steps, int batch)
    {
        if (tokens.Length != steps * batch) throw new ArgumentException($"tokens has {tokens.Length} ids, expected T·B = {steps}·{batch}.", nameof(tokens));
        if (table.Directions != Directions || table.Width != _layers[0].Cell.GateCount * HiddenSize)
            throw new ArgumentException($"The table holds {table.Directions} × {table.Width} values per word; this network's first layer needs {Directions} × {_layers[0].Cell.GateCount * HiddenSize}.", nameof(table));
    }

    // The forward of both entries: the first layer reads x, or token ids through a table.
    void Run(Span<float> y, Span<float> hT, Span<float> cT, ReadOnlySpan<float> x, ReadOnlySpan<int> tokens, ProjectedEmbedding? table,
        ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, ReadOnlySpan<int> lengths, int steps, int batch, bool training)
    {
        if (y.Length != steps * batch * OutputSize) throw new ArgumentException($"y has {y.Length} values, expected T·B·O = {steps}·{batch}·{OutputSize}.", nameof(y));
        int sl = StateLength(batch);
        CheckState(h0.Length, sl, "h0"); CheckState(c0.Length, sl, "c0"); CheckState(hT.Length, sl, "hT"); CheckState(cT.Length, sl, "cT");
        Begin(lengths, steps, batch);

        int O = OutputSize, tbo = steps * batch * O;
        SortStates(h0, _stateIn);
        SortStates(c0, _stateIn2);
        if (table is null) PermuteRows(x, _inputs[0].AsSpan(0, steps * batch * InputSize), InputSize, toSorted: true);
        else PermuteRows(tokens, _tokens.AsSpan(0, steps * batch), 1, toSorted: true);
        _fwd = new ForwardCall(h0.IsEmpty, c0.IsEmpty, table);
        // Rows in the caller's order: the top layer writes straight into y (one direction) or its two directions merge
        // there; otherwise its output is permuted into y.
        for (int l = 0; l < LayerCount; l++)
        {
            bool intoY = _inOrder && l + 1 == LayerCount;
            var merged = intoY ? y[..tbo] : _outputs[l].AsSpan(0, tbo);
            if (Bidirectional)
            {
                ForEachDirection(_forwardDirection[l]);
                MergeForward(l, merged);
            }
            else ForwardDirection(l, 0, merged);
            if (l + 1 < LayerCount) _dropouts[l].Forward(_inputs[l + 1].AsSpan(0, tbo), merged, training);
        }
        if (!_inOrder) PermuteRows<float>(_outputs[LayerCount - 1].AsSpan(0, tbo), y, O, toSorted: false);
        if (!hT.IsEmpty) PermuteStates(_stateOut.AsSpan(0, sl), hT, toSorted: false);
        if (!cT.IsEmpty) PermuteStates(_stateOut2.AsSpan(0, sl), cT, toSorted: false);
    }

    // What both forwards share first: the lengths' count, the buffers, the shape, and the rows sorted by length.
    void Begin(ReadOnlySpan<int> lengths, int steps, int batch)
    {
        if (lengths.Length != batch) throw new ArgumentException($"Expected {batch} lengths, got {lengths.Length}.", nameof(lengths));
        Reserve(steps, batch);
        _t = steps; _b = batch;
        SortByLength(lengths);
    }

    // Pooling: what a forward that pools as it goes pools (ForwardProjectedPooled); null for the others.
    readonly record struct ForwardCall(bool NoH0, bool NoC0, ProjectedEmbedding? Table, PoolingKind? Pooling = null);
    readonly record struct BackwardCall(bool NeedInput, bool NoDh, bool NoDc);

    // Direction k of layer l over the sorted batch: input _inputs[l], output _dirOut[l·2 + k] for two directions (one
    // direction writes the layer's output, or the caller's y for the top layer over rows in order), final states into
    // _stateOut.
    void ForwardDirection(int l, int k) => ForwardDirection(l, k, _dirOut[l * 2 + k].AsSpan(0, _t * _b * HiddenSize));

    void ForwardDirection(int l, int k, Span<float> output)
    {
        int d = Directions, s = l * d + k, steps = _t, batch = _b, bh = batch * HiddenSize;
        int inSize = l == 0 ? InputSize : OutputSize;
        var hOut = _stateOut.AsSpan(s * bh, bh);
        var cOut = _layers[s].Cell.HasCellState ? _stateOut2.AsSpan(s * bh, bh) : default;
        if (l == 0 && _fwd.Table is { } table)
        {
            _layers[s].ForwardProjected(output, hOut, cOut, _tokens.AsSpan(0, steps * batch), table.Table(k),
                default, default, _sortedLengths.AsSpan(0, batch), steps, batch);
            return;
        }
        _layers[s].Forward(output, hOut, cOut,
            _inputs[l].AsSpan(0, steps * batch * inSize), Slice(_stateIn, _fwd.NoH0, s, bh), Slice(_stateIn2, _fwd.NoC0, s, bh),
            _sortedLengths.AsSpan(0, batch), steps, batch);
    }

    /// <summary>
    /// Backward pass for the last <see cref="Forward"/>: adds every parameter gradient, adds dL/dx into
    /// <paramref name="dx"/> (skipped when empty) and writes dL/dh0, dL/dc0 (when not empty).
    /// </summary>
    public void Backward(Span<float> dx, Span<float> dh0, Span<float> dc0, ReadOnlySpan<float> dy, ReadOnlySpan<float> dhT, ReadOnlySpan<float> dcT)
    {
        if (_t == 0) throw new InvalidOperationException("Backward called before Forward.");
        if (_fwd.Table is not null) throw new InvalidOperationException("The last forward looked its input projections up in a table (inference only); train from a forward over x.");
        int steps = _t, batch = _b, d = Directions, O = OutputSize, sl = StateLength(batch), tb = steps * batch;
        SortStates(dhT, _stateIn);
        SortStates(dcT, _stateIn2);
        var grad = _grad.AsSpan(0, tb * O);
        PermuteRows(dy, grad, O, toSorted: true);
        for (int l = LayerCount - 1; l >= 0; l--)
        {
            int n = tb * (l == 0 ? InputSize : O);
            bool needInput = l > 0 || !dx.IsEmpty;
            for (int k = 0; k < d; k++)
            {
                MergeBackward(grad, _dirGrad[k].AsSpan(0, tb * HiddenSize), k);
                if (needInput) _gradIn[k].AsSpan(0, n).Clear();
            }
            // Each direction adds into its own input gradient, so the two can run at once; then they are summed.
            _bwd = new BackwardCall(needInput, dhT.IsEmpty, dcT.IsEmpty);
            ForEachDirection(_backwardDirection[l]);
            var gradIn = needInput ? _gradIn[0].AsSpan(0, n) : default;
            if (needInput && d == 2) TensorPrimitives.Add(gradIn, _gradIn[1].AsSpan(0, n), gradIn);
            if (l > 0)
            {
                // Through the dropout between layer l − 1 and l; its output gradient becomes the next grad.
                grad = _grad.AsSpan(0, tb * O);
                grad.Clear();
                _dropouts[l - 1].Backward(grad, gradIn);
            }
            else if (!dx.IsEmpty)
            {
                var unsorted = _grad.AsSpan(0, gradIn.Length); // grad is spent
                PermuteRows(gradIn, unsorted, InputSize, toSorted: false);
                TensorPrimitives.Add(dx, unsorted, dx);
            }
        }
        if (!dh0.IsEmpty) PermuteStates(_stateOut.AsSpan(0, sl), dh0, toSorted: false);
        if (!dc0.IsEmpty) PermuteStates(_stateOut2.AsSpan(0, sl), dc0, toSorted: false);
    }

    // Backward of direction k of layer l: output gradient _dirGrad[k], input gradient into _gradIn[k], dh0/dc0 into _stateOut.
    void BackwardDirection(int l, int k)
    {
        int s = l * Directions + k, steps = _t, batch = _b, bh = batch * HiddenSize;
        int n = steps * batch * (l == 0 ? InputSize : OutputSize);
        _layers[s].Backward(_bwd.NeedInput ? _gradIn[k].AsSpan(0, n) : default, _stateOut.AsSpan(s * bh, bh), _stateOut2.AsSpan(s * bh, bh),
            _dirGrad[k].AsSpan(0, steps * bh), Slice(_stateIn, _bwd.NoDh, s, bh), Slice(_stateIn2, _bwd.NoDc, s, bh));
    }

    static void CheckState(int length, int expected, string name)
    {
        if (length != 0 && length != expected) throw new ArgumentException($"{name} has {length} values, expected L·D·B·H = {expected}.", name);
    }

    void MergeForward(int l, Span<float> merged)
    {
        int H = HiddenSize, rows = _t * _b;
        var fwd = _dirOut[l * Directions].AsSpan(0, rows * H);
        var rev = Bidirectional ? _dirOut[l * 2 + 1].AsSpan(0, rows * H) : default;
        MergeDirections(fwd, rev, merged, rows);
    }

    // Gradient of direction k's output from the gradient of the merged output.
    void MergeBackward(ReadOnlySpan<float> grad, Span<float> dk, int k) => SplitDirection(grad, dk, k, _t * _b);

    /// <summary>
    /// Combines per-direction rows (rows, H) — outputs or final states — as <see cref="Merge"/> says into
    /// (rows, <see cref="OutputSize"/>); <paramref name="reverse"/> is empty for one direction.
    /// </summary>
    internal unsafe void MergeDirections(ReadOnlySpan<float> forward, ReadOnlySpan<float> reverse, Span<float> merged, int rows)
    {
        int H = HiddenSize;
        if (!Bidirectional) { forward[..(rows * H)].CopyTo(merged); return; }
        if (Merge == BidirectionalMerge.Concat)
            fixed (float* f = forward[..(rows * H)], r = reverse[..(rows * H)], m = merged[..(rows * 2 * H)]) // the slices check the lengths
                ParallelRange.Run(rows * 2 * H, 2 * H, new Concat(f, r, m, H));
        else
        {
            var m = merged[..(rows * H)];
            TensorPrimitives.Add(forward[..(rows * H)], reverse[..(rows * H)], m);
            if (Merge == BidirectionalMerge.Average) TensorPrimitives.Multiply(m, 0.5f, m);
        }
    }

    // Rows side by side: [forward row, reverse row] per merged row, over a range of whole merged rows.
    readonly unsafe struct Concat(float* forward, float* reverse, float* merged, int h) : IRangeWork
    {
        public void Run(int start, int length)
        {
            for (int row = start / (2 * h), end = (start + length) / (2 * h); row < end; row++)
            {
                new ReadOnlySpan<float>(forward + (long)row * h, h).CopyTo(new Span<float>(merged + (long)row * 2 * h, h));
                new ReadOnlySpan<float>(reverse + (long)row * h, h).CopyTo(new Span<float>(merged + (long)row * 2 * h + h, h));
            }
        }
    }

    /// <summary>The gradient of direction <paramref name="k"/>'s rows (rows, H) from that of the merged rows.</summary>
    internal void SplitDirection(ReadOnlySpan<float> mergedGrad, Span<float> grad, int k, int rows)
    {
        int H = HiddenSize;
        if (!Bidirectional || Merge == BidirectionalMerge.Sum) mergedGrad[..(rows * H)].CopyTo(grad);
        else if (Merge == BidirectionalMerge.Average) TensorPrimitives.Multiply(mergedGrad[..(rows * H)], 0.5f, grad[..(rows * H)]);
        else for (int r = 0; r < rows; r++) mergedGrad.Slice(r * 2 * H + k * H, H).CopyTo(grad.Slice(r * H, H));
    }

    void SortByLength(ReadOnlySpan<int> lengths)
    {
        for (int i = 0; i < lengths.Length; i++) RecurrentLayer.CheckSequenceLength(lengths[i], i, _t); // caller's index, before sorting
        // Stable insertion sort by non-increasing length: equal lengths keep their order, and batches are
        // usually sorted already (bucketed by length), which makes it linear.
        for (int i = 0; i < lengths.Length; i++)
        {
            int row = i, len = lengths[i], k = i;
            for (; k > 0 && _sortedLengths[k - 1] < len; k--) { _order[k] = _order[k - 1]; _sortedLengths[k] = _sortedLengths[k - 1]; }
            _order[k] = row; _sortedLengths[k] = len;
        }
        _inOrder = true;
        for (int k = 0; k < lengths.Length; k++) _inOrder &= _order[k] == k;
    }

    // Moves batch rows of a (T, B, width) tensor between the caller's order and the sorted order.
    void PermuteRows<T>(ReadOnlySpan<T> src, Span<T> dst, int width, bool toSorted) where T : unmanaged
    {
        if (_inOrder) { ParallelRange.Copy(src[..(_t * _b * width)], dst); return; }
        for (int t = 0; t < _t; t++)
            for (int k = 0; k < _b; k++)
            {
                int from = toSorted ? _order[k] : k, to = toSorted ? k : _order[k];
                src.Slice((t * _b + from) * width, width).CopyTo(dst.Slice((t * _b + to) * width, width));
            }
    }

    void PermuteStates(ReadOnlySpan<float> src, Span<float> dst, bool toSorted)
    {
        int bh = _b * HiddenSize;
        for (int s = 0; s < LayerCount * Directions; s++)
            for (int k = 0; k < _b; k++)
            {
                int from = toSorted ? _order[k] : k, to = toSorted ? k : _order[k];
                src.Slice(s * bh + from * HiddenSize, HiddenSize).CopyTo(dst.Slice(s * bh + to * HiddenSize, HiddenSize));
            }
    }

    void SortStates(ReadOnlySpan<float> states, float[] buffer)
    {
        if (!states.IsEmpty) PermuteStates(states, buffer.AsSpan(0, states.Length), toSorted: true);
    }

    static ReadOnlySpan<float> Slice(float[] states, bool absent, int s, int bh) => absent ? default : states.AsSpan(s * bh, bh);

    // The two directions of a layer are independent: on a multi-core machine they run side by side, each with
    // its multiplies on its own thread, instead of sharing every small per-step multiply between cores.
    void ForEachDirection(Action<int> run)
    {
        WorkerPool.Run(Directions, new Direction(run)); // one thread: in order; two: side by side, each part's multiplies on its thread
    }

    readonly struct Direction(Action<int> run) : IPoolWork
    {
        public void Run(int part) => run(part);
    }
}
