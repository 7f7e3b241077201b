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
        var model = new SequenceModel(new SequenceModelConfig
        {
            VocabularySize = 50, EmbeddingSize = 8, HiddenSize = 16, Layers = 2, Bidirectional = true, Pooling = pooling, Dropout = 0.3f, Outputs = 1,
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
        using (Gemm.LimitThreads(1)) // on one thread every allocation shows on this thread's counter
        {
            foreach (var batch in batches) Step(batch); // warm-up: packed-weight spares, JIT
            long before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var batch in batches) Step(batch);
            Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before, "bytes allocated by three steps in steady state");
        }
    }
}
