using System.ComponentModel;
using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet.Transforms;

/// <summary>Names of the helper columns of a DeepSeq transformer chain; they are dropped at its end.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class DeepSeqColumns
{
    /// <summary>The constant key under which the value mapping stores the model.</summary>
    public const string Key = "__DeepSeq_Key";
    /// <summary>The serialised model (text), one shared string for all rows.</summary>
    public const string Model = "__DeepSeq_Model";
    /// <summary>The input sequence, copied or converted from the user's column (CustomMapping binds fixed names).</summary>
    public const string Input = "__DeepSeq_Input";
    /// <summary>The predicted class name, before it becomes a key.</summary>
    public const string PredictedName = "__DeepSeq_PredictedName";
    /// <summary>The probability of class <paramref name="index"/>, one scalar column per class (renamed to the class name, then concatenated into Score).</summary>
    public static string Probability(int index) => $"__DeepSeq_P{index}";
    /// <summary>The most classes a multiclass model can have.</summary>
    public const int MaxClasses = ClassProbabilities1023.Capacity;
}

/// <summary>
/// The ML.NET row mapping of a DeepSeq model: one generic mapping over an input kind (<see cref="IRowInput"/>:
/// token ids, numeric steps) and an output kind (<see cref="IRowOutput"/>: binary scores, class probabilities,
/// a regression value). ML.NET finds a mapping at load by a contract name on a concrete class, so each
/// (input kind, output kind) pair in use is declared below in one line.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class RowMappingFactory<TInput, TOutput> : CustomMappingFactory<TInput, TOutput>
    where TInput : class, IRowInput, new()
    where TOutput : class, IRowOutput, new()
{
    /// <inheritdoc/>
    public sealed override Action<TInput, TOutput> GetMapping() => static (input, output) => output.Write(input.Predict());
}

#pragma warning disable CS1591 // One line each: the contract name is what a saved model refers to.
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.TokensBinary.v1")] public sealed class TokensBinary : RowMappingFactory<TokenIdsInput, BinaryScores>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.TokensRegression.v1")] public sealed class TokensRegression : RowMappingFactory<TokenIdsInput, RegressionValue>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.TokensMulticlass16.v2")] public sealed class TokensMulticlass16 : RowMappingFactory<TokenIdsInput, ClassProbabilities16>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.TokensMulticlass128.v2")] public sealed class TokensMulticlass128 : RowMappingFactory<TokenIdsInput, ClassProbabilities128>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.TokensMulticlass1023.v2")] public sealed class TokensMulticlass1023 : RowMappingFactory<TokenIdsInput, ClassProbabilities1023>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.ValuesBinary.v1")] public sealed class ValuesBinary : RowMappingFactory<NumericStepsInput, BinaryScores>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.ValuesRegression.v1")] public sealed class ValuesRegression : RowMappingFactory<NumericStepsInput, RegressionValue>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.ValuesMulticlass16.v2")] public sealed class ValuesMulticlass16 : RowMappingFactory<NumericStepsInput, ClassProbabilities16>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.ValuesMulticlass128.v2")] public sealed class ValuesMulticlass128 : RowMappingFactory<NumericStepsInput, ClassProbabilities128>;
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute("DeepSeq.ValuesMulticlass1023.v2")] public sealed class ValuesMulticlass1023 : RowMappingFactory<NumericStepsInput, ClassProbabilities1023>;

// The first link of every chain: a constant key under which the value mapping finds the model text.
[EditorBrowsable(EditorBrowsableState.Never)] public sealed class NoInput { }
[EditorBrowsable(EditorBrowsableState.Never)] public sealed class KeyOutput { [ColumnName(DeepSeqColumns.Key)] public string Key = ""; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(ContractName)]
public sealed class KeyFactory : CustomMappingFactory<NoInput, KeyOutput>
{
    public const string ContractName = "DeepSeq.Const.v1";
    public override Action<NoInput, KeyOutput> GetMapping() => static (_, o) => o.Key = "m";
}
#pragma warning restore CS1591

/// <summary>The declared mapping of an (input kind, output kind) pair: its row function and its contract name.</summary>
internal static class RowMapping<TInput, TOutput>
    where TInput : class, IRowInput, new()
    where TOutput : class, IRowOutput, new()
{
    static readonly RowMappingFactory<TInput, TOutput> s_factory = (RowMappingFactory<TInput, TOutput>)Activator.CreateInstance(Declared())!;

    /// <summary>The contract name declared for this pair on its one-line factory class.</summary>
    public static string ContractName { get; } = s_factory.GetType().GetCustomAttribute<CustomMappingFactoryAttributeAttribute>()!.ContractName;

    /// <summary>The row function.</summary>
    public static Action<TInput, TOutput> Action => s_factory.GetMapping();

    static Type Declared()
    {
        var declared = typeof(RowMappingFactory<TInput, TOutput>).Assembly.GetTypes()
            .Where(t => t.BaseType == typeof(RowMappingFactory<TInput, TOutput>) && t.GetCustomAttribute<CustomMappingFactoryAttributeAttribute>() is not null).ToList();
        return declared.Count == 1 ? declared[0]
            : throw new InvalidOperationException($"Expected one contract-named mapping for ({typeof(TInput).Name}, {typeof(TOutput).Name}), found {declared.Count}.");
    }
}
