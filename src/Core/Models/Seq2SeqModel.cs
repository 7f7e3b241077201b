using System.Numerics.Tensors;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Models;

/// <summary>The architecture of a <see cref="Seq2SeqModel"/>.</summary>
public sealed record Seq2SeqConfig
{
    /// <summary>Source ids in use (<see cref="Seq2SeqVocabulary.Size"/>).</summary>
    public int SourceVocabularySize { get; init; }
    /// <summary>Target ids in use (<see cref="Seq2SeqVocabulary.Size"/>).</summary>
    public int TargetVocabularySize { get; init; }
    /// <summary>Embedding size of source and target tokens (default 128).</summary>
    public int EmbeddingSize { get; init; } = 128;
    /// <summary>The encoder's cell: any cell of the core (default LSTM).</summary>
    public RecurrentCellSpec EncoderCell { get; init; } = new(RecurrentCellKind.Lstm);
    /// <summary>Encoder units per direction (default 256).</summary>
    public int EncoderHiddenSize { get; init; } = 256;
    /// <summary>Stacked encoder layers (default 1).</summary>
    public int EncoderLayers { get; init; } = 1;
    /// <summary>Read the source in both directions (default true; the directions' outputs are concatenated).</summary>
    public bool Bidirectional { get; init; } = true;
    /// <summary>The decoder's cell: LSTM (and its variants) or GRU (default LSTM).</summary>
    public RecurrentCellSpec DecoderCell { get; init; } = new(RecurrentCellKind.Lstm);
    /// <summary>Decoder units (default 256).</summary>
    public int DecoderHiddenSize { get; init; } = 256;
    /// <summary>Attention over the encoder's outputs (default Additive); None gives the plain encoder–decoder.</summary>
    public AttentionKind Attention { get; init; } = AttentionKind.Additive;
    /// <summary>Additive attention size; 0 (default) means <see cref="DecoderHiddenSize"/>.</summary>
    public int AttentionSize { get; init; }
    /// <summary>Feed the last attentional vector into the next decoder step (Luong et al. 2015; default true; needs attention).</summary>
    public bool InputFeeding { get; init; } = true;
    /// <summary>Dropout on the source embeddings, between encoder layers and before the output layer (default 0.2).</summary>
    public float Dropout { get; init; } = 0.2f;
    /// <summary>Feed the source reversed (Sutskever et al. 2014).</summary>
    public bool ReverseSource { get; init; }
    /// <summary>Feed the source twice, one copy after the other (Zaremba &amp; Sutskever 2014).</summary>
    public bool RepeatSource { get; init; }

    /// <summary>The memory size M: encoder features per source step.</summary>
    public int MemorySize => Bidirectional ? 2 * EncoderHiddenSize : EncoderHiddenSize;

    /// <summary>The source as the encoder reads it: reversed and/or repeated as configured.</summary>
    public int[] PrepareSource(ReadOnlySpan<int> source)
    {
        var s = source.ToArray();
        if (ReverseSource) Array.Reverse(s);
        return RepeatSource ? [.. s, .. s] : s;
    }

