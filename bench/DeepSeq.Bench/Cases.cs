using DeepSeq.Core.Kernels;
using DeepSeq.Core.Layers.Recurrent;
using DeepSeq.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeq.Bench;

/// <summary>What a run of the bench was asked for.</summary>
/// <param name="Threads">Threads of both libraries in every case that does not fix its own.</param>
/// <param name="Quick">Few iterations and smaller data: a check that every case runs, not figures.</param>
sealed record BenchContext(int Threads, bool Quick)
{
    public MeasureSettings Settings(int warmupRuns = 3, int repetitions = 15, int quickRepetitions = 5) =>
        Quick ? MeasureSettings.Quick(1, quickRepetitions) : MeasureSettings.Full(warmupRuns, repetitions);
}

/// <summary>
/// One benchmark: the same work in DeepSeq and in TorchSharp, on <see cref="Threads"/> threads each.
/// <see cref="Flops"/> counts the floating-point work DeepSeq really does (the formula is in <see cref="Formula"/>).
/// </summary>
sealed class BenchCase(string name, double flops, string formula, Action deepSeq, Action? torch, MeasureSettings settings,
    int threads, int rows = 0, IDisposable? resources = null) : IDisposable
{
    public string Name { get; } = name;
    public double Flops { get; } = flops;
    public string Formula { get; } = formula;
    public Action DeepSeq { get; } = deepSeq;
    /// <summary>Null in the vector-path runs, which time DeepSeq alone.</summary>
    public Action? Torch { get; } = torch;
    public MeasureSettings Settings { get; } = settings;
    public int Threads { get; } = threads;
    /// <summary>Rows scored per run, for the scoring cases (rows/s); 0 otherwise.</summary>
    public int Rows { get; } = rows;
    public void Dispose() => resources?.Dispose();
}

/// <summary>A case by name, built only when it is run (some cases prepare data or train a model first).</summary>
sealed record CaseSpec(string Name, Func<BenchContext, BenchCase> Build);

static class Cases
{
    const int LatencyInput = 64, LatencyHidden = 64, LatencySteps = 50;

    /// <summary>Every case of the main table, in order.</summary>
    public static IEnumerable<CaseSpec> All()
    {
        yield return new("GEMM 1024³", ctx => GemmCase(1024, ctx));
        var lstm = new RecurrentCellSpec(RecurrentCellKind.Lstm);
        var gru = new RecurrentCellSpec(RecurrentCellKind.Gru);
        foreach (var train in new[] { false, true })
        {
            yield return Recurrent(lstm, 128, 256, 32, 100, bidirectional: false, train);
            yield return Recurrent(gru, 128, 256, 32, 100, bidirectional: false, train);
            yield return Recurrent(lstm, 128, 128, 32, 100, bidirectional: true, train);
        }
        // Batch-1 latency with both libraries on 1 thread, then both on 2.
        foreach (int threads in new[] { 1, 2 })
            yield return new($"LSTM batch-1 latency I{LatencyInput} H{LatencyHidden} T{LatencySteps}, {threads} thread{(threads == 1 ? "" : "s")}",
                ctx => RecurrentCase(lstm, LatencyInput, LatencyHidden, 1, LatencySteps, false, false, ctx, withTorch: true, latencyThreads: threads));
        yield return new(ImdbCases.TrainStepName, ImdbCases.TrainStep);
        yield return new(ImdbCases.ScoringFromTextName, ctx => ImdbCases.Scoring(ctx, fromText: true));
        yield return new(ImdbCases.ScoringFromKeysName, ctx => ImdbCases.Scoring(ctx, fromText: false));
        yield return new(ResNetCases.ForwardName, ResNetCases.Forward);
        yield return new(ResNetCases.TrainStepName, ResNetCases.TrainStep);
        yield return new(Seq2SeqCases.DecoderStepName, Seq2SeqCases.DecoderStep);
        yield return new(Seq2SeqCases.TrainStepName, Seq2SeqCases.TrainStep);
    }

    static CaseSpec Recurrent(RecurrentCellSpec spec, int input, int hidden, int batch, int steps, bool bidirectional, bool train) =>
        new(RecurrentName(spec, input, hidden, batch, steps, bidirectional, train),
            ctx => RecurrentCase(spec, input, hidden, batch, steps, bidirectional, train, ctx, withTorch: true));

    public static string RecurrentName(RecurrentCellSpec spec, int input, int hidden, int batch, int steps, bool bidirectional, bool train) =>
        $"{(bidirectional ? "Bi" : "")}{spec.Kind.ToString().ToUpperInvariant()} {(train ? "train step" : "forward")} I{input} H{hidden} B{batch} T{steps}";

    static BenchCase GemmCase(int n, BenchContext ctx)
    {
        var rng = new Random(1);
        var a = new float[n * n]; var b = new float[n * n]; var c = new float[n * n];
        for (int i = 0; i < a.Length; i++) { a[i] = rng.NextSingle() - 0.5f; b[i] = rng.NextSingle() - 0.5f; }
        var ta = torch.tensor(a, [n, n]); var tb = torch.tensor(b, [n, n]);
        // n² outputs, each n multiply-adds.
        return new BenchCase($"GEMM {n}³", 2.0 * n * n * n, "2·n³",
            () => Gemm.Multiply(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n),
            () => { using var product = torch.mm(ta, tb); },
            ctx.Settings(), ctx.Threads, resources: new Disposables(ta, tb));
    }

