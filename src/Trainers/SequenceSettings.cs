namespace DeepSeq.MLNet;

/// <summary>The recurrent cells a sequence trainer can use.</summary>
public enum SequenceCell
{
    /// <summary>Elman RNN, h = act(W·x + U·h + b); the non-linearity is <see cref="SequenceOptions.RnnActivation"/>.</summary>
    Rnn,
    /// <summary>LSTM, PyTorch's equations.</summary>
    Lstm,
    /// <summary>LSTM with peephole connections on the gates in <see cref="SequenceOptions.Peepholes"/> (default all three).</summary>
    PeepholeLstm,
    /// <summary>LSTM with a coupled input–forget gate (f = 1 − i); may also have input and output peepholes (<see cref="SequenceOptions.Peepholes"/>).</summary>
    CoupledLstm,
    /// <summary>GRU; the reset gate's placement is <see cref="SequenceOptions.GruReset"/>.</summary>
    Gru,
}

/// <summary>The non-linearity of an <see cref="SequenceCell.Rnn"/> cell.</summary>
public enum RnnNonlinearity
{
    /// <summary>tanh (PyTorch's default).</summary>
    Tanh,
    /// <summary>max(x, 0).</summary>
    Relu,
}

/// <summary>The LSTM gates that read the cell state (peephole connections).</summary>
[Flags]
public enum PeepholeConnections
{
    /// <summary>No peepholes.</summary>
    None = 0,
    /// <summary>The input gate reads c_{t−1}.</summary>
    Input = 1,
    /// <summary>The forget gate reads c_{t−1} (not with <see cref="SequenceCell.CoupledLstm"/>, which has no forget gate).</summary>
    Forget = 2,
    /// <summary>The output gate reads the new c_t (the ONNX convention).</summary>
    Output = 4,
    /// <summary>All three gates.</summary>
    All = Input | Forget | Output,
}

/// <summary>Where a <see cref="SequenceCell.Gru"/> applies its reset gate.</summary>
public enum GruResetMode
{
    /// <summary>n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn)): PyTorch, cuDNN, Keras' default, ONNX <c>linear_before_reset=1</c>.</summary>
    AfterRecurrentMatmul,
    /// <summary>n = tanh(W_in·x + b_in + W_hn·(r ⊙ h) + b_hn): Cho et al. 2014 and ONNX's default.</summary>
    BeforeRecurrentMatmul,
}

/// <summary>How a bidirectional network combines its two directions.</summary>
public enum DirectionMerge
{
    /// <summary>[forward; backward]: twice the hidden size.</summary>
    Concat,
    /// <summary>forward + backward.</summary>
    Sum,
    /// <summary>(forward + backward) / 2.</summary>
    Average,
}

/// <summary>How the sequence of recurrent outputs becomes one vector.</summary>
public enum PoolingMode
{
    /// <summary>The final state (both directions' final states when bidirectional).</summary>
    Last,
    /// <summary>Mean over the steps.</summary>
    Mean,
    /// <summary>Maximum over the steps, per feature.</summary>
    Max,
    /// <summary>[max; mean].</summary>
    MaxMean,
    /// <summary>Additive attention over the steps; the weights are output in the <c>AttentionWeights</c> column.</summary>
    Attention,
}

/// <summary>The optimisers.</summary>
public enum SequenceOptimizer
{
    /// <summary>Adam, with <see cref="SequenceOptions.WeightDecay"/> as L2 added to the gradient.</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
    /// <summary>Stochastic gradient descent with <see cref="SequenceOptions.Momentum"/> (optionally Nesterov's).</summary>
    Sgd,
}

/// <summary>How recurrent weights are initialised.</summary>
public enum WeightInitializer
{
    /// <summary>Input weights Xavier-uniform, recurrent weights orthogonal per gate, biases zero (Keras' default).</summary>
    XavierOrthogonal,
    /// <summary>Every weight and bias U(−1/√H, 1/√H) (PyTorch's default).</summary>
    Uniform,
}

/// <summary>What a trained sequence model predicts.</summary>
public enum SequenceTaskKind
{
    /// <summary>One logit: <c>Score</c>, <c>Probability</c>, <c>PredictedLabel</c>.</summary>
    BinaryClassification,
    /// <summary>K class probabilities in <c>Score</c>, a key <c>PredictedLabel</c>.</summary>
    MulticlassClassification,
    /// <summary>One value in <c>Score</c>.</summary>
    Regression,
}