    /// <summary>Throws with a clear message when a setting is out of range.</summary>
    public void Validate()
    {
        if (SourceVocabularySize <= Seq2SeqVocabulary.FirstToken) throw new ArgumentOutOfRangeException(nameof(SourceVocabularySize), SourceVocabularySize, $"Must exceed {Seq2SeqVocabulary.FirstToken} (the special ids).");
        if (TargetVocabularySize <= Seq2SeqVocabulary.FirstToken) throw new ArgumentOutOfRangeException(nameof(TargetVocabularySize), TargetVocabularySize, $"Must exceed {Seq2SeqVocabulary.FirstToken} (the special ids).");
        if (EmbeddingSize < 1) throw new ArgumentOutOfRangeException(nameof(EmbeddingSize), EmbeddingSize, "Must be at least 1.");
        if (EncoderHiddenSize < 1) throw new ArgumentOutOfRangeException(nameof(EncoderHiddenSize), EncoderHiddenSize, "Must be at least 1.");
        if (EncoderLayers < 1) throw new ArgumentOutOfRangeException(nameof(EncoderLayers), EncoderLayers, "Must be at least 1.");
        if (DecoderHiddenSize < 1) throw new ArgumentOutOfRangeException(nameof(DecoderHiddenSize), DecoderHiddenSize, "Must be at least 1.");
        if (AttentionSize < 0) throw new ArgumentOutOfRangeException(nameof(AttentionSize), AttentionSize, "Must be non-negative (0: the decoder's hidden size).");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "Must be in [0, 1).");
        ArgumentNullException.ThrowIfNull(EncoderCell);
        ArgumentNullException.ThrowIfNull(DecoderCell);
        if (DecoderCell.Kind == RecurrentCellKind.Rnn)
            throw new ArgumentException("The decoder cell must be an LSTM (or a variant) or a GRU.", nameof(DecoderCell));
        if (!Enum.IsDefined(Attention)) throw new ArgumentOutOfRangeException(nameof(Attention), Attention, "Unknown attention kind.");
        if (Attention == AttentionKind.Dot && MemorySize != DecoderHiddenSize)
            throw new ArgumentException($"Dot attention needs the encoder's output size ({MemorySize}{(Bidirectional ? " = 2 × EncoderHiddenSize" : "")}) to equal DecoderHiddenSize ({DecoderHiddenSize}); use General or Additive attention, or change the sizes.", nameof(Attention));
    }
}

/// <summary>
/// Encoder–decoder with attention (Bahdanau et al. 2015; Luong et al. 2015):
/// <code>
/// encoder: m = RecurrentNetwork(dropout(E_src[x]))                 (S, B, M) memory
/// bridge:  h_{−1} = tanh(W_b·[final states of the top layer] + b_b), c_{−1} = 0
/// step t:  h_t = cell([E_tgt[y_{t−1}]; h̃_{t−1}], h_{t−1})           input feeding: h̃_{−1} = 0
///          context_t = Attention(query h_t, memory m)
///          h̃_t = tanh(W_c·[context_t; h_t])                         attentional vector
///          logits_t = W_o·dropout(h̃_t) + b_o
/// </code>
/// Without attention, h̃_t = h_t and nothing is fed back: the plain encoder–decoder that passes only the final
/// state. Training is teacher-forced (<see cref="Forward"/>/<see cref="Backward"/>); decoding runs one step at a
/// time (<see cref="StartDecoding"/>, <see cref="DecodeStep"/>), which <see cref="Seq2SeqSearch"/> uses for greedy
/// and beam search.
/// </summary>
/// <remarks>
/// The attention query is the current decoder state h_t, as in Luong et al.; the additive score is Bahdanau's
/// function. Shape key: S source steps, T decoder steps, B rows, E embedding, M memory (encoder output), H decoder
/// hidden, I decoder input (E + H with input feeding), V target vocabulary.
/// </remarks>
public sealed class Seq2SeqModel : Module
{
    readonly Embedding _sourceEmbedding, _targetEmbedding;
    readonly Dropout _sourceDropout, _outputDropout;
    readonly RecurrentNetwork _encoder;
    readonly Dense _bridge, _output;
    readonly RecurrentCell _cell;
    readonly RecurrentCellSteps _steps;
    readonly Attention? _attention;
    readonly Dense? _combine;
    readonly int _e, _m, _h, _i, _v;
    bool Feeding => _attention is not null && Config.InputFeeding;

    // Forward caches and backward scratch, sized by Reserve.
    float[] _srcX = [];      // (S, B, E) source embeddings after dropout
    float[] _memory = [];    // (S, B, M) encoder outputs
    float[] _hT = [];        // (L·D, B, He) encoder final states
    float[] _bridgeIn = [];  // (B, M) top layer's final states, merged
    float[] _h0 = [];        // (B, H) decoder's initial state
    float[] _tgtX = [];      // (T, B, E) decoder input embeddings
    float[] _x = [];         // (B, I) one step's input
    float[] _context = [];   // (B, M)
    float[] _cat = [];       // (T, B, M + H) [context; h] of each step
    float[] _ht = [];        // (T, B, H) h̃ of each step
    float[] _dropped = [];   // (T, B, H) h̃ after dropout: the output layer's input
    float[] _dDropped = [], _dHt = []; // (T, B, H)
    float[] _dFeed = [], _dPre = [], _dh = [];  // (B, H)
    float[] _dCat = [];      // (B, M + H)
    float[] _dContext = [];  // (B, M)
    float[] _dx = [];        // (B, I)
    float[] _dTgtX = [];     // (T, B, E)
    float[] _dh0 = [];       // (B, H)
    float[] _dBridgeIn = []; // (B, M)
    float[] _dMemory = [];   // (S, B, M)
    float[] _dhT = [];       // (L·D, B, He)
    float[] _dSrcX = [], _dSrcEmb = []; // (S, B, E)
    int _reservedS, _reservedT, _reservedB;
    Seq2SeqBatch? _batch;
    long _memoryStamp, _stamps;

