using DeepSeq.Core.Layers;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using DeepSeq.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeq.Bench;

/// <summary>
/// The IMDB sentiment model's shape (the sample's defaults): embedding 20,000 words (+ id 0, unknown/padding)
/// × 128, a bidirectional LSTM of 128 units per direction, max + mean pooling over each review's own length,
/// dropout 0.5 on the embeddings and before the output layer, one logit, BCE-with-logits, Adam (2e-3),
/// gradient clipping to global norm 1 (as DeepSeq's trainer does by default; the same in TorchSharp).
/// </summary>
static class ImdbCases
{
    public const int Vocabulary = SyntheticReviews.VocabularySize + 1, Embedding = 128, Hidden = 128, Batch = 64, Steps = 200, MaxLength = 400;
    public const string TrainStepName = "IMDB train step V20001 E128 BiLSTM H128 B64 T200";
    public const string ScoringFromTextName = "IMDB scoring: Transform from text vs torch B64";
    public const string ScoringFromKeysName = "IMDB scoring: Transform from token keys vs torch B64";

    // Per token: the BiLSTM's GEMMs, 2 directions × 4 gates × H × (E + H) multiply-adds. The embedding (a copy),
    // pooling, the 512 → 1 output layer and (in training) Adam and clipping are not counted: they are small or
    // memory-bound next to this.
    const double FlopsPerToken = 2.0 * 2 * 4 * Hidden * (Embedding + Hidden);

    /// <summary>One training step on 64 sequences of 200 tokens (all of length 200: no padding on either side).</summary>
    public static BenchCase TrainStep(BenchContext ctx)
    {
        var (ids, targets) = TrainData();
        var ours = DeepSeqTrainStep(ids, targets);
        var (theirs, resources) = TorchTrainStep(ids, targets);
        // Forward + backward of the BiLSTM (dX included: the embedding needs it) = 3 × the forward GEMMs.
        return new BenchCase(TrainStepName, 3 * FlopsPerToken * Steps * Batch,
            "3 × 2·T·B·2·4H·(E+H): BiLSTM forward + backward (dX, dW_ih, dh, dW_hh) GEMMs; embedding, pooling, head, clipping, Adam not counted",
            ours, theirs, ctx.Settings(quickRepetitions: 2), ctx.Threads, resources: resources);
    }

    /// <summary>The training step's batch: token ids (T, B), 1 … 20,000 by frequency rank, and targets 0, 1, 0, 1 …</summary>
    public static (int[] Ids, float[] Targets) TrainData()
    {
        var rng = new Random(4);
        var text = new SyntheticReviews();
        var ids = new int[Steps * Batch];
        for (int i = 0; i < ids.Length; i++) ids[i] = text.Rank(rng) + 1;
        var targets = new float[Batch];
        for (int b = 0; b < Batch; b++) targets[b] = b % 2;
        return (ids, targets);
    }

