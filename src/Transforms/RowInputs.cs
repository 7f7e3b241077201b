using System.ComponentModel;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet.Transforms;

/// <summary>An input kind of the row mapping: what a row gives the model, and the model that reads it.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IRowInput
{
    /// <summary>Runs the row's model on the row.</summary>
    internal RowPrediction Predict();
}

/// <summary>Token ids (keys 1…V, 0 = unknown), a variable-length vector.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class TokenIdsInput : IRowInput
{
    /// <summary>The token ids.</summary>
    [ColumnName(DeepSeqColumns.Input), VectorType] public VBuffer<uint> Input;
    /// <summary>The model text (read as memory: a string field would copy the whole model on every row).</summary>
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;

    RowPrediction IRowInput.Predict() => RowScoring.Resolve(Model).Predict(RowScoring.Dense(Input), default);
}

/// <summary>Numeric steps: steps × features values, a variable-length vector.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class NumericStepsInput : IRowInput
{
    /// <summary>The values, step by step.</summary>
    [ColumnName(DeepSeqColumns.Input), VectorType] public VBuffer<float> Input;
    /// <summary>The model text.</summary>
    [ColumnName(DeepSeqColumns.Model)] public ReadOnlyMemory<char> Model;

    RowPrediction IRowInput.Predict() => RowScoring.Resolve(Model).Predict(default, RowScoring.Dense(Input));
}
