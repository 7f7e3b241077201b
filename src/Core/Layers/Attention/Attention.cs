using System.Numerics.Tensors;
using DeepSeq.Core.Kernels;

namespace DeepSeq.Core.Layers;

/// <summary>How an <see cref="Attention"/> layer scores a memory position against the query.</summary>
public enum AttentionKind
{
    /// <summary>No attention: the plain encoder–decoder that passes only the encoder's final state.</summary>
    None,
    /// <summary>e = vᵀ·tanh(W_q·q + W_k·m) (Bahdanau et al. 2015; Luong's "concat").</summary>
    Additive,
    /// <summary>e = qᵀ·m (Luong et al. 2015 "dot"); the query and memory sizes must be equal.</summary>
    Dot,
    /// <summary>e = qᵀ·W·m (Luong et al. 2015 "general").</summary>
    General,
}

/// <summary>
/// Attention of a decoder over the encoder's outputs (the memory), one decoder step at a time, padding masked:
/// <code>
/// k_s = W_k·m_s              (Additive, General; Dot: k_s = m_s)      once per batch, in SetMemory
/// e_s = vᵀ·tanh(W_q·q + k_s)  (Additive)   or   e_s = q·k_s  (Dot, General)
/// α = softmax(e) over s &lt; length (positions past a row's length get weight 0)
/// context = Σ_s α_s·m_s
/// </code>
/// Shape key: T decoder steps, S memory steps, B batch rows, M memory features, Q query features, A attention
/// size, K key features (A for Additive, Q for General, M for Dot). The memory is time-major (S, B, M), as the
/// encoder's outputs.
/// </summary>
public sealed class Attention : Module
{
    readonly Dense? _query;  // W_q (A, Q), Additive
    readonly Dense? _key;    // W_k (A, M) Additive or (Q, M) General
    readonly Parameter? _v;  // v (A), Additive
    float[] _memory = [];    // (S, B, M) the memory, kept for the context and backward
    float[] _keys = [];      // (S, B, K)
    int[] _lengths = [];     // (B)
    float[] _weights = [];   // (T, B, S) α of each step, kept for backward
    float[] _tanh = [];      // (T, B, S, A) tanh(W_q·q + k_s) of each step (Additive), kept for backward
    float[] _u = [], _du = [];     // (B, A) W_q·q and its gradient
    float[] _dKeys = [], _dMemory = []; // (S, B, K), (S, B, M) accumulated over the steps of backward
    float[] _dAlpha = [];    // (S) scratch
    int _reservedSteps, _reservedSource, _reservedBatch, _s, _b;

    /// <summary>Creates the layer with zero weights; <paramref name="attentionSize"/> is used by Additive only.</summary>
    public Attention(AttentionKind kind, int querySize, int memorySize, int attentionSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(querySize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(memorySize, 1);
        Kind = kind; QuerySize = querySize; MemorySize = memorySize;
        switch (kind)
        {
            case AttentionKind.Additive:
                ArgumentOutOfRangeException.ThrowIfLessThan(attentionSize, 1);
                _query = AddChild("query", new Dense(querySize, attentionSize, useBias: false));
                _key = AddChild("key", new Dense(memorySize, attentionSize, useBias: false));
                _v = AddParameter("v", attentionSize);
                KeySize = attentionSize;
                break;
            case AttentionKind.General:
                _key = AddChild("key", new Dense(memorySize, querySize, useBias: false));
                KeySize = querySize;
                break;
            case AttentionKind.Dot:
                if (querySize != memorySize)
                    throw new ArgumentException($"Dot attention needs equal query and memory sizes; they are {querySize} and {memorySize}. Use General or Additive.", nameof(kind));
                KeySize = memorySize;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "An attention layer needs a scoring function: Additive, Dot or General.");
        }
    }

    /// <summary>The scoring function.</summary>
    public AttentionKind Kind { get; }
    /// <summary>Query features (Q).</summary>
    public int QuerySize { get; }
    /// <summary>Memory features (M): the size of the context vector.</summary>
    public int MemorySize { get; }
    /// <summary>Key features (K).</summary>
    public int KeySize { get; }
    /// <summary>W_q (Additive), or null.</summary>
    public Dense? Query => _query;
    /// <summary>W_k (Additive, General), or null.</summary>
    public Dense? Key => _key;
    /// <summary>v (Additive), or null.</summary>
    public Parameter? V => _v;

