using System.Numerics.Tensors;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Models;

/// <summary>The architecture of a <see cref="SequenceModel"/>.</summary>
public sealed record SequenceModelConfig
{
    /// <summary>Token vocabulary size V (ids 0 … V−1, 0 = padding/unknown); 0 for numeric input.</summary>
    public int VocabularySize { get; init; }
    /// <summary>Embedding dimension (token input).</summary>
    public int EmbeddingSize { get; init; } = 128;
    /// <summary>Features per step (numeric input).</summary>
    public int FeatureSize { get; init; }
    /// <summary>The recurrent cell.</summary>
    public RecurrentCellSpec Cell { get; init; } = new(RecurrentCellKind.Lstm);
    /// <summary>Hidden units per direction.</summary>
    public int HiddenSize { get; init; } = 128;
    /// <summary>Stacked recurrent layers.</summary>
    public int Layers { get; init; } = 1;
    /// <summary>Read sequences in both directions.</summary>
    public bool Bidirectional { get; init; } = true;
    /// <summary>How directions combine.</summary>
    public BidirectionalMerge Merge { get; init; } = BidirectionalMerge.Concat;
    /// <summary>Pooling over time.</summary>
    public PoolingKind Pooling { get; init; } = PoolingKind.MaxMean;
    /// <summary>Attention size for attention pooling.</summary>
    public int AttentionSize { get; init; } = 64;
    /// <summary>Dropout on embeddings, between recurrent layers and before the output layer.</summary>
    public float Dropout { get; init; } = 0.5f;
    /// <summary>Outputs: 1 for binary classification and regression, K for K classes.</summary>
    public int Outputs { get; init; } = 1;

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (VocabularySize < 0) throw new ArgumentOutOfRangeException(nameof(VocabularySize), VocabularySize, "Must be non-negative.");
        if (VocabularySize == 0 && FeatureSize < 1) throw new ArgumentException("Set VocabularySize for token input or FeatureSize for numeric input.");
        if (VocabularySize > 0 && EmbeddingSize < 1) throw new ArgumentOutOfRangeException(nameof(EmbeddingSize), EmbeddingSize, "Must be at least 1.");
        if (HiddenSize < 1) throw new ArgumentOutOfRangeException(nameof(HiddenSize), HiddenSize, "Must be at least 1.");
        if (Layers < 1) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "Must be at least 1.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "Must be in [0, 1).");
        if (Outputs < 1) throw new ArgumentOutOfRangeException(nameof(Outputs), Outputs, "Must be at least 1.");
        if (Pooling == PoolingKind.Attention && AttentionSize < 1) throw new ArgumentOutOfRangeException(nameof(AttentionSize), AttentionSize, "Must be at least 1.");
    }
}

/// <summary>
/// Embedding (or numeric input) → dropout → stacked, optionally bidirectional recurrent layers → pooling over
/// time → dropout → dense output layer producing logits (B, Outputs).
/// </summary>
public sealed class SequenceModel : Module
{
    readonly Embedding? _embedding;
    readonly Dropout _inputDropout, _headDropout;
    readonly RecurrentNetwork _rnn;
    readonly SequencePooling? _pooling;
    readonly Dense _head;
    // Caches of the last forward and backward scratch, sized by Reserve.
    float[] _x = [], _y = [], _hT = [], _pooled = [], _dropped = [], _dPooled = [], _dY = [], _dX = [], _dHT = [];
    int _reservedSteps, _reservedBatch;
    SequenceBatch? _batch;
    ProjectedEmbedding? _projection;

    /// <summary>Builds the model with zero weights; call <see cref="Initialize"/>.</summary>
    public SequenceModel(SequenceModelConfig config, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int input = config.VocabularySize > 0 ? config.EmbeddingSize : config.FeatureSize;
        if (config.VocabularySize > 0) _embedding = AddChild("embedding", new Embedding(config.VocabularySize, config.EmbeddingSize, paddingId: 0));
        _inputDropout = AddChild("input_dropout", new Dropout(config.Dropout, seed + 101));
        _rnn = AddChild("recurrent", new RecurrentNetwork(config.Cell, input, config.HiddenSize, config.Layers, config.Bidirectional, config.Merge, config.Dropout, seed + 202));
        int pooledSize;
        if (config.Pooling == PoolingKind.Last) pooledSize = _rnn.OutputSize; // final states merge like the outputs
        else
        {
            _pooling = AddChild("pooling", new SequencePooling(config.Pooling, _rnn.OutputSize, config.AttentionSize));
            pooledSize = _pooling.OutputSize;
        }
        _headDropout = AddChild("head_dropout", new Dropout(config.Dropout, seed + 303));
        _head = AddChild("head", new Dense(pooledSize, config.Outputs));
    }

