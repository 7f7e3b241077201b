using DeepSeq.Core.Kernels;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

namespace DeepSeq.Core.Tests;

[TestClass]
public sealed class WorkspaceTests
{
    [TestMethod]
    [DataRow(PoolingKind.MaxMean)]
    [DataRow(PoolingKind.Attention)]
    [DataRow(PoolingKind.Last)]
    public void ATrainingStepAllocatesNothingOnceReserved(PoolingKind pooling)
    {
        var (step, batches) = Steps(pooling);
        // On one thread every allocation of a step shows on this thread's counter. Beside the other test classes, this
        // thread's counter has also moved now and then outside the step (1,544 bytes in one pass, in about one full
        // suite run of ten; never in 10,000 passes of the same steps alone). A step's own allocation would show in
        // every pass, so the least of five passes must be 0.
        var passes = new long[5];
        using (Gemm.LimitThreads(1))
        {
            foreach (var batch in batches) step(batch); // warm-up: packed-weight spares, JIT
            for (int r = 0; r < passes.Length; r++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                foreach (var batch in batches) step(batch);
                passes[r] = GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }
        Assert.AreEqual(0, passes.Min(), $"bytes allocated by three steps in steady state, per pass: {string.Join(", ", passes)}");
    }

    // On two threads the work runs on the worker pool too, so the count that matters is the process's. The test
    // runs alone, but the test host's own threads still allocate now and then (168 bytes every 100 ms or so, and
    // bursts: measured on an idle host). So each round is one step, short, and the least of the rounds must be 0 —
    // an allocation of the step itself would show in every round; this thread's own count must be 0 in every round.
    [TestMethod]
    [DoNotParallelize]
    [DataRow(PoolingKind.MaxMean, true, 16, 8)]    // the two directions side by side
    [DataRow(PoolingKind.Attention, false, 256, 64)] // multiplies and weight packing split over the threads
    public void ATrainingStepAllocatesNothingOnceReservedOnTwoThreads(PoolingKind pooling, bool bidirectional, int hidden, int embedding)
    {
        var (step, batches) = Steps(pooling, bidirectional, hidden, embedding);
        int next = 0;
        AssertAStepAllocatesNothingOnTwoThreads(() => step(batches[next++ % batches.Length]), warmUpSteps: batches.Length);
    }

    // A residual CNN's step: convolutions (direct and im2col) in chunks over the pool, batch norm, the ReLU family, SGD.
    [TestMethod]
    [DoNotParallelize]
    public void AResidualCnnTrainingStepAllocatesNothingOnOneThreadOrTwo()
    {
        var config = ImageClassifierConfig.ForDepth(8, 12, 12, 1, 10) with { StageWidths = [4, 8, 16] };
        var model = new ImageClassifier(config, 1);
        model.Initialize(new Random(1));
        var sgd = new Sgd(model.Parameters, 0.01f, 0.9f, nesterov: true, weightDecay: 5e-4f);
        int n = 64; // 144 positions an image at the first stage: 3 chunks, run on the pool
        var images = GradientCheck.Random(n * 12 * 12, new Random(2));
        var logits = new float[n * 10];
        void Step()
        {
            model.Forward(logits, images, n, training: true);
            sgd.ZeroGradients();
            model.Backward(logits);
            sgd.Step();
        }
        using (Gemm.LimitThreads(1))
        {
            Step();
            long before = GC.GetAllocatedBytesForCurrentThread();
            Step(); Step();
            Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before, "bytes allocated by two steps on one thread");
        }
        AssertAStepAllocatesNothingOnTwoThreads(Step, warmUpSteps: 1);
    }

    static void AssertAStepAllocatesNothingOnTwoThreads(Action step, int warmUpSteps)
    {
        int saved = Gemm.MaxThreads;
        var process = new long[20];
        var thread = new long[process.Length];
        try
        {
            Gemm.MaxThreads = 2;
            for (int r = 0; r < warmUpSteps; r++) step();
            for (int r = 0; r < process.Length; r++)
            {
                long before = GC.GetTotalAllocatedBytes(precise: true), mine = GC.GetAllocatedBytesForCurrentThread();
                step();
                thread[r] = GC.GetAllocatedBytesForCurrentThread() - mine;
                process[r] = GC.GetTotalAllocatedBytes(precise: true) - before;
            }
        }
        finally { Gemm.MaxThreads = saved; }
        Assert.AreEqual(0, thread.Max(), $"bytes allocated by this thread per step: {string.Join(", ", thread)}");
        Assert.AreEqual(0, process.Min(), $"bytes allocated in the process per step: {string.Join(", ", process)}");
    }

    // A two-layer model and the step of training it on three batches.
    static (Action<SequenceBatch> Step, SequenceBatch[] Batches) Steps(PoolingKind pooling, bool bidirectional = true, int hidden = 16, int embedding = 8)
    {
        var model = new SequenceModel(new SequenceModelConfig
        {
            VocabularySize = 50, EmbeddingSize = embedding, HiddenSize = hidden, Layers = 2, Bidirectional = bidirectional, Pooling = pooling, Dropout = 0.3f, Outputs = 1,
        });
        model.Initialize(new Random(1));
        var parameters = model.Parameters;
        var adam = new Adam(parameters, 1e-3f);
        var rng = new Random(2);
        var batches = new SequenceBatch[3];
        for (int k = 0; k < batches.Length; k++)
        {
            // Shapes vary from batch to batch, as length bucketing makes them, within the reserved maximum.
            int b = 4 + k, t = 10 - k;
            batches[k] = new SequenceBatch();
            batches[k].Reset(t, b, 0);
            for (int r = 0; r < b; r++) batches[k].SetTokens(r, [.. Enumerable.Range(0, 1 + rng.Next(t)).Select(_ => rng.Next(50))]);
        }
        var logits = new float[8];
        var dLogits = new float[8];
        model.Reserve(10, 8);
        void Step(SequenceBatch batch)
        {
            var z = logits.AsSpan(0, batch.Count);
            model.Forward(z, batch, training: true);
            z.CopyTo(dLogits);
            adam.ZeroGradients();
            model.Backward(dLogits.AsSpan(0, batch.Count));
            GradientClipper.ClipByGlobalNorm(parameters, 1f);
            adam.Step();
        }
        return (Step, batches);
    }
}
