using DeepSeq.Core.Models;
using DeepSeq.Core.Training;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet;

/// <summary>
/// A trained DeepSeq sequence model as an ML.NET transformer. It is a chain of stock ML.NET transforms (the
/// weights live in a value mapping), so <c>mlContext.Model.Save</c>/<c>Load</c>, <c>PredictionEngine</c>,
/// <c>Evaluate</c> and <c>CrossValidate</c> work unchanged; after loading, the model comes back as that chain.
/// </summary>
public sealed class SequenceModelTransformer : ITransformer
{
    readonly ITransformer _chain;

    internal SequenceModelTransformer(ITransformer chain, SequenceTask task, SequenceModelConfig config, TrainingReport report, IReadOnlyList<string> classNames)
    {
        _chain = chain; Task = task; Config = config; TrainingReport = report; ClassNames = classNames;
    }

    /// <summary>What the model predicts.</summary>
    public SequenceTask Task { get; }
    /// <summary>The architecture.</summary>
    public SequenceModelConfig Config { get; }
    /// <summary>Per-epoch training figures, the epoch whose weights were kept, and whether training diverged.</summary>
    public TrainingReport TrainingReport { get; }
    /// <summary>Class names, in key order (multiclass), else empty.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;
    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);
    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);
    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => _chain.Transform(input);
    // Saved as the stock chain: loading needs nothing but ML.NET and this library's mapping factories.
    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);
}
