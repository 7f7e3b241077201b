// Trains a small bidirectional LSTM classifier (dropout, weight averaging, validation) on synthetic data with
// one thread, then prints one line per epoch and the SHA-256 of every final tensor's bits:
//   DeepSeq.TrainingCheck [checkpoint-path]
// With a path, checkpoints are written every 3 steps and at every epoch end, and an existing checkpoint is
// resumed. The kill-and-resume test kills one run with SIGKILL and compares the resumed run with an
// uninterrupted one.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Models;
using DeepSeq.Core.Training;

string? checkpoint = args.Length > 0 ? args[0] : null;
var model = new SequenceModel(new SequenceModelConfig
{
    VocabularySize = 12, EmbeddingSize = 16, HiddenSize = 24, Bidirectional = true, Dropout = 0.3f, Pooling = PoolingKind.MaxMean,
}, seed: 7);
model.Initialize(new Random(7));
var report = SequenceTrainer.Train(model, SequenceTask.BinaryClassification, Data(1500, 1), Data(200, 2), new SequenceTrainingOptions
{
    Epochs = 3, BatchSize = 16, LearningRate = 0.005f, Seed = 11, NumberOfThreads = 1, WeightAveraging = 0.99f, EarlyStoppingPatience = 0,
    Schedule = LearningRateSchedule.Cosine(0.1f, warmupSteps: 20), MaxLength = 60,
    CheckpointPath = checkpoint, CheckpointEverySteps = 3, CheckpointEveryEpochs = 1,
});
foreach (var e in report.Epochs)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {e.Epoch} loss {e.TrainLoss:R} metric {e.ValidationMetric:R}"));
Console.WriteLine($"best {report.BestEpoch} steps {report.Steps} resumed {report.ResumedAtStep?.ToString(CultureInfo.InvariantCulture) ?? "no"}");
using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
foreach (var (name, tensor) in model.NamedTensors())
{
    sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
    sha.AppendData(MemoryMarshal.AsBytes(tensor.Data.AsSpan()));
}
Console.WriteLine($"weights {Convert.ToHexString(sha.GetHashAndReset())}");

// Label 1 when token 1 occurs more often than token 2; lengths 5 … 59.
static SequenceDataset Data(int count, int seed)
{
    var rng = new Random(seed);
    var rows = new List<int[]>(); var labels = new List<float>();
    for (int i = 0; i < count; i++)
    {
        var seq = Enumerable.Range(0, rng.Next(5, 60)).Select(_ => rng.Next(1, 12)).ToArray();
        int ones = seq.Count(t => t == 1), twos = seq.Count(t => t == 2);
        rows.Add(seq); labels.Add(ones > twos ? 1f : 0f);
    }
    return SequenceDataset.FromTokens(rows, labels);
}