    /// <summary>The architecture.</summary>
    public SequenceModelConfig Config { get; }
    /// <summary>The recurrent part.</summary>
    public RecurrentNetwork Recurrent => _rnn;
    /// <summary>The embedding, or null for numeric input.</summary>
    public Embedding? Embedding => _embedding;
    /// <summary>The pooling layer, or null for <see cref="PoolingKind.Last"/>.</summary>
    public SequencePooling? Pooling => _pooling;
    /// <summary>The output layer.</summary>
    public Dense Head => _head;

    /// <summary>
    /// When set, inference forwards (<c>training: false</c>) look each token's first-layer input projection up in
    /// this table instead of embedding the token and multiplying by W_ih; training forwards ignore it. It must hold
    /// this model's current weights: built by <see cref="ProjectedEmbedding.Build"/> from this model, or from
    /// another with the same weights (one table can serve many instances). Null (the default) turns it off.
    /// With Max, Mean or MaxMean pooling over one layer (directions concatenated), such forwards also pool as they go
    /// and keep no per-step outputs; the mean of a reverse direction then adds its steps in the order it runs them,
    /// which can change the last bits of the logits.
    /// </summary>
    /// <exception cref="ArgumentException">The table's shape does not fit this model (or the model reads numeric input).</exception>
    public ProjectedEmbedding? Projection
    {
        get => _projection;
        set
        {
            if (value is not null && (_embedding is null || value.VocabularySize != _embedding.VocabularySize || value.Directions != _rnn.Directions
                || value.Width != _rnn.Layers[0].Cell.GateCount * _rnn.HiddenSize))
                throw new ArgumentException("The table was not built for a model of this architecture.", nameof(value));
            _projection = value;
        }
    }

    /// <summary>Per-token attention weights (T, B) of the last forward, or empty without attention pooling.</summary>
    public ReadOnlySpan<float> AttentionWeights => _pooling is null ? default : _pooling.AttentionWeights;

    /// <summary>Initialises every weight from <paramref name="random"/>.</summary>
    public void Initialize(Random random, RecurrentInitializer recurrent = RecurrentInitializer.XavierOrthogonal, bool unitForgetBias = true)
    {
        // N(0, 1) rows are large next to Xavier weights; N(0, 0.1²) trains faster with Adam (Keras uses U(±0.05)).
        if (_embedding is not null) Initializers.Initialize(_embedding, random, standardDeviation: 0.1f);
        Initializers.InitializeRecurrent(_rnn, recurrent, unitForgetBias, random);
        if (_pooling?.AttentionProjection is Dense projection)
        {
            Initializers.Initialize(projection, random);
            Initializers.XavierUniform(_pooling.AttentionVector!.Value.Data, _pooling.AttentionVector.Value.Length, 1, random);
        }
        Initializers.Initialize(_head, random);
    }

    /// <summary>
    /// Sizes every cache and scratch buffer of the model and its layers for batches of up to
    /// <paramref name="steps"/> × <paramref name="batch"/>: such batches then run forward and backward without
    /// allocating. A training loop reserves the largest batch shape once; <see cref="Forward"/> reserves a larger
    /// shape when one arrives (prediction on rows of growing length).
    /// </summary>
    public void Reserve(int steps, int batch)
    {
        steps = Math.Max(steps, _reservedSteps); batch = Math.Max(batch, _reservedBatch);
        if (steps == _reservedSteps && batch == _reservedBatch) return;
        int tb = steps * batch, input = _rnn.InputSize, o = _rnn.OutputSize, p = _head.InputSize, sl = _rnn.StateLength(batch);
        _x = new float[tb * input];                  // (T, B, I) embedded (or numeric) input after dropout
        _y = new float[tb * o];                      // (T, B, O) recurrent outputs
        _hT = new float[sl]; _dHT = new float[sl];   // (L·D, B, H) final states
        _pooled = new float[batch * p];              // (B, P) pooled
        _dropped = new float[batch * p];             // (B, P) pooled after dropout: the head's input
        _dPooled = new float[2 * batch * p];         // gradients of both
        _dY = new float[tb * Math.Max(o, input)];    // dL/dy, then dL/d(embedded)
        _dX = new float[tb * input];
        _rnn.Reserve(steps, batch);
        _pooling?.Reserve(steps, batch);
        _inputDropout.Reserve(tb * input);
        _headDropout.Reserve(batch * p);
        _reservedSteps = steps; _reservedBatch = batch;
    }

