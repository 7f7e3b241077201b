using DeepSeq.Core.Kernels;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeq.Bench;

/// <summary>One benchmark: the same work in DeepSeq and in TorchSharp.</summary>
sealed class BenchCase(string name, double flops, Action deepSeq, Action torch, int warmup = 3, int repetitions = 15, IDisposable? resources = null) : IDisposable
{
    public string Name { get; } = name;
    public double Flops { get; } = flops;
    public Action DeepSeq { get; } = deepSeq;
    public Action Torch { get; } = torch;
    public int Warmup { get; } = warmup;
    public int Repetitions { get; } = repetitions;
    public void Dispose() => resources?.Dispose();
}

static class Cases
{
    public static IEnumerable<BenchCase> All()
    {
        yield return GemmCase(1024);
        var lstm = new RecurrentCellSpec(RecurrentCellKind.Lstm);
        var gru = new RecurrentCellSpec(RecurrentCellKind.Gru);
        foreach (var train in new[] { false, true })
        {
            yield return RecurrentCase(lstm, 128, 256, 32, 100, bidirectional: false, train);
            yield return RecurrentCase(gru, 128, 256, 32, 100, bidirectional: false, train);
            yield return RecurrentCase(lstm, 128, 128, 32, 100, bidirectional: true, train);
        }
        yield return RecurrentCase(lstm, 64, 64, 1, 50, bidirectional: false, train: false, latency: true);
    }

    static BenchCase GemmCase(int n)
    {
        var rng = new Random(1);
        var a = new float[n * n]; var b = new float[n * n]; var c = new float[n * n];
        for (int i = 0; i < a.Length; i++) { a[i] = rng.NextSingle() - 0.5f; b[i] = rng.NextSingle() - 0.5f; }
        var ta = torch.tensor(a, [n, n]); var tb = torch.tensor(b, [n, n]);
        return new BenchCase($"GEMM {n}³", 2.0 * n * n * n,
            () => Gemm.Multiply(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n),
            () => { using var product = torch.mm(ta, tb); },
            resources: new Disposables(ta, tb));
    }

    static BenchCase RecurrentCase(RecurrentCellSpec spec, int input, int hidden, int batch, int steps, bool bidirectional, bool train, bool latency = false)
    {
        string kind = spec.Kind.ToString().ToUpperInvariant();
        string name = latency
            ? $"{kind} latency I{input} H{hidden} B{batch} T{steps}"
            : $"{(bidirectional ? "Bi" : "")}{kind} {(train ? "train step" : "forward")} I{input} H{hidden} B{batch} T{steps}";
        int dirs = bidirectional ? 2 : 1, gates = spec.Kind == RecurrentCellKind.Lstm ? 4 : 3;
        double forwardFlops = 2.0 * steps * batch * gates * hidden * (input + hidden) * dirs;
        double flops = train ? 3 * forwardFlops : forwardFlops; // backward ≈ twice the forward GEMMs

        var rng = new Random(2);
        var net = new RecurrentNetwork(spec, input, hidden, 1, bidirectional);
        Initializers.InitializeRecurrent(net, RecurrentInitializer.Uniform, false, rng);
        var x = new float[steps * batch * input];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() - 0.5f;
        var y = new float[steps * batch * net.OutputSize];
        var dy = new float[y.Length];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.NextSingle() - 0.5f;
        int[] lengths = Enumerable.Repeat(steps, batch).ToArray();
        var adam = new Adam(net.Parameters);

        Action ours = train
            ? () =>
            {
                net.Forward(x, steps, batch, lengths, default, default, y, default, default, training: true);
                adam.ZeroGradients();
                net.Backward(default, dy, default, default, default, default);
                adam.Step();
            }
            : () => net.Forward(x, steps, batch, lengths, default, default, y, default, default, training: false);

        TorchSharp.Modules.LSTM? lstm = null; TorchSharp.Modules.GRU? gru = null;
        if (spec.Kind == RecurrentCellKind.Lstm) lstm = nn.LSTM(input, hidden, 1, bidirectional: bidirectional);
        else gru = nn.GRU(input, hidden, 1, bidirectional: bidirectional);
        nn.Module module = (nn.Module?)lstm ?? gru!;
        Tensor Run(Tensor input) => lstm is not null ? lstm.call(input, null).Item1 : gru!.call(input, null).Item1;
        var tx = torch.tensor(x, [steps, batch, input]);
        var tdy = torch.tensor(dy, [steps, batch, net.OutputSize]);
        var optimizer = torch.optim.Adam(module.parameters());
        Action theirs = train
            ? () =>
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                var loss = (Run(tx) * tdy).sum();
                loss.backward();
                optimizer.step();
            }
            : () =>
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                Run(tx);
            };
        return new BenchCase(name, flops, ours, theirs, warmup: latency ? 50 : 3, repetitions: latency ? 400 : 15,
            resources: new Disposables(tx, tdy, module));
    }

    sealed class Disposables(params IDisposable[] items) : IDisposable
    {
        public void Dispose() { foreach (var d in items) d.Dispose(); }
    }
}