    /// <summary>Builds the model with zero weights; call <see cref="Initialize"/>.</summary>
    public Seq2SeqModel(Seq2SeqConfig config, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _e = config.EmbeddingSize; _m = config.MemorySize; _h = config.DecoderHiddenSize; _v = config.TargetVocabularySize;
        _sourceEmbedding = AddChild("source_embedding", new Embedding(config.SourceVocabularySize, _e, paddingId: Seq2SeqVocabulary.Pad));
        _sourceDropout = AddChild("source_dropout", new Dropout(config.Dropout, seed + 101));
        _encoder = AddChild("encoder", new RecurrentNetwork(config.EncoderCell, _e, config.EncoderHiddenSize, config.EncoderLayers, config.Bidirectional,
            BidirectionalMerge.Concat, config.Dropout, seed + 202));
        _bridge = AddChild("bridge", new Dense(_m, _h));
        _targetEmbedding = AddChild("target_embedding", new Embedding(_v, _e, paddingId: Seq2SeqVocabulary.Pad));
        bool attention = config.Attention != AttentionKind.None;
        _i = _e + (attention && config.InputFeeding ? _h : 0);
        _cell = AddChild("decoder", config.DecoderCell.Create(_i, _h));
        _steps = new RecurrentCellSteps(_cell);
        if (attention)
        {
            _attention = AddChild("attention", new Attention(config.Attention, _h, _m, config.AttentionSize > 0 ? config.AttentionSize : _h));
            _combine = AddChild("combine", new Dense(_m + _h, _h, useBias: false));
        }
        _outputDropout = AddChild("output_dropout", new Dropout(config.Dropout, seed + 303));
        _output = AddChild("output", new Dense(_h, _v));
    }

    /// <summary>The architecture.</summary>
    public Seq2SeqConfig Config { get; }
    /// <summary>The encoder.</summary>
    public RecurrentNetwork Encoder => _encoder;
    /// <summary>The decoder's cell.</summary>
    public RecurrentCell DecoderCell => _cell;
    /// <summary>The attention layer, or null without attention.</summary>
    public Attention? Attention => _attention;

    /// <summary>Initialises every weight from <paramref name="random"/> (recurrent: Xavier + orthogonal, forget bias 1).</summary>
    public void Initialize(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Initializers.Initialize(_sourceEmbedding, random, standardDeviation: 0.1f);
        Initializers.Initialize(_targetEmbedding, random, standardDeviation: 0.1f);
        Initializers.InitializeRecurrent(_encoder, RecurrentInitializer.XavierOrthogonal, unitForgetBias: true, random);
        Initializers.InitializeCell(_cell, RecurrentInitializer.XavierOrthogonal, unitForgetBias: true, random);
        Initializers.Initialize(_bridge, random);
        if (_attention is not null)
        {
            if (_attention.Query is Dense q) Initializers.Initialize(q, random);
            if (_attention.Key is Dense k) Initializers.Initialize(k, random);
            if (_attention.V is Parameter v) { Initializers.XavierUniform(v.Value.Data, v.Value.Length, 1, random); v.MarkChanged(); }
            Initializers.Initialize(_combine!, random);
        }
        Initializers.Initialize(_output, random);
    }

