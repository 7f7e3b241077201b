using DeepSeq.Core.Layers;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeq.Bench;

/// <summary>
/// The translation sample's CMUdict model (its defaults): characters → phonemes, embedding 64, bidirectional LSTM
/// encoder of 128 per direction (memory M = 256), LSTM decoder of 256 with input feeding, additive attention of
/// size 256, h̃ = tanh(W_c·[context; h]), 43 target ids; batches of 64 words of 8 letters and 8 decoder steps.
/// Both sides run the same equations: TorchSharp with nn.LSTM (encoder), nn.LSTMCell (decoder) and the attention in
/// torch ops.
/// </summary>
static class Seq2SeqCases
{
    const int SourceVocabulary = 31, TargetVocabulary = 43, E = 64, He = 128, M = 2 * He, H = 256, A = 256, B = 64, S = 8, T = 8;
    public const string DecoderStepName = "Seq2Seq decoder step (greedy) E64 M256 H256 A256 V43 B64 S8";
    public const string TrainStepName = "Seq2Seq train step E64 BiLSTM128 → LSTM256 + additive attention, V43 B64 S8 T8";

    // GEMM work (multiply-adds × 2). Element-wise gate arithmetic, tanh, softmax and Adam are not counted.
    static double EncoderFlops => 2.0 * S * B * 2 * 4 * He * (E + He);                 // both directions, input + recurrent
    static double MemoryFlops => 2.0 * B * M * H + 2.0 * S * B * M * A;                  // bridge, keys W_k·m
    static double StepFlops =>
        2.0 * B * 4 * H * (E + H + H)                                                     // decoder LSTM: [embedding; h̃] and h
        + 2.0 * B * H * A + 2.0 * S * B * A + 2.0 * S * B * M                             // W_q·h, v·tanh(·), Σ α·m
        + 2.0 * B * (M + H) * H + 2.0 * B * H * TargetVocabulary;                         // combine, output layer
    public const string DecoderStepFormula = "2·B·[4H·(E+2H) + H·A + S·A + S·M + (M+H)·H + H·V]: decoder LSTM with input feeding, attention, combine, output";
    public const string TrainStepFormula = "3 × forward; forward = encoder 2·S·B·2·4·He·(E+He) + bridge and keys 2·B·M·H + 2·S·B·M·A + T × the decoder step";

    static Seq2SeqModel Model()
    {
        var model = new Seq2SeqModel(new Seq2SeqConfig
        {
            SourceVocabularySize = SourceVocabulary, TargetVocabularySize = TargetVocabulary, EmbeddingSize = E, EncoderHiddenSize = He,
            DecoderHiddenSize = H, Attention = AttentionKind.Additive, AttentionSize = A, InputFeeding = true, Dropout = 0f,
        }, seed: 1);
        model.Initialize(new Random(1));
        return model;
    }

    static int[][] Words(Random rng) => [.. Enumerable.Range(0, B).Select(_ => Enumerable.Range(0, S).Select(_ => rng.Next(4, SourceVocabulary)).ToArray())];

    /// <summary>The torch modules of the same model (weights are random: timing only).</summary>
    sealed class TorchModel : IDisposable
    {
        public readonly TorchSharp.Modules.Embedding Source = nn.Embedding(SourceVocabulary, E), Target = nn.Embedding(TargetVocabulary, E);
        public readonly TorchSharp.Modules.LSTM Encoder = nn.LSTM(E, He, 1, bidirectional: true);
        public readonly TorchSharp.Modules.Linear Bridge = nn.Linear(M, H), Query = nn.Linear(H, A, hasBias: false), Key = nn.Linear(M, A, hasBias: false),
            Combine = nn.Linear(M + H, H, hasBias: false), Output = nn.Linear(H, TargetVocabulary);
        public readonly TorchSharp.Modules.LSTMCell Cell = nn.LSTMCell(E + H, H);
        public readonly TorchSharp.Modules.Parameter V = new(torch.randn(A) * 0.1);

        public IEnumerable<TorchSharp.Modules.Parameter> Parameters() =>
            new nn.Module[] { Source, Target, Encoder, Bridge, Query, Key, Combine, Output, Cell }.SelectMany(m => m.parameters()).Append(V);

        /// <summary>One decoder step: log-probabilities (B, V); updates h, c, feed.</summary>
        public Tensor Step(Tensor previous, ref Tensor h, ref Tensor c, ref Tensor feed, Tensor memory, Tensor keys)
        {
            (h, c) = Cell.call(cat([Target.call(previous), feed], 1), (h, c));
            var e = tanh(keys + Query.call(h).unsqueeze(0)).matmul(V);                       // (S, B)
            var alpha = e.softmax(0L);
            var context = (alpha.unsqueeze(2) * memory).sum(0L);
            feed = tanh(Combine.call(cat([context, h], 1)));
            return Output.call(feed);
        }

