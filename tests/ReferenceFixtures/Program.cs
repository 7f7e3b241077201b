// Writes the parity fixtures used by DeepSeq.Core.Tests (RecurrentParityTests): small recurrent networks with
// random weights, run by independent implementations —
//   • libtorch 2.10 through TorchSharp-cpu 0.107.0: nn.RNN / nn.LSTM / nn.GRU on packed variable-length batches
//     (outputs, final states, every parameter gradient and the input/state gradients by autograd);
//   • the same equations written in plain torch ops with autograd, for the cells libtorch lacks (peephole and
//     coupled LSTM, GRU with the reset before the recurrent matmul);
//   • ONNX Runtime's LSTM and GRU operators (outputs and final states) for peephole (P), coupled
//     (input_forget = 1) and both GRU reset placements (linear_before_reset).
// and, in classifier/, the whole classifier (embedding → 2-layer bidirectional LSTM → each pooling → dense head)
// trained for five torch.optim.Adam steps on one batch in libtorch, float64: the loss of each step, the final weights.
// and, in seq2seq/, an encoder–decoder with additive attention over a padded batch (Seq2SeqReference.cs).
// Usage: dotnet run -c Release --project tests/ReferenceFixtures [-- OUTPUT_DIR]
using System.Text.Json;
using DeepSeq.Bench;
using DeepSeq.Fixtures;

LibTorchSharpFix.Apply();
string output = args.Length > 0 ? args[0] : Path.Combine(FindRepositoryRoot(), "tests", "DeepSeq.Core.Tests", "Fixtures");
Directory.CreateDirectory(output);

var cases = new List<FixtureCase>
{
    new("rnn_tanh", "rnn") { },
    new("rnn_relu_stacked_bidirectional", "rnn") { RnnActivation = "relu", Layers = 2, Bidirectional = true },
    new("lstm", "lstm"),
    new("lstm_stacked_bidirectional", "lstm") { Layers = 2, Bidirectional = true },
    new("gru", "gru"),
    new("gru_stacked_bidirectional", "gru") { Layers = 2, Bidirectional = true },
    new("lstm_peephole_all", "lstm") { Peepholes = ["input", "forget", "output"] },
    new("lstm_peephole_input_output", "lstm") { Peepholes = ["input", "output"] },
    new("lstm_peephole_forget", "lstm") { Peepholes = ["forget"] },
    new("lstm_coupled", "lstm") { Coupled = true },
    new("lstm_coupled_peephole_input_output", "lstm") { Coupled = true, Peepholes = ["input", "output"] },
    new("gru_reset_before", "gru") { GruReset = "before" },
};

var options = new JsonSerializerOptions { WriteIndented = false, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
int seed = 100;
foreach (var c in cases)
{
    var data = FixtureData.Create(c, seed++);
    bool native = c.Peepholes.Length == 0 && !c.Coupled && c.GruReset == "after";
    var torchResult = native ? TorchReference.RunModule(c, data) : TorchReference.RunManual(c, data);
    Write(Path.Combine(output, c.Name + ".json"), c, data, torchResult);
    if (c.Layers == 1 && !c.Bidirectional && c.Kind != "rnn")
    {
        var ortResult = OnnxReference.Run(c, data);
        Write(Path.Combine(output, c.Name + ".onnxruntime.json"), c, data, ortResult);
    }
}

var classifiers = new List<ClassifierCase>
{
    new("last", "last", "binary_cross_entropy_with_logits"),
    new("mean", "mean", "softmax_cross_entropy"),
    new("max", "max", "binary_cross_entropy_with_logits"),
    new("max_mean", "max_mean", "softmax_cross_entropy"),
    new("attention", "attention", "binary_cross_entropy_with_logits"),
};
Directory.CreateDirectory(Path.Combine(output, "classifier"));
seed = 200;
foreach (var c in classifiers)
{
    var data = ClassifierData.Create(c, seed++);
    var result = ClassifierReference.Run(c, data);
    var doc = new Dictionary<string, object?>
    {
        ["name"] = c.Name, ["source"] = result.Source, ["pooling"] = c.Pooling, ["loss"] = c.Loss,
        ["vocabulary_size"] = c.VocabularySize, ["embedding_size"] = c.EmbeddingSize, ["cell"] = "lstm", ["hidden_size"] = c.HiddenSize,
        ["layers"] = c.Layers, ["bidirectional"] = c.Bidirectional, ["attention_size"] = c.AttentionSize, ["outputs"] = c.Outputs,
        ["steps"] = c.Steps, ["batch"] = c.Batch, ["lengths"] = c.Lengths, ["tokens"] = data.Tokens,
        ["targets"] = data.Targets, ["labels"] = data.Labels,
        ["adam"] = new Dictionary<string, double> { ["lr"] = c.LearningRate, ["beta1"] = c.Beta1, ["beta2"] = c.Beta2, ["eps"] = c.Epsilon },
        ["adam_steps"] = c.AdamSteps, ["losses"] = result.Losses,
        ["initial_parameters"] = data.Parameters, ["final_parameters"] = result.Final,
    };
    var path = Path.Combine(output, "classifier", c.Name + ".json");
    File.WriteAllText(path, JsonSerializer.Serialize(doc, options));
    Console.WriteLine($"classifier/{c.Name}.json: {result.Source}");
}
ConvolutionReference.Write(Path.Combine(output, "cnn"), options);

Seq2SeqFixtures.Write(Path.Combine(output, "seq2seq"), options);

void Write(string path, FixtureCase c, FixtureData d, ReferenceResult r)
{
    var doc = new Dictionary<string, object?>
    {
        ["name"] = c.Name, ["source"] = r.Source, ["cell"] = c.Kind, ["rnn_activation"] = c.RnnActivation,
        ["peepholes"] = c.Peepholes, ["coupled"] = c.Coupled, ["gru_reset"] = c.GruReset,
        ["input_size"] = c.InputSize, ["hidden_size"] = c.HiddenSize, ["layers"] = c.Layers, ["bidirectional"] = c.Bidirectional,
        ["steps"] = c.Steps, ["batch"] = c.Batch, ["lengths"] = c.Lengths,
        ["x"] = d.X, ["h0"] = d.H0, ["c0"] = c.Kind == "lstm" ? d.C0 : null, ["parameters"] = d.Parameters,
        ["dy"] = d.Dy, ["dh_t"] = d.DhT, ["dc_t"] = c.Kind == "lstm" ? d.DcT : null,
        ["y"] = r.Y, ["h_t"] = r.HT, ["c_t"] = r.CT, ["gradients"] = r.Gradients,
    };
    File.WriteAllText(path, JsonSerializer.Serialize(doc, options));
    Console.WriteLine($"{Path.GetFileName(path)}: {r.Source}");
}

static string FindRepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "DeepSeq.MLNet.sln"))) return dir.FullName;
    throw new DirectoryNotFoundException("Run from inside the repository, or pass the output folder.");
}
