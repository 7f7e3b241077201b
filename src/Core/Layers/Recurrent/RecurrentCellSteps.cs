using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>
/// Runs a <see cref="RecurrentCell"/> one time step at a time, for models whose next input depends on the last
/// output (a decoder with input feeding or attention), keeping every step for backward.
/// Shapes (time-major): x (T, B, I), states (B, H); all B rows take part in every step.
/// </summary>
/// <remarks>
/// <see cref="RecurrentLayer"/> runs a whole sequence whose inputs are known in advance; this is its
/// step-by-step counterpart over the same cell equations (<c>ForwardStep</c>/<c>BackwardStep</c>). The weight
/// gradients of all steps are still formed in one GEMM each, at <see cref="EndBackward"/>.
/// For inference, run step 0 again and again and read the state back with <see cref="H"/>/<see cref="C"/>.
/// </remarks>
public sealed class RecurrentCellSteps
{
    float[] _x = [];       // (T, B, I) the inputs of each step
    float[] _gates = [];   // (T, B, G·H) gate values kept for backward
    float[] _hs = [];      // (T + 1, B, H) h_{−1} = h0, then h_t
    float[] _cs = [];      // (T + 1, B, H) c, cells with a cell state only
    float[] _cache = [];   // (T, B, CacheWidth)
    float[] _bias = [];    // (G·H) b_ih (+ b_hh)
    float[] _biasSum = []; // (G·H) backward: the bias gradient shared by b_ih and b_hh
    float[] _dgx = [], _dgh = []; // (T, B, G·H) pre-activation gradients; _dgh only when they differ (GRU)
    float[] _dh = [], _dc = [], _dhPrev = [], _dcPrev = []; // (B, H) backward carries
    int _reservedSteps, _reservedBatch, _batch, _steps;

    /// <summary>Steps <paramref name="cell"/>.</summary>
    public RecurrentCellSteps(RecurrentCell cell) => Cell = cell ?? throw new ArgumentNullException(nameof(cell));

    /// <summary>The cell.</summary>
    public RecurrentCell Cell { get; }

