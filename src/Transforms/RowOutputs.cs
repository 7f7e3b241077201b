using System.ComponentModel;
using System.Numerics.Tensors;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Transforms;

/// <summary>
/// An output kind of the row mapping: the columns ML.NET's evaluators expect for a task, written from a model's
/// raw outputs. A row with nothing to score (<see cref="RowPrediction.IsMissing"/>) gets NaN scores, ML.NET's
/// missing value, which its evaluators skip and count.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IRowOutput
{
    /// <summary>Fills the columns from one prediction.</summary>
    internal void Write(in RowPrediction p);
}

/// <summary>Binary classification: <c>Score</c> (the logit), <c>Probability</c> (σ of it), <c>PredictedLabel</c> (logit &gt; 0).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class BinaryScores : IRowOutput
{
    /// <summary>The logit; NaN for a row with nothing to score.</summary>
    public float Score;
    /// <summary>σ(Score); NaN for a row with nothing to score.</summary>
    public float Probability;
    /// <summary>Score &gt; 0; false for a row with nothing to score.</summary>
    public bool PredictedLabel;
    /// <summary>Attention pooling's weight per step (empty without attention pooling).</summary>
    [VectorType] public VBuffer<float> AttentionWeights;

    void IRowOutput.Write(in RowPrediction p)
    {
        Score = p.Outputs[0];
        Probability = 1f / (1f + MathF.Exp(-Score));
        PredictedLabel = Score > 0;
        AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }
}

/// <summary>Regression: <c>Score</c>, the predicted value.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class RegressionValue : IRowOutput
{
    /// <summary>The predicted value; NaN for a row with nothing to score.</summary>
    public float Score;
    /// <summary>Attention pooling's weight per step (empty without attention pooling).</summary>
    [VectorType] public VBuffer<float> AttentionWeights;

    void IRowOutput.Write(in RowPrediction p)
    {
        Score = p.Outputs[0];
        AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }
}

/// <summary>
/// Multiclass classification: one scalar probability column per class (softmax of the logits), which the chain
/// renames to the class names and concatenates into <c>Score</c> — so <c>Score</c> carries the class names as
/// slot names, from stock transforms that save and load — and the predicted class name. The scalar columns are
/// properties over one array; the sizes 16, 128 and 1023 keep ML.NET's per-binding cost of a wide row type for
/// the models that need it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public partial class ClassProbabilities16 : IRowOutput
{
    /// <summary>Classes this output kind holds.</summary>
    public const int Capacity = 16;
    private protected readonly float[] P;

    /// <summary>Creates the row object ML.NET fills.</summary>
    public ClassProbabilities16() : this(Capacity) { }
    private protected ClassProbabilities16(int capacity) => P = new float[capacity];

    /// <summary>The predicted class name; empty (a missing key) for a row with nothing to score.</summary>
    [ColumnName(DeepSeqColumns.PredictedName)] public string PredictedName = "";
    /// <summary>Attention pooling's weight per step (empty without attention pooling).</summary>
    [VectorType] public VBuffer<float> AttentionWeights;

    void IRowOutput.Write(in RowPrediction p)
    {
        int k = p.Outputs.Length;
        if (k > P.Length) throw new InvalidOperationException($"The model has {k} classes; this output holds {P.Length}.");
        var probabilities = P.AsSpan(0, k);
        if (p.IsMissing) probabilities.Fill(float.NaN);
        else TensorPrimitives.SoftMax(p.Outputs, probabilities);
        PredictedName = p.IsMissing ? "" : p.ClassNames[TensorPrimitives.IndexOfMax(probabilities)];
        AttentionWeights = new VBuffer<float>(p.Attention.Length, p.Attention);
    }
}

/// <summary>Up to 128 classes (see <see cref="ClassProbabilities16"/>).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public partial class ClassProbabilities128 : ClassProbabilities16
{
    /// <summary>Classes this output kind holds.</summary>
    public new const int Capacity = 128;
    /// <summary>Creates the row object ML.NET fills.</summary>
    public ClassProbabilities128() : this(Capacity) { }
    private protected ClassProbabilities128(int capacity) : base(capacity) { }
}

/// <summary>Up to 1023 classes (see <see cref="ClassProbabilities16"/>).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed partial class ClassProbabilities1023 : ClassProbabilities128
{
    /// <summary>Classes this output kind holds.</summary>
    public new const int Capacity = 1023;
    /// <summary>Creates the row object ML.NET fills.</summary>
    public ClassProbabilities1023() : base(Capacity) { }
}