    /// <summary>
    /// DeepSeq's model, optimizer and batch built from <see cref="TrainData"/>, and one training step on them.
    /// Touches no TorchSharp type, so that the DeepSeq-only memory run never loads libtorch.
    /// </summary>
    public static Action DeepSeqTrainStep(int[] ids, float[] targets)
    {
        var model = new SequenceModel(new SequenceModelConfig
        {
            VocabularySize = Vocabulary, EmbeddingSize = Embedding, HiddenSize = Hidden, Bidirectional = true,
            Pooling = PoolingKind.MaxMean, Dropout = 0.5f, Outputs = 1,
        }, seed: 1);
        model.Initialize(new Random(1));
        var parameters = model.Parameters;
        var adam = new Adam(parameters, 2e-3f);
        var batch = new SequenceBatch();
        batch.Reset(Steps, Batch, 0);
        var row = new int[Steps];
        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < Steps; t++) row[t] = ids[t * Batch + b];
            batch.SetTokens(b, row);
        }
        var logits = new float[Batch]; var dLogits = new float[Batch];
        return () =>
        {
            // What SequenceTrainer does per batch.
            model.Forward(logits, batch, training: true);
            Losses.BinaryCrossEntropyWithLogits(logits, targets, dLogits);
            adam.ZeroGradients();
            model.Backward(dLogits);
            GradientClipper.ClipByGlobalNorm(parameters, 1f);
            adam.Step();
        };
    }

    /// <summary>TorchSharp's model, optimizer and tensors built from <see cref="TrainData"/>, one training step on them, and what to dispose.</summary>
    public static (Action Step, IDisposable Resources) TorchTrainStep(int[] ids, float[] targets)
    {
        var net = new ImdbTorchNet(Vocabulary, Embedding, Hidden) { Pack = false };
        net.train();
        var tokens = torch.tensor(ids.Select(i => (long)i).ToArray(), [Steps, Batch]);
        var lengths = torch.full([Batch], Steps, ScalarType.Int64);
        var tTargets = torch.tensor(targets);
        var tParameters = net.parameters().ToList();
        var optimizer = torch.optim.Adam(tParameters, 2e-3);
        Action step = () =>
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.binary_cross_entropy_with_logits(net.call(tokens, lengths), tTargets);
            loss.backward();
            nn.utils.clip_grad_norm_(tParameters, 1.0);
            optimizer.step();
        };
        return (step, new Cases.Disposables(tokens, lengths, tTargets, net));
    }

    public sealed class ReviewRow
    {
        public string Text = "";
        public bool Label;
    }

    /// <summary>A trained pipeline and the reviews to score, shared by both scoring cases of one run.</summary>
    sealed class ScoringSetup
    {
        public required MLContext Ml;
        public required TransformerChain<SequenceModelTransformer> Model;
        public required IDataView Texts, Tokens;
        public required int[][] Ids;   // per review, cut as the model cuts (first 400 tokens)
        public required long UsedTokens;
    }

    static ScoringSetup? s_setup;

    static ScoringSetup Setup(BenchContext ctx)
    {
        if (s_setup is not null) return s_setup;
        var text = new SyntheticReviews();
        var rng = new Random(3);
        var ml = new MLContext(seed: 1);
        // The ML.NET pipeline of the sample's shape, fitted for one epoch on 64 rows only to obtain a trained
        // transformer: scoring speed does not depend on the weights' values. Two rows that list the whole
        // vocabulary give the tokenizer exactly 20,000 words (embedding 20,001 × 128, as the IMDB model).
        var train = new List<ReviewRow> { new() { Text = text.Dictionary(), Label = true }, new() { Text = text.Dictionary(), Label = false } };
        for (int i = 0; i < 62; i++) train.Add(new ReviewRow { Text = text.Review(rng), Label = i % 2 == 0 });
        var pipeline = ml.DeepSeq().TokenizeText("Tokens", "Text", maximumVocabularySize: SyntheticReviews.VocabularySize)
            .Append(ml.DeepSeq().BinaryClassification(new SequenceBinaryClassificationTrainer.Options
            {
                LabelColumnName = "Label", FeatureColumnName = "Tokens", Cell = SequenceCell.Lstm, EmbeddingSize = Embedding,
                HiddenSize = Hidden, Bidirectional = true, Pooling = PoolingMode.MaxMean, Dropout = 0.5f, MaxLength = MaxLength,
                Epochs = 1, Seed = 1,
            }));
        var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train));
        if (model.LastTransformer.Model.Architecture.VocabularySize != Vocabulary)
            throw new InvalidOperationException($"The fitted model has {model.LastTransformer.Model.Architecture.VocabularySize} embedding rows, not {Vocabulary}.");

        int n = ctx.Quick ? 128 : 512;
        var reviews = Enumerable.Range(0, n).Select(_ => new ReviewRow { Text = text.Review(rng) }).ToList();
        var texts = ml.Data.LoadFromEnumerable(reviews);
        var tokens = ml.Data.Cache(model.First().Transform(texts)); // the tokenizer's output, computed once
        var ids = new int[n][];
        long used = 0;
        using (var cursor = tokens.GetRowCursor([tokens.Schema["Tokens"]]))
        {
            var getter = cursor.GetGetter<VBuffer<uint>>(tokens.Schema["Tokens"]);
            VBuffer<uint> keys = default;
            for (int r = 0; cursor.MoveNext(); r++)
            {
                getter(ref keys);
                var all = keys.DenseValues().ToArray();
                var (take, skip) = SequenceBatch.Cut(all.Length, MaxLength, keepEnd: false);
                ids[r] = all.Skip(skip).Take(take).Select(k => (int)k).ToArray(); // key k is embedding row k (0 = unknown)
                used += take;
            }
        }
        return s_setup = new ScoringSetup { Ml = ml, Model = model, Texts = texts, Tokens = tokens, Ids = ids, UsedTokens = used };
    }

    /// <summary>
    /// Scoring throughput: ML.NET <c>Transform</c> consumed fully (Score and Probability of every row; DeepSeq
    /// reads 256 rows ahead and scores them in batches of 64 of similar lengths, each review at its own length) —
    /// from the review text (tokenizing included) or from the
    /// token keys (cached) — beside TorchSharp, eval mode and no grad, on the same token ids in batches of 64
    /// in the same order, packed (pack_padded_sequence) so that each review is also read at its own length.
    /// </summary>
    public static BenchCase Scoring(BenchContext ctx, bool fromText)
    {
        var s = Setup(ctx);
        int n = s.Ids.Length;
        var transformer = fromText ? (ITransformer)s.Model : s.Model.LastTransformer;
        var input = fromText ? s.Texts : s.Tokens;
        double sink = 0;
        Action ours = () =>
        {
            var scored = transformer.Transform(input);
            var score = scored.Schema["Score"]; var probability = scored.Schema["Probability"];
            using var cursor = scored.GetRowCursor([score, probability]);
            var getScore = cursor.GetGetter<float>(score); var getProbability = cursor.GetGetter<float>(probability);
            float sc = 0, p = 0;
            int rows = 0;
            while (cursor.MoveNext()) { getScore(ref sc); getProbability(ref p); sink += sc + p; rows++; }
            if (rows != n) throw new InvalidOperationException($"Scored {rows} rows, expected {n}.");
        };

        var net = new ImdbTorchNet(Vocabulary, Embedding, Hidden) { Pack = true };
        net.eval();
        var probabilities = new float[n];
        Action theirs = () =>
        {
            using var noGrad = torch.no_grad();
            for (int start = 0; start < n; start += Batch)
            {
                using var scope = torch.NewDisposeScope();
                int b = Math.Min(Batch, n - start), steps = 0;
                for (int i = 0; i < b; i++) steps = Math.Max(steps, s.Ids[start + i].Length);
                var padded = new long[steps * b]; var lengths = new long[b]; // (T, B), 0 = padding
                for (int i = 0; i < b; i++)
                {
                    var row = s.Ids[start + i];
                    lengths[i] = row.Length;
                    for (int t = 0; t < row.Length; t++) padded[t * b + i] = row[t];
                }
                var p = torch.sigmoid(net.call(torch.tensor(padded, [steps, b]), torch.tensor(lengths)));
                p.data<float>().CopyTo(probabilities, start);
            }
            sink += probabilities[0];
        };
        double meanLength = (double)s.UsedTokens / n;
        return new BenchCase(fromText ? ScoringFromTextName : ScoringFromKeysName, FlopsPerToken * s.UsedTokens,
            $"Σ over rows of 2·L·2·4H·(E+H): BiLSTM forward GEMMs, L = review length cut at {MaxLength} (mean {meanLength:F0} tokens here); pooling, head not counted",
            ours, theirs, ctx.Quick ? MeasureSettings.Quick(1, 2) : MeasureSettings.Full(1, 7), ctx.Threads, rows: n, resources: net);
    }
}