    /// <summary>
    /// GEMM work of a recurrent network over T steps of a batch of B, per direction:
    /// the input projection, one (T·B × I) · (I × G·H) product, and the recurrent products, T of (B × H) · (H × G·H),
    /// with G = 4 gates for an LSTM and 3 for a GRU (whose reset gate multiplies the recurrent product's
    /// candidate part, not an extra product). Element-wise gate arithmetic and biases are not counted.
    /// </summary>
    public static double RecurrentForwardFlops(int gates, int input, int hidden, int batch, int steps, int directions) =>
        2.0 * steps * batch * gates * hidden * (input + hidden) * directions;

    public const string RecurrentForwardFormula = "2·T·B·D·G·H·(I+H): input projection + recurrent GEMMs, G = 4 (LSTM) or 3 (GRU), D directions";
    public const string RecurrentTrainFormula = "3 × forward: forward, then backward dX = dG·W_ih, dW_ih = dGᵀ·X, dh = dG·W_hh, dW_hh = dGᵀ·h (2 × forward); Adam not counted";

    /// <summary>
    /// A recurrent forward or training step (forward + backward + Adam). Training computes the input
    /// gradient dX in both libraries, as any layer but the first of a network must (and the IMDB model's
    /// first layer must too, for its embedding): backward = dX, dW_ih, dh, dW_hh = twice the forward GEMMs.
    /// </summary>
    public static BenchCase RecurrentCase(RecurrentCellSpec spec, int input, int hidden, int batch, int steps, bool bidirectional, bool train,
        BenchContext ctx, bool withTorch, int? latencyThreads = null)
    {
        bool latency = latencyThreads is not null;
        string name = latency
            ? $"LSTM batch-1 latency I{input} H{hidden} T{steps}, {latencyThreads} thread{(latencyThreads == 1 ? "" : "s")}"
            : RecurrentName(spec, input, hidden, batch, steps, bidirectional, train);
        int dirs = bidirectional ? 2 : 1, gates = spec.Kind == RecurrentCellKind.Lstm ? 4 : 3;
        double forwardFlops = RecurrentForwardFlops(gates, input, hidden, batch, steps, dirs);
        double flops = train ? 3 * forwardFlops : forwardFlops;

        var rng = new Random(2);
        var net = new RecurrentNetwork(spec, input, hidden, 1, bidirectional);
        Initializers.InitializeRecurrent(net, RecurrentInitializer.Uniform, false, rng);
        var x = new float[steps * batch * input];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() - 0.5f;
        var y = new float[steps * batch * net.OutputSize];
        var dy = new float[y.Length];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.NextSingle() - 0.5f;
        var dx = new float[x.Length];
        int[] lengths = Enumerable.Repeat(steps, batch).ToArray();
        var adam = new Adam(net.Parameters);

        Action ours = train
            ? () =>
            {
                net.Forward(y, default, default, x, default, default, lengths, steps, batch, training: true);
                adam.ZeroGradients();
                Array.Clear(dx); // Backward adds into dx
                net.Backward(dx, default, default, dy, default, default);
                adam.Step();
            }
            : () => net.Forward(y, default, default, x, default, default, lengths, steps, batch, training: false);

        var settings = latency
            ? (ctx.Quick ? MeasureSettings.Quick(20, 50) : MeasureSettings.Full(50, 400))
            : ctx.Settings();
        int threads = latencyThreads ?? ctx.Threads;
        string formula = train ? RecurrentTrainFormula : RecurrentForwardFormula;
        if (!withTorch) return new BenchCase(name, flops, formula, ours, null, settings, threads);
        var (theirs, resources) = TorchRecurrent(spec, input, hidden, batch, steps, bidirectional, train, x, dy, net.OutputSize);
        return new BenchCase(name, flops, formula, ours, theirs, settings, threads, resources: resources);
    }

    // Kept apart so that the vector-path runs, which time DeepSeq alone, never touch TorchSharp.
    static (Action, IDisposable) TorchRecurrent(RecurrentCellSpec spec, int input, int hidden, int batch, int steps, bool bidirectional, bool train,
        float[] x, float[] dy, int outputSize)
    {
        TorchSharp.Modules.LSTM? lstm = null; TorchSharp.Modules.GRU? gru = null;
        if (spec.Kind == RecurrentCellKind.Lstm) lstm = nn.LSTM(input, hidden, 1, bidirectional: bidirectional);
        else gru = nn.GRU(input, hidden, 1, bidirectional: bidirectional);
        nn.Module module = (nn.Module?)lstm ?? gru!;
        Tensor Run(Tensor input) => lstm is not null ? lstm.call(input, null).Item1 : gru!.call(input, null).Item1;
        var tx = torch.tensor(x, [steps, batch, input]);
        var tdy = torch.tensor(dy, [steps, batch, outputSize]);
        var optimizer = torch.optim.Adam(module.parameters());
        Action theirs = train
            ? () =>
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                var xin = tx.detach().requires_grad_(true); // a fresh leaf each step, so that autograd computes dX as DeepSeq does
                var loss = (Run(xin) * tdy).sum();          // ∂loss/∂y = dy, the same output gradient DeepSeq is given
                loss.backward();
                optimizer.step();
            }
            : () =>
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                Run(tx);
            };
        return (theirs, new Disposables(tx, tdy, module));
    }

    public sealed class Disposables(params IDisposable[] items) : IDisposable
    {
        public void Dispose() { foreach (var d in items) d.Dispose(); }
    }
}
