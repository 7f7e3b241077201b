using System.Text.Json;
using DeepSeq.Core.Layers;
using DeepSeq.Core.Layers.Recurrent;

namespace DeepSeq.Core.Tests;

/// <summary>
/// Outputs, final states and every gradient against independent implementations: libtorch (TorchSharp-cpu,
/// float64) and ONNX Runtime. The fixtures come from tests/ReferenceFixtures (see Fixtures/README.md); weights
/// are random, so a swapped gate or a wrong convention cannot pass.
/// </summary>
[TestClass]
public sealed class RecurrentParityTests
{
    static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    public static IEnumerable<object[]> Fixtures() =>
        Directory.EnumerateFiles(FixtureDirectory, "*.json").Select(p => new object[] { Path.GetFileNameWithoutExtension(p) }).OrderBy(a => (string)a[0]);

    [TestMethod]
    public void EveryCellVariantHasBothReferences()
    {
        var names = Fixtures().Select(f => (string)f[0]).ToHashSet();
        string[] expected = ["rnn_tanh", "rnn_relu_stacked_bidirectional", "lstm", "lstm_stacked_bidirectional", "gru", "gru_stacked_bidirectional",
            "lstm_peephole_all", "lstm_coupled", "gru_reset_before", "lstm_peephole_all.onnxruntime", "lstm_coupled.onnxruntime",
            "gru_reset_before.onnxruntime", "gru.onnxruntime", "lstm.onnxruntime"];
        foreach (var name in expected) Assert.Contains(name, names, $"fixture {name} is missing");
    }

    [TestMethod]
    [DynamicData(nameof(Fixtures))]
    public void MatchesReference(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, fixture + ".json")));
        var root = doc.RootElement;
        var spec = SpecOf(root);
        int I = root.GetProperty("input_size").GetInt32(), H = root.GetProperty("hidden_size").GetInt32();
        int T = root.GetProperty("steps").GetInt32(), B = root.GetProperty("batch").GetInt32();
        var net = new RecurrentNetwork(spec, I, H, root.GetProperty("layers").GetInt32(), root.GetProperty("bidirectional").GetBoolean());
        var byName = net.NamedParameters().ToDictionary(kv => RecurrentNetwork.TorchName(kv.Key), kv => kv.Value);
        var parameters = root.GetProperty("parameters");
        Assert.HasCount(byName.Count, parameters.EnumerateObject().ToList(), "parameter count");
        foreach (var p in parameters.EnumerateObject()) { Floats(p.Value).CopyTo(byName[p.Name].Value.Data, 0); byName[p.Name].MarkChanged(); }

        bool lstm = spec.Kind == RecurrentCellKind.Lstm;
        int[] lengths = [.. root.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32())];
        var x = Floats(root.GetProperty("x"));
        var h0 = Floats(root.GetProperty("h0"));
        var c0 = lstm ? Floats(root.GetProperty("c0")) : null;
        var y = new float[T * B * net.OutputSize];
        var hT = new float[net.StateLength(B)];
        var cT = new float[hT.Length];
        net.Forward(x, T, B, lengths, h0, c0, y, hT, lstm ? cT : default, training: false);

        string source = root.GetProperty("source").GetString()!;
        // The reference may run in float64: 1e-4 relative with a 1e-5 absolute floor.
        const double rel = 1e-4, abs = 1e-5;
        GradientCheck.AssertClose(Floats(root.GetProperty("y")), y, rel, abs, $"{fixture} y vs {source}");
        GradientCheck.AssertClose(Floats(root.GetProperty("h_t")), hT, rel, abs, $"{fixture} h_T");
        if (lstm) GradientCheck.AssertClose(Floats(root.GetProperty("c_t")), cT, rel, abs, $"{fixture} c_T");

        var gradients = root.GetProperty("gradients");
        if (gradients.ValueKind == JsonValueKind.Null) return; // ONNX Runtime: outputs only
        foreach (var p in net.Parameters) p.ZeroGradient();
        var dx = new float[x.Length]; var dh0 = new float[h0.Length]; var dc0 = new float[h0.Length];
        net.Backward(dx, Floats(root.GetProperty("dy")), Floats(root.GetProperty("dh_t")), lstm ? Floats(root.GetProperty("dc_t")) : default,
            dh0, lstm ? dc0 : default);
        foreach (var (name, p) in byName)
            GradientCheck.AssertClose(Floats(gradients.GetProperty(name)), p.Gradient.Data, rel, abs, $"{fixture} d{name}");
        GradientCheck.AssertClose(Floats(gradients.GetProperty("x")), dx, rel, abs, $"{fixture} dx");
        GradientCheck.AssertClose(Floats(gradients.GetProperty("h0")), dh0, rel, abs, $"{fixture} dh0");
        if (lstm) GradientCheck.AssertClose(Floats(gradients.GetProperty("c0")), dc0, rel, abs, $"{fixture} dc0");
    }

    static RecurrentCellSpec SpecOf(JsonElement root)
    {
        var kind = root.GetProperty("cell").GetString() switch
        {
            "rnn" => RecurrentCellKind.Rnn, "lstm" => RecurrentCellKind.Lstm, "gru" => RecurrentCellKind.Gru,
            var other => throw new InvalidDataException($"Unknown cell {other}."),
        };
        var peepholes = PeepholeGates.None;
        foreach (var g in root.GetProperty("peepholes").EnumerateArray())
            peepholes |= g.GetString() switch { "input" => PeepholeGates.Input, "forget" => PeepholeGates.Forget, _ => PeepholeGates.Output };
        return new RecurrentCellSpec(kind)
        {
            RnnActivation = root.GetProperty("rnn_activation").GetString() == "relu" ? ActivationKind.Relu : ActivationKind.Tanh,
            Peepholes = peepholes,
            CoupledInputForget = root.GetProperty("coupled").GetBoolean(),
            GruReset = root.GetProperty("gru_reset").GetString() == "before" ? GruResetPlacement.BeforeRecurrentMatmul : GruResetPlacement.AfterRecurrentMatmul,
        };
    }

    static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];
}