/// <summary>The IMDB model in TorchSharp: the same layers as DeepSeq's <see cref="SequenceModel"/>, masked pooling in torch ops.</summary>
sealed class ImdbTorchNet : nn.Module<Tensor, Tensor, Tensor>
{
    readonly TorchSharp.Modules.Embedding embedding;
    readonly TorchSharp.Modules.Dropout inputDropout, headDropout;
    readonly TorchSharp.Modules.LSTM lstm;
    readonly TorchSharp.Modules.Linear head;

    public ImdbTorchNet(int vocabulary, int embeddingSize, int hidden) : base(nameof(ImdbTorchNet))
    {
        embedding = nn.Embedding(vocabulary, embeddingSize, padding_idx: 0);
        inputDropout = nn.Dropout(0.5);
        lstm = nn.LSTM(embeddingSize, hidden, 1, bidirectional: true);
        headDropout = nn.Dropout(0.5);
        head = nn.Linear(4 * hidden, 1);
        RegisterComponents();
    }

    /// <summary>Run the LSTM on a packed batch (each sequence at its own length) instead of the padded one.</summary>
    public bool Pack { get; init; }

    /// <summary>Logits (B) from token ids (T, B) and lengths (B).</summary>
    public override Tensor forward(Tensor tokens, Tensor lengths)
    {
        long steps = tokens.shape[0];
        var x = inputDropout.call(embedding.call(tokens));                         // (T, B, E)
        Tensor y;
        if (Pack)
        {
            using var packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first: false, enforce_sorted: false);
            var (output, _, _) = lstm.call(packed);
            using (output) y = nn.utils.rnn.pad_packed_sequence(output, batch_first: false, total_length: steps).Item1;
        }
        else y = lstm.call(x).Item1;                                                 // (T, B, 2H)
        var mask = torch.arange(steps).unsqueeze(1).lt(lengths.unsqueeze(0)).unsqueeze(2); // (T, B, 1): step < length
        var max = y.masked_fill(mask.logical_not(), float.NegativeInfinity).amax([0L]);
        var mean = (y * mask.to_type(ScalarType.Float32)).sum(0L) / lengths.unsqueeze(1).to_type(ScalarType.Float32);
        var pooled = torch.cat([max, mean], 1);                                      // (B, 4H): [max; mean]
        return head.call(headDropout.call(pooled)).squeeze(1);
    }
}