        public (Tensor Memory, Tensor Keys, Tensor H0) Encode(Tensor source)
        {
            var (y, hN, _) = Encoder.call(Source.call(source));
            return (y, Key.call(y), tanh(Bridge.call(cat([hN[0], hN[1]], 1))));
        }

        public void Dispose()
        {
            foreach (var m in new nn.Module[] { Source, Target, Encoder, Bridge, Query, Key, Combine, Output, Cell }) m.Dispose();
            V.Dispose();
        }
    }

    /// <summary>One greedy decoder step for 64 rows (the memory encoded beforehand, as in decoding).</summary>
    public static BenchCase DecoderStep(BenchContext ctx)
    {
        var rng = new Random(5);
        var model = Model();
        var state = model.StartDecoding(Words(rng));
        var logp = new float[B * TargetVocabulary];
        var weights = new float[B * S];
        var previous = Enumerable.Range(0, B).Select(_ => rng.Next(4, TargetVocabulary)).ToArray();
        Action ours = () => model.DecodeStep(logp, weights, state, previous);

        var tm = new TorchModel();
        var srcIds = torch.tensor(Words(rng).SelectMany(w => w).Select(i => (long)i).ToArray(), [B, S]).t().contiguous();
        Tensor memory, keys, h, c, feed;
        using (torch.no_grad())
        {
            (memory, keys, h) = tm.Encode(srcIds);
            c = torch.zeros(B, H); feed = torch.zeros(B, H);
        }
        var prev = torch.tensor(previous.Select(i => (long)i).ToArray());
        Action theirs = () =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            Tensor hh = h, cc = c, ff = feed;
            tm.Step(prev, ref hh, ref cc, ref ff, memory, keys).log_softmax(1);
        };
        return new BenchCase(DecoderStepName, StepFlops, DecoderStepFormula, ours, theirs, ctx.Settings(), ctx.Threads,
            resources: new Cases.Disposables(tm, srcIds, memory, keys, h, c, feed, prev));
    }

    /// <summary>One teacher-forced training step (forward, token cross-entropy, backward, Adam) on 64 pairs.</summary>
    public static BenchCase TrainStep(BenchContext ctx)
    {
        var rng = new Random(6);
        var model = Model();
        var data = new Seq2SeqDataset();
        var words = Words(rng);
        var targets = words.Select(_ => Enumerable.Range(0, T - 1).Select(_ => rng.Next(4, TargetVocabulary)).ToArray()).ToArray();
        for (int b = 0; b < B; b++) data.Add(words[b], targets[b]);
        var batch = new Seq2SeqBatch();
        Seq2SeqTrainer.Fill(batch, model, data, [.. Enumerable.Range(0, B)]);
        var adam = new Adam(model.Parameters, 1e-3f);
        var logits = new float[T * B * TargetVocabulary]; var dLogits = new float[logits.Length];
        Action ours = () =>
        {
            adam.ZeroGradients();
            model.Forward(logits, batch, training: true);
            Seq2SeqTrainer.TokenCrossEntropy(logits, batch.DecoderOutput.AsSpan(0, T * B), TargetVocabulary, dLogits);
            model.Backward(dLogits);
            adam.Step();
        };

        var tm = new TorchModel();
        var optimizer = torch.optim.Adam(tm.Parameters(), 1e-3);
        var srcIds = torch.tensor(words.SelectMany(w => w).Select(i => (long)i).ToArray(), [B, S]).t().contiguous();
        var decIn = torch.tensor(batch.DecoderInput.AsSpan(0, T * B).ToArray().Select(i => (long)i).ToArray(), [T, B]);
        var decOut = torch.tensor(batch.DecoderOutput.AsSpan(0, T * B).ToArray().Select(i => (long)i).ToArray(), [T * B]);
        Action theirs = () =>
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var (memory, keys, h) = tm.Encode(srcIds);
            var c = torch.zeros(B, H); var feed = torch.zeros(B, H);
            var steps = new List<Tensor>();
            for (int t = 0; t < T; t++) steps.Add(tm.Step(decIn[t], ref h, ref c, ref feed, memory, keys));
            var loss = nn.functional.cross_entropy(stack(steps).view(T * B, TargetVocabulary), decOut);
            loss.backward();
            optimizer.step();
        };
        double flops = 3 * (EncoderFlops + MemoryFlops + T * StepFlops);
        return new BenchCase(TrainStepName, flops, TrainStepFormula, ours, theirs, ctx.Settings(), ctx.Threads,
            resources: new Cases.Disposables(tm, srcIds, decIn, decOut));
    }
}
