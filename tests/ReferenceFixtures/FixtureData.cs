namespace DeepSeq.Fixtures;

/// <summary>One fixture's configuration; sizes are small so the files stay small.</summary>
sealed record FixtureCase(string Name, string Kind)
{
    public string RnnActivation { get; init; } = "tanh";
    public string[] Peepholes { get; init; } = [];
    public bool Coupled { get; init; }
    public string GruReset { get; init; } = "after";
    public int InputSize { get; init; } = 3;
    public int HiddenSize { get; init; } = 4;
    public int Layers { get; init; } = 1;
    public bool Bidirectional { get; init; }
    public int Steps { get; init; } = 5;
    public int Batch => Lengths.Length;
    public int[] Lengths { get; init; } = [3, 5, 2]; // unsorted: the reference must cope, and so must we
    public int Directions => Bidirectional ? 2 : 1;
    public int GateCount => Kind switch { "rnn" => 1, "gru" => 3, _ => Coupled ? 3 : 4 };
}

/// <summary>Random inputs, weights (DeepSeq/PyTorch layout and names) and output weights for the loss.</summary>
sealed class FixtureData
{
    public required float[] X, H0, C0, Dy, DhT, DcT;
    public required Dictionary<string, float[]> Parameters;

    public static FixtureData Create(FixtureCase c, int seed)
    {
        var rng = new Random(seed);
        float[] R(int n, float scale) => [.. Enumerable.Range(0, n).Select(_ => scale * (2f * rng.NextSingle() - 1f))];
        int h = c.HiddenSize, g = c.GateCount, states = c.Layers * c.Directions * c.Batch * h;
        var parameters = new Dictionary<string, float[]>();
        for (int l = 0; l < c.Layers; l++)
            for (int d = 0; d < c.Directions; d++)
            {
                string suffix = $"_l{l}" + (d == 1 ? "_reverse" : "");
                int input = l == 0 ? c.InputSize : c.Directions * h;
                parameters["weight_ih" + suffix] = R(g * h * input, 0.6f);
                parameters["weight_hh" + suffix] = R(g * h * h, 0.6f);
                parameters["bias_ih" + suffix] = R(g * h, 0.4f);
                parameters["bias_hh" + suffix] = R(g * h, 0.4f);
                foreach (var gate in c.Peepholes) parameters[$"weight_p{gate[0]}" + suffix] = R(h, 0.6f);
            }
        var outWidth = c.Directions * h;
        var dy = R(c.Steps * c.Batch * outWidth, 1f);
        // The loss weights of padded outputs are zero, so both sides agree whatever they put there.
        for (int t = 0; t < c.Steps; t++)
            for (int b = 0; b < c.Batch; b++)
                if (t >= c.Lengths[b]) Array.Clear(dy, (t * c.Batch + b) * outWidth, outWidth);
        return new FixtureData
        {
            X = R(c.Steps * c.Batch * c.InputSize, 1f), H0 = R(states, 0.5f), C0 = R(states, 0.5f),
            Dy = dy, DhT = R(states, 1f), DcT = R(states, 1f), Parameters = parameters,
        };
    }
}

/// <summary>What a reference implementation produced.</summary>
sealed record ReferenceResult(string Source, float[] Y, float[] HT, float[]? CT, Dictionary<string, float[]>? Gradients);
