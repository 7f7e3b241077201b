using DeepSeq.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromTextFile<Review>("train.tsv", hasHeader: true);
var test = ml.Data.LoadFromTextFile<Review>("test.tsv", hasHeader: true);

var pipeline = ml.DeepSeq().TokenizeText("Tokens", "Text", maximumVocabularySize: 20_000)
    .Append(ml.DeepSeq().BinaryClassification(new SequenceBinaryClassificationTrainer.Options
    {
        FeatureColumnName = "Tokens", Cell = SequenceCell.Lstm, HiddenSize = 64, Bidirectional = true,
        Pooling = PoolingMode.MaxMean, Epochs = 4,
        ValidationFraction = 0.1f, // held out inside Fit: early stopping, the best epoch's weights kept
        Progress = new Progress<SequenceTrainingProgress>(p =>
        {
            if (p.Batch == p.Batches) Console.WriteLine($"epoch {p.Epoch}: loss {p.Loss:F4}, validation accuracy {p.ValidationMetric:F3}");
        }),
    }));
var model = pipeline.Fit(train);
var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
Console.WriteLine($"accuracy {metrics.Accuracy:F3}, AUC {metrics.AreaUnderRocCurve:F3}");

ml.Model.Save(model, train.Schema, "model.zip");
var loaded = ml.Model.Load("model.zip", out _);
var trained = ml.DeepSeq().GetTrainedModel(loaded); // architecture, class names, weights by name, training report
Console.WriteLine($"{trained.Architecture.Cell} × {trained.Architecture.HiddenSize}, {trained.Weights.Count} weight tensors");

public sealed class Review
{
    [LoadColumn(0)] public string Text = "";
    [LoadColumn(1)] public bool Label;
}
