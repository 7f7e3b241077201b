namespace DeepSeq.Core.Layers.Recurrent;

/// <summary>The recurrent cell families.</summary>
public enum RecurrentCellKind
{
    /// <summary>Elman RNN (<see cref="RnnCell"/>).</summary>
    Rnn,
    /// <summary>Long short-term memory, optionally with peepholes or a coupled input–forget gate (<see cref="LstmCell"/>).</summary>
    Lstm,
    /// <summary>Gated recurrent unit (<see cref="GruCell"/>).</summary>
    Gru,
}

/// <summary>Which cell to build, with its variant settings; <see cref="Create"/> makes one per layer and direction.</summary>
public sealed record RecurrentCellSpec
{
    /// <summary>Describes a cell of the given family with default variant settings.</summary>
    public RecurrentCellSpec(RecurrentCellKind kind) => Kind = kind;

    /// <summary>The cell family.</summary>
    public RecurrentCellKind Kind { get; }
    /// <summary>RNN non-linearity: Tanh (default) or Relu.</summary>
    public ActivationKind RnnActivation { get; init; } = ActivationKind.Tanh;
    /// <summary>LSTM gates with peepholes (default none).</summary>
    public PeepholeGates Peepholes { get; init; } = PeepholeGates.None;
    /// <summary>LSTM with f = 1 − i (default false).</summary>
    public bool CoupledInputForget { get; init; }
    /// <summary>GRU reset gate placement (default after the recurrent matmul, as PyTorch).</summary>
    public GruResetPlacement GruReset { get; init; } = GruResetPlacement.AfterRecurrentMatmul;

    /// <summary>Gate blocks of the cell's weights (G): 1 for RNN, 3 for GRU, 4 for LSTM (3 when coupled).</summary>
    public int GateCount => Kind switch
    {
        RecurrentCellKind.Rnn => 1,
        RecurrentCellKind.Lstm => CoupledInputForget ? 3 : 4,
        RecurrentCellKind.Gru => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown cell kind."),
    };

    /// <summary>Builds a cell with zero weights.</summary>
    public RecurrentCell Create(int inputSize, int hiddenSize) => Kind switch
    {
        RecurrentCellKind.Rnn => new RnnCell(inputSize, hiddenSize, RnnActivation),
        RecurrentCellKind.Lstm => new LstmCell(inputSize, hiddenSize, Peepholes, CoupledInputForget),
        RecurrentCellKind.Gru => new GruCell(inputSize, hiddenSize, GruReset),
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown cell kind."),
    };
}