    /// <summary>Logits (B, Outputs) for a batch; <paramref name="training"/> turns dropout on.</summary>
    public void Forward(Span<float> logits, SequenceBatch batch, bool training)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int t = batch.Steps, b = batch.Count, input = _rnn.InputSize, o = _rnn.OutputSize;
        if (_embedding is null && batch.Features != Config.FeatureSize)
            throw new ArgumentException($"The model reads {Config.FeatureSize} features per step; the batch has {batch.Features}.", nameof(batch));
        if (_embedding is not null && batch.Features != 0)
            throw new ArgumentException("The model reads token ids; the batch holds numeric features.", nameof(batch));
        if (logits.Length != b * Config.Outputs) throw new ArgumentException($"Expected {b * Config.Outputs} logits, got {logits.Length}.", nameof(logits));
        Reserve(t, b);
        _batch = batch;
        var y = _y.AsSpan(0, t * b * o);
        var hT = _hT.AsSpan(0, _rnn.StateLength(b));
        int p = _head.InputSize;
        var pooled = _pooled.AsSpan(0, b * p);
        var table = training ? null : Projection;
        // Scoring through the table with Max/Mean pooling: the network pools as it goes, and writes no (T, B, O) outputs.
        bool pooledAsItGoes = table is not null && _pooling is not null && _rnn.PoolsAsItGoes(_pooling.Kind);
        if (pooledAsItGoes) _rnn.ForwardProjectedPooled(pooled, _pooling!.Kind, batch.Tokens.AsSpan(0, t * b), table!, batch.Lengths, t, b);
        else if (table is not null) _rnn.ForwardProjected(y, hT, batch.Tokens.AsSpan(0, t * b), table, batch.Lengths, t, b);
        else
        {
            var x = _x.AsSpan(0, t * b * input);
            if (_embedding is not null) _embedding.Forward(x, batch.Tokens.AsSpan(0, t * b));
            else batch.Values.AsSpan(0, t * b * input).CopyTo(x);
            _inputDropout.Forward(x, x, training);
            _rnn.Forward(y, hT, default, x, default, default, batch.Lengths, t, b, training);
        }
        if (_pooling is null) LastStates(hT, pooled, b);
        else if (!pooledAsItGoes) _pooling.Forward(pooled, y, t, b, batch.Lengths);
        var dropped = _dropped.AsSpan(0, b * p);
        _headDropout.Forward(dropped, pooled, training);
        _head.Forward(logits, dropped, b);
    }

    /// <summary>Backward pass for the last <see cref="Forward"/>: adds every parameter's gradient from dL/dlogits.</summary>
    public void Backward(ReadOnlySpan<float> dLogits)
    {
        var batch = _batch ?? throw new InvalidOperationException("Backward called before Forward.");
        int t = batch.Steps, b = batch.Count, input = _rnn.InputSize, o = _rnn.OutputSize, p = _head.InputSize;
        var dDropped = _dPooled.AsSpan(0, b * p);
        var dPooled = _dPooled.AsSpan(b * p, b * p);
        dDropped.Clear(); dPooled.Clear();
        _head.Backward(dDropped, dLogits, _dropped.AsSpan(0, b * p), b);
        _headDropout.Backward(dPooled, dDropped);
        var dy = _dY.AsSpan(0, t * b * o);
        var dhT = _dHT.AsSpan(0, _rnn.StateLength(b));
        dy.Clear(); dhT.Clear();
        if (_pooling is null) LastStatesBackward(dPooled, dhT, b);
        else _pooling.Backward(dy, dPooled, _y.AsSpan(0, t * b * o));
        bool needInput = _embedding is not null;
        var dx = needInput ? _dX.AsSpan(0, t * b * input) : default;
        if (needInput) dx.Clear();
        _rnn.Backward(dx, default, default, dy, dhT, default);
        if (_embedding is null) return;
        // Through the input dropout (in place: its mask zeroes what it dropped), then into the table.
        var dEmbedded = _dY.AsSpan(0, t * b * input); // dy is spent
        dEmbedded.Clear();
        _inputDropout.Backward(dEmbedded, dx);
        _embedding.Backward(dEmbedded, batch.Tokens.AsSpan(0, t * b));
    }

    // Last pooling: the top layer's final states, merged like the outputs.
    void LastStates(ReadOnlySpan<float> hT, Span<float> pooled, int b)
    {
        int bh = b * _rnn.HiddenSize, top = (_rnn.LayerCount - 1) * _rnn.Directions;
        _rnn.MergeDirections(hT.Slice(top * bh, bh), _rnn.Directions == 2 ? hT.Slice((top + 1) * bh, bh) : default, pooled, b);
    }

    void LastStatesBackward(ReadOnlySpan<float> dPooled, Span<float> dhT, int b)
    {
        int bh = b * _rnn.HiddenSize, top = (_rnn.LayerCount - 1) * _rnn.Directions;
        for (int k = 0; k < _rnn.Directions; k++) _rnn.SplitDirection(dPooled, dhT.Slice((top + k) * bh, bh), k, b);
    }
}