    /// <summary>
    /// Sizes every cache for batches of up to <paramref name="batch"/> pairs with sources of up to
    /// <paramref name="sourceSteps"/> tokens (as fed) and <paramref name="targetSteps"/> decoder steps, so that such
    /// batches train without allocating. <see cref="Forward"/> reserves a larger shape when one arrives.
    /// </summary>
    public void Reserve(int sourceSteps, int targetSteps, int batch)
    {
        sourceSteps = Math.Max(sourceSteps, _reservedS); targetSteps = Math.Max(targetSteps, _reservedT); batch = Math.Max(batch, _reservedB);
        if (sourceSteps == _reservedS && targetSteps == _reservedT && batch == _reservedB) return;
        int sb = sourceSteps * batch, tb = targetSteps * batch, E = _e, M = _m, H = _h, sl = _encoder.StateLength(batch);
        _srcX = new float[sb * E]; _dSrcX = new float[sb * E]; _dSrcEmb = new float[sb * E];
        _memory = new float[sb * M]; _dMemory = new float[sb * M];
        _hT = new float[sl]; _dhT = new float[sl];
        _bridgeIn = new float[batch * M]; _dBridgeIn = new float[batch * M];
        _h0 = new float[batch * H]; _dh0 = new float[batch * H];
        _tgtX = new float[tb * E]; _dTgtX = new float[tb * E];
        _x = new float[batch * _i]; _dx = new float[batch * _i];
        _context = new float[batch * M]; _dContext = new float[batch * M];
        _cat = new float[_attention is null ? 0 : tb * (M + H)]; _dCat = new float[batch * (M + H)];
        _ht = new float[tb * H]; _dropped = new float[tb * H]; _dDropped = new float[tb * H]; _dHt = new float[tb * H];
        _dFeed = new float[batch * H]; _dPre = new float[batch * H]; _dh = new float[batch * H];
        _encoder.Reserve(sourceSteps, batch);
        _steps.Reserve(targetSteps, batch);
        _attention?.Reserve(targetSteps, sourceSteps, batch);
        _sourceDropout.Reserve(sb * E);
        _outputDropout.Reserve(tb * H);
        _reservedS = sourceSteps; _reservedT = targetSteps; _reservedB = batch;
    }

