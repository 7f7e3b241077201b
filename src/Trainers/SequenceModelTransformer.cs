using Microsoft.ML;
using DeepSeq.MLNet.Transforms;
using Microsoft.ML.Data;

namespace DeepSeq.MLNet;

/// <summary>
/// A trained DeepSeq sequence model as an ML.NET transformer. It is a chain of stock ML.NET transforms (the
/// weights live in a value mapping), so <c>mlContext.Model.Save</c>/<c>Load</c>, <c>PredictionEngine</c>,
/// <c>Evaluate</c> and <c>CrossValidate</c> work unchanged; after loading, the model comes back as that chain,
/// and <see cref="DeepSeqCatalog.GetTrainedModel"/> reads the trained model back from it.
/// </summary>
public sealed class SequenceModelTransformer : ITransformer
{
    readonly ITransformer _chain;

    internal SequenceModelTransformer(ITransformer chain, TrainedSequenceModel model)
    {
        _chain = chain; Model = model;
    }

    /// <summary>The trained model: what it predicts, architecture, class names, weights by name, training report.</summary>
    public TrainedSequenceModel Model { get; }
    /// <summary>Per-epoch training figures, the epoch whose weights were kept, divergence and warnings.</summary>
    public SequenceTrainingReport TrainingReport => Model.TrainingReport!;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;
    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);
    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);
    /// <summary>
    /// The chain's output for <paramref name="input"/>, scored in blocks of rows read ahead (each row at its own
    /// length): the stock chain's columns and row order, several times its row-by-row throughput.
    /// </summary>
    public IDataView Transform(IDataView input) => BlockScoring.Transform(_chain, input);
    // Saved as the stock chain: loading needs nothing but ML.NET and this library's mapping factories.
    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);
}