    /// <summary>Sizes the buffers for <paramref name="steps"/> decoder steps over memories of up to S × B.</summary>
    public void Reserve(int steps, int sourceSteps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); sourceSteps = Math.Max(sourceSteps, _reservedSource); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && sourceSteps == _reservedSource && batch == _reservedBatch) return;
        int sb = sourceSteps * batch, A = _v?.Value.Length ?? 0;
        _memory = new float[sb * MemorySize];
        _keys = new float[sb * KeySize];
        _dKeys = new float[sb * KeySize];
        _dMemory = new float[sb * MemorySize];
        _lengths = new int[batch];
        _weights = new float[steps * batch * sourceSteps];
        _tanh = new float[steps * sb * A];
        _u = new float[batch * A]; _du = new float[batch * A];
        _dAlpha = new float[sourceSteps];
        _reservedSteps = steps; _reservedSource = sourceSteps; _reservedBatch = batch;
    }

    /// <summary>
    /// Sets the memory (S, B, M) with each row's <paramref name="lengths"/> (in [1, S]) and computes its keys.
    /// </summary>
    public void SetMemory(ReadOnlySpan<float> memory, ReadOnlySpan<int> lengths, int sourceSteps, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sourceSteps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        int sb = sourceSteps * batch;
        if (memory.Length != sb * MemorySize) throw new ArgumentException($"memory has {memory.Length} values, expected S·B·M = {sb * MemorySize}.", nameof(memory));
        if (lengths.Length != batch) throw new ArgumentException($"Expected {batch} lengths, got {lengths.Length}.", nameof(lengths));
        for (int b = 0; b < batch; b++)
            if (lengths[b] < 1 || lengths[b] > sourceSteps)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[b], $"Memory row {b} has length {lengths[b]}; lengths must be in [1, {sourceSteps}].");
        Reserve(1, sourceSteps, batch);
        _s = sourceSteps; _b = batch;
        memory.CopyTo(_memory);
        lengths.CopyTo(_lengths);
        var keys = _keys.AsSpan(0, sb * KeySize);
        if (_key is null) memory.CopyTo(keys);
        else _key.Forward(keys, memory, sb);                                  // k = W_k·m, all positions in one GEMM
    }

    /// <summary>The attention weights α (B, S) of step <paramref name="t"/> (zero past each row's length).</summary>
    public ReadOnlySpan<float> Weights(int t) => _weights.AsSpan(t * _b * _s, _b * _s);

    /// <summary>context (B, M) = Σ_s α_s·m_s for <paramref name="query"/> (B, Q); keeps α (and tanh, Additive) as step <paramref name="t"/>.</summary>
    public void Forward(Span<float> context, ReadOnlySpan<float> query, int t)
    {
        int S = _s, B = _b, M = MemorySize, K = KeySize, A = _v?.Value.Length ?? 0;
        if (B == 0) throw new InvalidOperationException("Call SetMemory before Forward.");
        if (context.Length != B * M) throw new ArgumentException($"context has {context.Length} values, expected B·M = {B * M}.", nameof(context));
        if (query.Length != B * QuerySize) throw new ArgumentException($"query has {query.Length} values, expected B·Q = {B * QuerySize}.", nameof(query));
        if (t >= _reservedSteps) GrowSteps(t + 1);
        var u = _u.AsSpan(0, B * A);
        if (_query is not null) _query.Forward(u, query, B);                 // W_q·q
        var keys = _keys.AsSpan(0, S * B * K);
        for (int b = 0; b < B; b++)
        {
            int len = _lengths[b];
            var alpha = _weights.AsSpan((t * B + b) * S, S);
            if (Kind == AttentionKind.Additive)
            {
                unsafe
                {
                    fixed (float* pk = keys, pu = u, pv = _v!.Value.Data, pz = _tanh, pa = alpha)
                        Lanes.Run(new AdditiveScores                                  // e_s = vᵀ·tanh(W_q·q + k_s)
                        {
                            Length = len, Size = A, KeyStride = (long)B * K, Keys = pk + (long)b * K, U = pu + (long)b * A, V = pv,
                            Z = pz + (long)(t * B + b) * S * A, Scores = pa,
                        });
                }
            }
            else
            {
                var q = query.Slice(b * QuerySize, QuerySize);
                for (int s = 0; s < len; s++) alpha[s] = TensorPrimitives.Dot(q, keys.Slice((s * B + b) * K, K)); // e_s = q·k_s
            }
            TensorPrimitives.SoftMax(alpha[..len], alpha[..len]);             // masked: only s < length compete
            alpha[len..].Clear();
            var ctx = context.Slice(b * M, M);
            ctx.Clear();
            for (int s = 0; s < len; s++)
                TensorPrimitives.MultiplyAdd(_memory.AsSpan((s * B + b) * M, M), alpha[s], ctx, ctx);
        }
    }

    /// <summary>
    /// Backward of step <paramref name="t"/>: adds dL/dquery into <paramref name="dQuery"/> (B, Q) and the weight
    /// gradients of W_q and v, and accumulates the memory and key gradients that <see cref="BackwardMemory"/> hands out.
    /// <paramref name="query"/> is the step's query as given to <see cref="Forward"/>.
    /// </summary>
    public void Backward(Span<float> dQuery, ReadOnlySpan<float> dContext, ReadOnlySpan<float> query, int t)
    {
        int S = _s, B = _b, M = MemorySize, K = KeySize, A = _v?.Value.Length ?? 0;
        var keys = _keys.AsSpan(0, S * B * K);
        var dKeys = _dKeys.AsSpan(0, S * B * K);
        var du = _du.AsSpan(0, B * A);
        du.Clear();
        for (int b = 0; b < B; b++)
        {
            int len = _lengths[b];
            var alpha = _weights.AsSpan((t * B + b) * S, S);
            var dctx = dContext.Slice(b * M, M);
            var dAlpha = _dAlpha.AsSpan(0, len);
            for (int s = 0; s < len; s++) dAlpha[s] = TensorPrimitives.Dot(dctx, _memory.AsSpan((s * B + b) * M, M)); // context = Σ α_s m_s
            float g = TensorPrimitives.Dot(alpha[..len], dAlpha);
            for (int s = 0; s < len; s++) dAlpha[s] = alpha[s] * (dAlpha[s] - g);                                      // through the softmax: de_s
            if (Kind == AttentionKind.Additive)
            {
                var dub = du.Slice(b * A, A);
                for (int s = 0; s < len; s++)
                {
                    var z = _tanh.AsSpan(((t * B + b) * S + s) * A, A);
                    TensorPrimitives.MultiplyAdd(z, dAlpha[s], _v!.Gradient.Data, _v.Gradient.Data);                  // dv += de_s·z_s
                    var dk = dKeys.Slice((s * B + b) * K, K);
                    // dz = de_s·v ⊙ (1 − z²), which is both dk_s and a share of d(W_q·q)
                    for (int a = 0; a < A; a++)
                    {
                        float dz = dAlpha[s] * _v.Value.Data[a] * (1f - z[a] * z[a]);
                        dk[a] += dz; dub[a] += dz;
                    }
                }
            }
            else
            {
                var q = query.Slice(b * QuerySize, QuerySize);
                var dq = dQuery.Slice(b * QuerySize, QuerySize);
                for (int s = 0; s < len; s++)
                {
                    TensorPrimitives.MultiplyAdd(keys.Slice((s * B + b) * K, K), dAlpha[s], dq, dq);                  // dq += de_s·k_s
                    var dk = dKeys.Slice((s * B + b) * K, K);
                    TensorPrimitives.MultiplyAdd(q, dAlpha[s], dk, dk);                                                 // dk_s += de_s·q
                }
            }
        }
        if (_query is not null) _query.Backward(dQuery, du, query, B);       // dW_q += duᵀ·q; dq += du·W_q
        var dMemory = _dMemory.AsSpan(0, S * B * M);
        for (int b = 0; b < B; b++)
        {
            var dctx = dContext.Slice(b * M, M);
            var alpha = _weights.AsSpan((t * B + b) * S, S);
            for (int s = 0; s < _lengths[b]; s++)
            {
                var dm = dMemory.Slice((s * B + b) * M, M);
                TensorPrimitives.MultiplyAdd(dctx, alpha[s], dm, dm);                                                   // dm_s += α_s·dcontext
            }
        }
    }

    /// <summary>
    /// Starts backward over the decoder steps (last step first): the memory and key gradients that
    /// <see cref="Backward"/> accumulates start at zero.
    /// </summary>
    public void BeginBackward()
    {
        _dKeys.AsSpan(0, _s * _b * KeySize).Clear();
        _dMemory.AsSpan(0, _s * _b * MemorySize).Clear();
    }

    /// <summary>
    /// Ends backward: adds dL/dmemory (S, B, M) — through the contexts and through the keys — into
    /// <paramref name="dMemory"/>, and the gradient of W_k.
    /// </summary>
    public void BackwardMemory(Span<float> dMemory)
    {
        int sb = _s * _b, M = MemorySize, K = KeySize;
        if (dMemory.Length != sb * M) throw new ArgumentException($"dMemory has {dMemory.Length} values, expected S·B·M = {sb * M}.", nameof(dMemory));
        TensorPrimitives.Add(dMemory, _dMemory.AsSpan(0, sb * M), dMemory);
        var dKeys = _dKeys.AsSpan(0, sb * K);
        if (_key is null) TensorPrimitives.Add(dMemory, dKeys, dMemory);      // Dot: k = m
        else _key.Backward(dMemory, dKeys, _memory.AsSpan(0, sb * M), sb);  // dW_k += dkᵀ·m; dm += dk·W_k
    }

    void GrowSteps(int steps)
    {
        var (weights, tanh) = (_weights, _tanh);
        int source = _reservedSource, batch = _reservedBatch;
        _reservedSteps = 0; _reservedSource = 0; _reservedBatch = 0;
        var (memory, keys, lengths) = (_memory, _keys, _lengths);
        Reserve(Math.Max(steps, 2 * (weights.Length / Math.Max(1, source * batch))), source, batch);
        memory.CopyTo(_memory, 0); keys.CopyTo(_keys, 0); lengths.CopyTo(_lengths, 0);
        weights.CopyTo(_weights, 0); tanh.CopyTo(_tanh, 0);
    }
}
