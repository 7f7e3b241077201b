// Usage: DeepSeq.MLNet.LoadCheck MODEL.zip TEXT...
// Loads the model with the standard mlContext.Model.Load and prints, per text, the bits of Score and Probability.
using Microsoft.ML;
using Microsoft.ML.Data;

var ml = new MLContext();
var model = ml.Model.Load(args[0], out _);
var engine = ml.Model.CreatePredictionEngine<Input, Output>(model);
foreach (var text in args.Skip(1))
{
    var p = engine.Predict(new Input { Text = text });
    Console.WriteLine($"{BitConverter.SingleToInt32Bits(p.Score):X8} {BitConverter.SingleToInt32Bits(p.Probability):X8} {p.PredictedLabel}");
}

sealed class Input { public string Text = ""; public bool Label = false; }
sealed class Output { public float Score = float.NaN; public float Probability = float.NaN; public bool PredictedLabel = false; } // filled by ML.NET