    /// <summary>Sizes the buffers for up to <paramref name="steps"/> steps of <paramref name="batch"/> rows.</summary>
    public void Reserve(int steps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && batch == _reservedBatch) return;
        int I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, tb = steps * batch, bh = batch * H;
        _x = new float[tb * I];
        _gates = new float[tb * GH];
        _hs = new float[tb * H + bh];
        _cs = Cell.HasCellState ? new float[tb * H + bh] : [];
        _cache = new float[Math.Max(tb * Cell.CacheWidth, 1)];
        _bias = new float[GH]; _biasSum = new float[GH];
        _dgx = new float[tb * GH];
        _dgh = Cell.SeparateRecurrentGradient ? new float[tb * GH] : [];
        _dh = new float[bh]; _dc = new float[bh]; _dhPrev = new float[bh]; _dcPrev = new float[bh];
        Cell.Reserve(batch);
        _reservedSteps = steps; _reservedBatch = batch;
    }

    /// <summary>
    /// Starts a sequence of <paramref name="batch"/> rows from <paramref name="h0"/> and <paramref name="c0"/>
    /// (B, H each; empty: zeros). Packs the weights if they moved.
    /// </summary>
    public void Begin(ReadOnlySpan<float> h0, ReadOnlySpan<float> c0, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        int H = Cell.HiddenSize, GH = Cell.GateCount * H, bh = batch * H;
        if (!h0.IsEmpty && h0.Length != bh) throw new ArgumentException($"h0 has {h0.Length} values, expected B·H = {bh}.", nameof(h0));
        if (!c0.IsEmpty && c0.Length != bh) throw new ArgumentException($"c0 has {c0.Length} values, expected B·H = {bh}.", nameof(c0));
        Reserve(1, batch);
        _batch = batch; _steps = 0;
        RecurrentLayer.Initial(_hs.AsSpan(0, bh), h0);
        if (Cell.HasCellState) RecurrentLayer.Initial(_cs.AsSpan(0, bh), c0);
        Cell.InputT.PackIfChanged(true, Cell.WeightIh.Value.Data, Cell.InputSize, Cell.WeightIh.Version);
        Cell.PackForForward();
        var bias = _bias.AsSpan(0, GH);
        Cell.InputBias(bias);
    }

    /// <summary>
    /// Step <paramref name="t"/> (0, 1, … in order; or 0 again and again for inference): h_t, c_t from
    /// <paramref name="x"/> (B, I) and the state after step t − 1.
    /// </summary>
    public void Step(ReadOnlySpan<float> x, int t)
    {
        int B = _batch, I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, E = Cell.CacheWidth, bh = B * H;
        if (B == 0) throw new InvalidOperationException("Call Begin before Step.");
        if (t < 0 || t > _steps) throw new ArgumentOutOfRangeException(nameof(t), t, $"Steps run in order; the next is {_steps}.");
        if (x.Length != B * I) throw new ArgumentException($"x has {x.Length} values, expected B·I = {B * I}.", nameof(x));
        if (t >= _reservedSteps)
        {
            // Grow, keeping what the earlier steps stored.
            var (xs, gates, hs, cs, cache, bias0) = (_x, _gates, _hs, _cs, _cache, _bias);
            int reservedBatch = _reservedBatch;
            Reserve(Math.Max(t + 1, 2 * _reservedSteps), reservedBatch);
            xs.CopyTo(_x, 0); gates.CopyTo(_gates, 0); hs.CopyTo(_hs, 0); cs.CopyTo(_cs, 0); cache.CopyTo(_cache, 0); bias0.CopyTo(_bias, 0);
        }
        var xt = _x.AsSpan(t * B * I, B * I);
        x.CopyTo(xt);
        var g = _gates.AsSpan(t * B * GH, B * GH);
        Gemm.MultiplyAddRow(B, xt, I, Cell.InputT, _bias.AsSpan(0, GH), g, GH); // a = x·W_ihᵀ + b
        Cell.ForwardStep(new StepForward
        {
            Rows = B,
            Gates = g,
            HPrev = _hs.AsSpan(t * bh, bh),
            CPrev = Cell.HasCellState ? _cs.AsSpan(t * bh, bh) : default,
            H = _hs.AsSpan((t + 1) * bh, bh),
            C = Cell.HasCellState ? _cs.AsSpan((t + 1) * bh, bh) : default,
            Cache = _cache.AsSpan(t * B * E, B * E),
        });
        _steps = t + 1;
    }

    /// <summary>h_t (B, H) after step <paramref name="t"/>; t = −1 gives h0.</summary>
    public Span<float> H(int t) => _hs.AsSpan((t + 1) * _batch * Cell.HiddenSize, _batch * Cell.HiddenSize);

    /// <summary>c_t (B, H) after step <paramref name="t"/> (empty for cells without a cell state); t = −1 gives c0.</summary>
    public Span<float> C(int t) => Cell.HasCellState ? _cs.AsSpan((t + 1) * _batch * Cell.HiddenSize, _batch * Cell.HiddenSize) : default;

    /// <summary>Starts backward over the steps run since <see cref="Begin"/>: the state gradients after the last step are zero.</summary>
    public void BeginBackward()
    {
        if (_steps == 0) throw new InvalidOperationException("Backward called before any step.");
        _dh.AsSpan(0, _batch * Cell.HiddenSize).Clear();
        _dc.AsSpan(0, _batch * Cell.HiddenSize).Clear();
    }

    /// <summary>
    /// Backward of step <paramref name="t"/> (last step first): writes dL/dx_t into <paramref name="dx"/> (B, I;
    /// overwritten) given <paramref name="dh"/>, the gradient of h_t from outside the recurrence.
    /// </summary>
    public void BackwardStep(Span<float> dx, ReadOnlySpan<float> dh, int t)
    {
        int B = _batch, I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, E = Cell.CacheWidth, bh = B * H;
        if (dx.Length != B * I) throw new ArgumentException($"dx has {dx.Length} values, expected B·I = {B * I}.", nameof(dx));
        var dhT = _dh.AsSpan(0, bh);
        TensorPrimitives.Add(dhT, dh, dhT);
        var dgx = _dgx.AsSpan(t * B * GH, B * GH);
        var dgh = Cell.SeparateRecurrentGradient ? _dgh.AsSpan(t * B * GH, B * GH) : dgx;
        Cell.PackForBackward();
        Cell.BackwardStep(new StepBackward
        {
            Rows = B,
            Gates = _gates.AsSpan(t * B * GH, B * GH),
            HPrev = _hs.AsSpan(t * bh, bh),
            CPrev = Cell.HasCellState ? _cs.AsSpan(t * bh, bh) : default,
            C = Cell.HasCellState ? _cs.AsSpan((t + 1) * bh, bh) : default,
            Cache = _cache.AsSpan(t * B * E, B * E),
            DH = dhT,
            DC = _dc.AsSpan(0, bh),
            DGatesX = dgx,
            DGatesH = dgh,
            DHPrev = _dhPrev.AsSpan(0, bh),
            DCPrev = _dcPrev.AsSpan(0, bh),
        });
        _dhPrev.AsSpan(0, bh).CopyTo(dhT);
        if (Cell.HasCellState) _dcPrev.AsSpan(0, bh).CopyTo(_dc);
        Gemm.Multiply(false, false, B, I, GH, 1f, dgx, GH, Cell.WeightIh.Value.Data, I, 0f, dx, I); // dx = da·W_ih
    }

    /// <summary>
    /// Ends backward: writes dL/dh0 and dL/dc0 (when not empty) and adds the weight and bias gradients of every
    /// step (<see cref="RecurrentCell.AccumulateWeightGradients"/>).
    /// </summary>
    public void EndBackward(Span<float> dh0, Span<float> dc0)
    {
        int B = _batch, I = Cell.InputSize, H = Cell.HiddenSize, GH = Cell.GateCount * H, rows = _steps * B;
        if (!dh0.IsEmpty) _dh.AsSpan(0, B * H).CopyTo(dh0);
        if (!dc0.IsEmpty) { if (Cell.HasCellState) _dc.AsSpan(0, B * H).CopyTo(dc0); else dc0.Clear(); }
        var dgx = _dgx.AsSpan(0, rows * GH);
        var dgh = Cell.SeparateRecurrentGradient ? _dgh.AsSpan(0, rows * GH) : dgx;
        Cell.AccumulateWeightGradients(dgx, dgh, _x.AsSpan(0, rows * I), _hs.AsSpan(0, rows * H), _cache.AsSpan(0, rows * Cell.CacheWidth), rows);
        var sum = _biasSum.AsSpan(0, GH);
        if (Cell.SeparateRecurrentGradient)
        {
            SumRows(dgx, rows, GH, Cell.BiasIh.Gradient.Data);
            SumRows(dgh, rows, GH, Cell.BiasHh.Gradient.Data);
        }
        else
        {
            // b_ih and b_hh enter the same pre-activation: one row sum serves both.
            sum.Clear();
            SumRows(dgx, rows, GH, sum);
            TensorPrimitives.Add(Cell.BiasIh.Gradient.Data, sum, Cell.BiasIh.Gradient.Data);
            TensorPrimitives.Add(Cell.BiasHh.Gradient.Data, sum, Cell.BiasHh.Gradient.Data);
        }
    }

    static void SumRows(ReadOnlySpan<float> m, int rows, int cols, Span<float> acc)
    {
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(acc, m.Slice(r * cols, cols), acc);
    }
}