    /// <summary>Teacher-forced logits (T, B, V) for a batch; <paramref name="training"/> turns dropout on.</summary>
    public void Forward(Span<float> logits, Seq2SeqBatch batch, bool training)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int S = batch.SourceSteps, T = batch.TargetSteps, B = batch.Count, H = _h, E = _e, M = _m;
        if (logits.Length != T * B * _v) throw new ArgumentException($"Expected T·B·V = {T * B * _v} logits, got {logits.Length}.", nameof(logits));
        Reserve(S, T, B);
        _batch = batch;
        Encode(batch.Source.AsSpan(0, S * B), batch.SourceLengths, S, B, training);
        var tgtX = _tgtX.AsSpan(0, T * B * E);
        _targetEmbedding.Forward(tgtX, CheckIds(batch.DecoderInput.AsSpan(0, T * B), _v, "target"));
        _steps.Begin(_h0.AsSpan(0, B * H), default, B);
        if (_attention is not null) { _attention.SetMemory(_memory.AsSpan(0, S * B * M), batch.SourceLengths, S, B); _memoryStamp = 0; }
        var x = _x.AsSpan(0, B * _i);
        for (int t = 0; t < T; t++)
        {
            var feed = t > 0 ? _ht.AsSpan((t - 1) * B * H, B * H) : default;
            StepInput(x, tgtX.Slice(t * B * E, B * E), feed, B);
            _steps.Step(x, t);
            var cat = _attention is null ? default : _cat.AsSpan(t * B * (M + H), B * (M + H));
            Attend(_ht.AsSpan(t * B * H, B * H), cat, _steps.H(t), B, t);
        }
        var dropped = _dropped.AsSpan(0, T * B * H);
        _outputDropout.Forward(dropped, _ht.AsSpan(0, T * B * H), training);
        _output.Forward(logits, dropped, T * B);                                   // all steps in one GEMM
    }

    /// <summary>Backward pass for the last <see cref="Forward"/>: adds every parameter's gradient from dL/dlogits (T, B, V).</summary>
    public void Backward(ReadOnlySpan<float> dLogits)
    {
        var batch = _batch ?? throw new InvalidOperationException("Backward called before Forward.");
        int S = batch.SourceSteps, T = batch.TargetSteps, B = batch.Count, H = _h, E = _e, M = _m, bh = B * H;
        if (dLogits.Length != T * B * _v) throw new ArgumentException($"Expected T·B·V = {T * B * _v} gradients, got {dLogits.Length}.", nameof(dLogits));
        var dDropped = _dDropped.AsSpan(0, T * bh);
        var dHt = _dHt.AsSpan(0, T * bh);
        dDropped.Clear(); dHt.Clear();
        _output.Backward(dDropped, dLogits, _dropped.AsSpan(0, T * bh), T * B);
        _outputDropout.Backward(dHt, dDropped);

        _steps.BeginBackward();
        _attention?.BeginBackward();
        var dFeed = _dFeed.AsSpan(0, bh);
        dFeed.Clear();
        var dx = _dx.AsSpan(0, B * _i);
        var dTgtX = _dTgtX.AsSpan(0, T * B * E);
        for (int t = T - 1; t >= 0; t--)
        {
            var dht = dHt.Slice(t * bh, bh);
            if (Feeding) TensorPrimitives.Add(dht, dFeed, dht);                   // h̃_t also fed step t + 1
            var dh = _dh.AsSpan(0, bh);
            if (_attention is null) dht.CopyTo(dh);
            else AttendBackward(dh, dht, _ht.AsSpan(t * bh, bh), _cat.AsSpan(t * B * (M + H), B * (M + H)), _steps.H(t), B, t);
            _steps.BackwardStep(dx, dh, t);
            SplitStepInput(dTgtX.Slice(t * B * E, B * E), Feeding ? dFeed : default, dx, B);
        }
        var dh0 = _dh0.AsSpan(0, bh);
        _steps.EndBackward(dh0, default);
        _targetEmbedding.Backward(dTgtX, batch.DecoderInput.AsSpan(0, T * B));

        var dMemory = _dMemory.AsSpan(0, S * B * M);
        dMemory.Clear();
        _attention?.BackwardMemory(dMemory);
        EncodeBackward(dMemory, dh0, batch.Source.AsSpan(0, S * B), B);
    }

    // Source ids → memory (S, B, M) and the decoder's initial state h0 (B, H).
    void Encode(ReadOnlySpan<int> source, ReadOnlySpan<int> lengths, int S, int B, bool training)
    {
        int E = _e, M = _m;
        var srcX = _srcX.AsSpan(0, S * B * E);
        _sourceEmbedding.Forward(srcX, CheckIds(source, Config.SourceVocabularySize, "source"));
        _sourceDropout.Forward(srcX, srcX, training);
        var hT = _hT.AsSpan(0, _encoder.StateLength(B));
        _encoder.Forward(_memory.AsSpan(0, S * B * M), hT, default, srcX, default, default, lengths, S, B, training);
        // The bridge reads the top layer's final states, both directions side by side.
        int bhe = B * _encoder.HiddenSize, top = (_encoder.LayerCount - 1) * _encoder.Directions;
        var bridgeIn = _bridgeIn.AsSpan(0, B * M);
        _encoder.MergeDirections(hT.Slice(top * bhe, bhe), _encoder.Directions == 2 ? hT.Slice((top + 1) * bhe, bhe) : default, bridgeIn, B);
        var h0 = _h0.AsSpan(0, B * _h);
        _bridge.Forward(h0, bridgeIn, B);
        TensorPrimitives.Tanh(h0, h0);
    }

    void EncodeBackward(ReadOnlySpan<float> dMemory, ReadOnlySpan<float> dh0, ReadOnlySpan<int> source, int B)
    {
        int E = _e, M = _m, S = dMemory.Length / (B * M);
        var h0 = _h0.AsSpan(0, B * _h);
        var dPre = _dh.AsSpan(0, B * _h);                                            // spent
        TensorPrimitives.Multiply(h0, h0, dPre);
        TensorPrimitives.Subtract(1f, dPre, dPre);
        TensorPrimitives.Multiply(dPre, dh0, dPre);                                // through h0 = tanh(·)
        var dBridgeIn = _dBridgeIn.AsSpan(0, B * M);
        dBridgeIn.Clear();
        _bridge.Backward(dBridgeIn, dPre, _bridgeIn.AsSpan(0, B * M), B);
        var dhT = _dhT.AsSpan(0, _encoder.StateLength(B));
        dhT.Clear();
        int bhe = B * _encoder.HiddenSize, top = (_encoder.LayerCount - 1) * _encoder.Directions;
        for (int k = 0; k < _encoder.Directions; k++) _encoder.SplitDirection(dBridgeIn, dhT.Slice((top + k) * bhe, bhe), k, B);
        var dSrcX = _dSrcX.AsSpan(0, S * B * E);
        dSrcX.Clear();
        _encoder.Backward(dSrcX, default, default, dMemory, dhT, default);
        var dEmb = _dSrcEmb.AsSpan(0, S * B * E);
        dEmb.Clear();
        _sourceDropout.Backward(dEmb, dSrcX);
        _sourceEmbedding.Backward(dEmb, source);
    }

    // x = [embedding; h̃_{t−1}] per row (h̃_{−1} = 0), or the embedding alone without input feeding.
    void StepInput(Span<float> x, ReadOnlySpan<float> embedded, ReadOnlySpan<float> feed, int B)
    {
        int E = _e, H = _h, I = _i;
        for (int b = 0; b < B; b++)
        {
            embedded.Slice(b * E, E).CopyTo(x.Slice(b * I, E));
            if (!Feeding) continue;
            if (feed.IsEmpty) x.Slice(b * I + E, H).Clear();
            else feed.Slice(b * H, H).CopyTo(x.Slice(b * I + E, H));
        }
    }

    void SplitStepInput(Span<float> dEmbedded, Span<float> dFeed, ReadOnlySpan<float> dx, int B)
    {
        int E = _e, H = _h, I = _i;
        for (int b = 0; b < B; b++)
        {
            dx.Slice(b * I, E).CopyTo(dEmbedded.Slice(b * E, E));
            if (!dFeed.IsEmpty) dx.Slice(b * I + E, H).CopyTo(dFeed.Slice(b * H, H));
        }
    }

    // h̃ = tanh(W_c·[context; h]) with context = Attention(h); without attention h̃ = h. Keeps [context; h] in cat.
    void Attend(Span<float> ht, Span<float> cat, ReadOnlySpan<float> h, int B, int t)
    {
        if (_attention is null) { h.CopyTo(ht); return; }
        int M = _m, H = _h;
        var context = _context.AsSpan(0, B * M);
        _attention.Forward(context, h, t);
        for (int b = 0; b < B; b++)
        {
            context.Slice(b * M, M).CopyTo(cat.Slice(b * (M + H), M));
            h.Slice(b * H, H).CopyTo(cat.Slice(b * (M + H) + M, H));
        }
        _combine!.Forward(ht, cat, B);
        TensorPrimitives.Tanh(ht, ht);
    }

    // dh (B, H, written) from dh̃ through h̃ = tanh(W_c·[context; h]) and the attention whose query is h.
    void AttendBackward(Span<float> dh, ReadOnlySpan<float> dht, ReadOnlySpan<float> ht, ReadOnlySpan<float> cat, ReadOnlySpan<float> h, int B, int t)
    {
        int M = _m, H = _h;
        var dPre = _dPre.AsSpan(0, B * H);
        TensorPrimitives.Multiply(ht, ht, dPre);
        TensorPrimitives.Subtract(1f, dPre, dPre);
        TensorPrimitives.Multiply(dPre, dht, dPre);                                // tanh' = 1 − h̃²
        var dCat = _dCat.AsSpan(0, B * (M + H));
        dCat.Clear();
        _combine!.Backward(dCat, dPre, cat, B);
        var dContext = _dContext.AsSpan(0, B * M);
        for (int b = 0; b < B; b++)
        {
            dCat.Slice(b * (M + H), M).CopyTo(dContext.Slice(b * M, M));
            dCat.Slice(b * (M + H) + M, H).CopyTo(dh.Slice(b * H, H));
        }
        _attention!.Backward(dh, dContext, h, t);                                   // the query's share adds into dh
    }

    static ReadOnlySpan<int> CheckIds(ReadOnlySpan<int> ids, int size, string what)
    {
        foreach (int id in ids)
            if ((uint)id >= (uint)size) throw new ArgumentOutOfRangeException(nameof(ids), id, $"A {what} token id is outside the vocabulary [0, {size}).");
        return ids;
    }

    // ---- step-by-step decoding ----

    /// <summary>
    /// Encodes <paramref name="sources"/> (token ids as given; the model reverses or repeats them as configured)
    /// and returns a decoder state of <paramref name="rowsPerSource"/> rows per source (beam search keeps a beam
    /// per row), ready for the first <see cref="DecodeStep"/> with <see cref="Seq2SeqVocabulary.Bos"/>.
    /// </summary>
    public Seq2SeqDecoderState StartDecoding(IReadOnlyList<int[]> sources, int rowsPerSource = 1)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerSource, 1);
        if (sources.Count == 0) throw new ArgumentException("There is nothing to decode.", nameof(sources));
        var prepared = new int[sources.Count][];
        for (int i = 0; i < sources.Count; i++)
        {
            if (sources[i] is null || sources[i].Length == 0) throw new ArgumentException($"Source {i} is empty; a source needs at least one token.", nameof(sources));
            prepared[i] = Config.PrepareSource(sources[i]);
        }
        int B = sources.Count, S = prepared.Max(p => p.Length), M = _m, H = _h, R = B * rowsPerSource;
        Reserve(S, 1, Math.Max(B, R));
        var ids = new int[S * B];
        var lengths = new int[B];
        for (int b = 0; b < B; b++)
        {
            lengths[b] = prepared[b].Length;
            for (int s = 0; s < prepared[b].Length; s++) ids[s * B + b] = prepared[b][s];
        }
        Encode(ids, lengths, S, B, training: false);
        var state = new Seq2SeqDecoderState(R, S, H, Feeding ? H : 0, _cell.HasCellState, ++_stamps) { Sources = prepared, Memory = new float[S * R * M] };
        for (int r = 0; r < R; r++)
        {
            int b = r / rowsPerSource;
            state.SourceLengths[r] = lengths[b];
            _h0.AsSpan(b * H, H).CopyTo(state.H.AsSpan(r * H, H));
            state.SourceOfRow[r] = b;
            for (int s = 0; s < S; s++) _memory.AsSpan((s * B + b) * M, M).CopyTo(state.Memory.AsSpan((s * R + r) * M, M));
        }
        return state;
    }

    /// <summary>
    /// One decoder step for every row of <paramref name="state"/>: reads each row's <paramref name="previous"/>
    /// token (BOS first), advances the state, and writes the log-probabilities of the next token (rows, V) and, with
    /// attention, each row's attention weights over the source (rows, S as fed; zero past a row's length) into
    /// <paramref name="attention"/> (may be empty).
    /// </summary>
    public void DecodeStep(Span<float> logProbabilities, Span<float> attention, Seq2SeqDecoderState state, ReadOnlySpan<int> previous)
    {
        ArgumentNullException.ThrowIfNull(state);
        int R = state.Rows, S = state.SourceSteps, H = _h, E = _e, M = _m;
        if (previous.Length != R) throw new ArgumentException($"Expected a previous token for each of the {R} rows, got {previous.Length}.", nameof(previous));
        if (logProbabilities.Length != R * _v) throw new ArgumentException($"Expected rows·V = {R * _v} log-probabilities, got {logProbabilities.Length}.", nameof(logProbabilities));
        if (!attention.IsEmpty && attention.Length != R * S) throw new ArgumentException($"Expected rows·S = {R * S} attention weights, got {attention.Length}.", nameof(attention));
        Reserve(S, 1, R);
        var embedded = _tgtX.AsSpan(0, R * E);
        _targetEmbedding.Forward(embedded, CheckIds(previous, _v, "target"));
        var x = _x.AsSpan(0, R * _i);
        StepInput(x, embedded, state.Feed, R);
        _steps.Begin(state.H, state.C, R);
        _steps.Step(x, 0);
        _steps.H(0).CopyTo(state.H);
        if (_cell.HasCellState) _steps.C(0).CopyTo(state.C);
        var ht = _ht.AsSpan(0, R * H);
        if (_attention is not null)
        {
            if (_memoryStamp != state.Stamp) { _attention.SetMemory(state.Memory, state.SourceLengths, S, R); _memoryStamp = state.Stamp; }
            Attend(ht, _cat.AsSpan(0, R * (M + H)), state.H, R, 0);
            if (!attention.IsEmpty) _attention.Weights(0).CopyTo(attention);
            if (Feeding) ht.CopyTo(state.Feed);
        }
        else
        {
            state.H.CopyTo(ht);
            attention.Clear();
        }
        _output.Forward(logProbabilities, ht, R);
        for (int r = 0; r < R; r++)
        {
            var row = logProbabilities.Slice(r * _v, _v);
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, row);
            float logSum = MathF.Log(TensorPrimitives.SumOfMagnitudes(ExpInto(row)));
            TensorPrimitives.Subtract(row, logSum, row);
        }
    }

    float[] _exp = [];
    ReadOnlySpan<float> ExpInto(ReadOnlySpan<float> row)
    {
        if (_exp.Length < row.Length) _exp = new float[row.Length];
        var e = _exp.AsSpan(0, row.Length);
        TensorPrimitives.Exp(row, e);
        return e;
    }

    /// <summary>
    /// Rearranges the rows of <paramref name="state"/>: row r continues from row <paramref name="parents"/>[r] (beam
    /// search keeps the best extensions). Rows must keep reading their own source.
    /// </summary>
    public static void ReorderRows(Seq2SeqDecoderState state, ReadOnlySpan<int> parents)
    {
        ArgumentNullException.ThrowIfNull(state);
        int R = state.Rows;
        if (parents.Length != R) throw new ArgumentException($"Expected a parent for each of the {R} rows, got {parents.Length}.", nameof(parents));
        for (int r = 0; r < R; r++)
            if ((uint)parents[r] >= (uint)R || state.SourceOfRow[parents[r]] != state.SourceOfRow[r])
                throw new ArgumentException($"Row {r} cannot continue from row {parents[r]}: a row continues a row of the same source.", nameof(parents));
        Permute(state.H, parents, state.H.Length / R);
        if (state.C.Length > 0) Permute(state.C, parents, state.C.Length / R);
        if (state.Feed.Length > 0) Permute(state.Feed, parents, state.Feed.Length / R);
    }

    static void Permute(float[] rows, ReadOnlySpan<int> parents, int width)
    {
        var copy = (float[])rows.Clone();
        for (int r = 0; r < parents.Length; r++) copy.AsSpan(parents[r] * width, width).CopyTo(rows.AsSpan(r * width, width));
    }
}

