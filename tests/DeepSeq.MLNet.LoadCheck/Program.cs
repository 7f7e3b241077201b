// Usage: DeepSeq.MLNet.LoadCheck MODEL.zip TEXT...    loads a binary model with the standard mlContext.Model.Load and
//                                                     prints, per text, the bits of Score and Probability and the label
//        DeepSeq.MLNet.LoadCheck --inspect MODEL.zip  prints what a fresh process reads back: the trained model
//                                                     (mlContext.DeepSeq().GetTrainedModel) and Score's slot names
//        DeepSeq.MLNet.LoadCheck --seq2seq MODEL.zip SOURCE...  loads a sequence-to-sequence model and prints, per
//                                                     source text, the translation and the bits of Score
using DeepSeq.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

var ml = new MLContext();
if (args[0] == "--inspect")
{
    var loaded = ml.Model.Load(args[1], out var inputSchema);
    var trained = ml.DeepSeq().GetTrainedModel(loaded);
    var a = trained.Architecture;
    Console.WriteLine($"task {trained.Task}; cell {a.Cell}; hidden {a.HiddenSize}; pooling {a.Pooling}; classes {string.Join('|', trained.ClassNames)}");
    Console.WriteLine($"weights {trained.Weights.Count}: {trained.Weights.Sum(w => w.Value.Length)} values, checksum {trained.Weights.Sum(w => w.Value.Span.ToArray().Sum(x => (double)x)):R}");
    var score = loaded.GetOutputSchema(inputSchema)["Score"];
    VBuffer<ReadOnlyMemory<char>> slots = default;
    if (score.Annotations.Schema.GetColumnOrNull("SlotNames") is not null) score.Annotations.GetValue("SlotNames", ref slots);
    Console.WriteLine($"slots {string.Join('|', slots.DenseValues())}");
    return;
}

if (args[0] == "--seq2seq")
{
    var translator = ml.Model.CreatePredictionEngine<SourceRow, TranslationRow>(ml.Model.Load(args[1], out _));
    foreach (var text in args.Skip(2))
    {
        var t = translator.Predict(new SourceRow { Source = text });
        Console.WriteLine($"{t.Translation} {BitConverter.SingleToInt32Bits(t.Score):X8}");
    }
    return;
}

var model = ml.Model.Load(args[0], out _);
var engine = ml.Model.CreatePredictionEngine<Input, Output>(model);
foreach (var text in args.Skip(1))
{
    var p = engine.Predict(new Input { Text = text });
    Console.WriteLine($"{BitConverter.SingleToInt32Bits(p.Score):X8} {BitConverter.SingleToInt32Bits(p.Probability):X8} {p.PredictedLabel}");
}

sealed class Input { public string Text = ""; public bool Label = false; }
sealed class Output { public float Score = float.NaN; public float Probability = float.NaN; public bool PredictedLabel = false; } // filled by ML.NET
sealed class SourceRow { public string Source = ""; public string Target = ""; }
sealed class TranslationRow { public string Translation = ""; public float Score = float.NaN; } // filled by ML.NET