/// <summary>
/// The decoder's state for step-by-step decoding (<see cref="Seq2SeqModel.StartDecoding"/>): per row the
/// recurrent state, the fed-back attentional vector and the encoded source it attends to.
/// </summary>
public sealed class Seq2SeqDecoderState
{
    internal Seq2SeqDecoderState(int rows, int sourceSteps, int hidden, int feed, bool cellState, long stamp)
    {
        Rows = rows; SourceSteps = sourceSteps; Stamp = stamp;
        H = new float[rows * hidden];
        C = cellState ? new float[rows * hidden] : [];
        Feed = new float[rows * feed];
        SourceLengths = new int[rows];
        SourceOfRow = new int[rows];
        Memory = [];
    }

    /// <summary>Rows decoded side by side.</summary>
    public int Rows { get; }
    /// <summary>Padded source length (S, as fed): the width of a row of attention weights.</summary>
    public int SourceSteps { get; }
    /// <summary>The sources as the encoder read them (reversed or repeated as configured), by source index.</summary>
    public IReadOnlyList<int[]> Sources { get; internal init; } = [];
    /// <summary>Which source each row decodes.</summary>
    public int[] SourceOfRow { get; }
    internal int[] SourceLengths { get; }
    internal float[] H { get; }
    internal float[] C { get; }
    internal float[] Feed { get; }
    internal float[] Memory { get; set; }
    internal long Stamp { get; }
}
