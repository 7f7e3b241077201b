using System.Runtime.ExceptionServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DeepSeq.MLNet.Transforms;

/// <summary>
/// <c>Transform</c> for chains that hold DeepSeq sequence models, scoring rows in blocks. ML.NET's row mapping
/// (<c>CustomMapping</c>) calls the model once per row; one row at a time leaves most of the machine idle (a batch
/// of one is a matrix–vector product per step, and one core waits). Here the view that stands in for a DeepSeq
/// row mapping reads <see cref="BlockRows"/> rows ahead from its input, scores them as one batch (each at its own
/// length), then serves them one by one. Its schema, values and row order are those of the stock mapping (values
/// bit for bit: a row's sums do not depend on the rows batched with it). The stock chain itself is unchanged, so
/// what is saved and what <c>PredictionEngine</c> uses stay the same.
/// </summary>
internal static class BlockScoring
{
    /// <summary>Rows read ahead and scored together (in batches of rows of similar lengths: <see cref="LoadedModel.BatchRows"/>).</summary>
    public const int BlockRows = 256;

    /// <summary><paramref name="model"/>.Transform(<paramref name="input"/>), with each DeepSeq sequence mapping inside scoring in blocks.</summary>
    public static IDataView Transform(ITransformer model, IDataView input)
    {
        switch (model)
        {
            case IEnumerable<ITransformer> chain:
                var view = input;
                foreach (var inner in chain) view = Transform(inner, view);
                return view;
            case var mapping when SequenceMapping(mapping) is { } output:
                var stock = mapping.Transform(input);
                return BlockScoredView.CanStandIn(input.Schema, stock.Schema)
                    ? (IDataView)Activator.CreateInstance(typeof(BlockScoredView<>).MakeGenericType(output), input, stock)!
                    : stock;
            default:
                return model.Transform(input);
        }
    }

    // The output kind of a DeepSeq sequence mapping (its input kind is token ids or numeric steps), else null.
    static Type? SequenceMapping(ITransformer t)
    {
        var type = t.GetType();
        if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(CustomMappingTransformer<,>)) return null;
        var args = type.GetGenericArguments();
        return args[0] == typeof(TokenIdsInput) || args[0] == typeof(NumericStepsInput) ? args[1] : null;
    }
}

/// <summary>What the block-scored views share: which schemas they can stand in for, and the buffers of passed-through columns.</summary>
internal static class BlockScoredView
{
    /// <summary>The stock mapping's columns are the input's (same indices, names, types) followed by the ones it adds.</summary>
    public static bool CanStandIn(DataViewSchema input, DataViewSchema stock)
    {
        if (stock.Count < input.Count) return false;
        for (int i = 0; i < input.Count; i++)
            if (stock[i].Name != input[i].Name || !stock[i].Type.Equals(input[i].Type)) return false;
        return true;
    }

    /// <summary>True when a column's values can be kept for a block: scalars, text, keys and vectors of them.</summary>
    public static bool CanBuffer(DataViewType type) =>
        type is VectorDataViewType v ? IsScalar(v.ItemType) : IsScalar(type);

    static bool IsScalar(DataViewType type) => type is PrimitiveDataViewType or KeyDataViewType || type is RowIdDataViewType;

    /// <summary>A buffer for one passed-through column over a block.</summary>
    public static ColumnBuffer Buffer(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var type = column.Type is VectorDataViewType v
            ? typeof(VectorBuffer<>).MakeGenericType(v.ItemType.RawType)
            : typeof(ScalarBuffer<>).MakeGenericType(column.Type.RawType);
        return (ColumnBuffer)Activator.CreateInstance(type, cursor, column)!;
    }

    /// <summary>One column's values for the rows of a block, filled as the block is read and served row by row.</summary>
    public abstract class ColumnBuffer
    {
        /// <summary>Reads the cursor's current row into slot <paramref name="slot"/>.</summary>
        public abstract void Read(int slot);
        /// <summary>A getter of the value in the slot <paramref name="slot"/> names at the time of the call.</summary>
        public abstract Delegate Getter(Func<int> slot);
    }

    // Scalars and text: values, or immutable memory, kept as they are.
    sealed class ScalarBuffer<T>(DataViewRowCursor cursor, DataViewSchema.Column column) : ColumnBuffer
    {
        readonly ValueGetter<T> _get = cursor.GetGetter<T>(column);
        readonly T[] _values = new T[BlockScoring.BlockRows];
        public override void Read(int slot) => _get(ref _values[slot]);
        public override Delegate Getter(Func<int> slot) => (ValueGetter<T>)((ref T value) => value = _values[slot()]);
    }

    // Vectors: copied into arrays of the buffer's own, which the next block reuses.
    sealed class VectorBuffer<T>(DataViewRowCursor cursor, DataViewSchema.Column column) : ColumnBuffer
    {
        readonly ValueGetter<VBuffer<T>> _get = cursor.GetGetter<VBuffer<T>>(column);
        readonly VBuffer<T>[] _values = new VBuffer<T>[BlockScoring.BlockRows];
        VBuffer<T> _read;
        public override void Read(int slot)
        {
            _get(ref _read);
            _read.CopyTo(ref _values[slot]);
        }
        public override Delegate Getter(Func<int> slot) => (ValueGetter<VBuffer<T>>)((ref VBuffer<T> value) => _values[slot()].CopyTo(ref value));
    }
}

/// <summary>
/// A DeepSeq sequence mapping applied to <c>input</c> in blocks (see <see cref="BlockScoring"/>). A cursor that
/// needs none of the scored columns, or a passed-through column whose values cannot be kept for a block (a
/// type other than scalars, text, keys and their vectors), is the stock mapping's own.
/// </summary>
internal sealed class BlockScoredView<TOutput>(IDataView input, IDataView stock) : IDataView where TOutput : class, IRowOutput, new()
{
    // ML.NET's own reflection over the output class (as CustomMapping's) gives the scored columns' getters.
    static readonly MLContext s_ml = new();
    readonly IDataView _input = input;

    public DataViewSchema Schema => stock.Schema;
    public bool CanShuffle => stock.CanShuffle;
    public long? GetRowCount() => stock.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToList();
        int passed = _input.Schema.Count;
        bool scores = needed.Any(c => c.Index >= passed);
        if (!scores || needed.Any(c => c.Index < passed && !BlockScoredView.CanBuffer(c.Type))) return stock.GetRowCursor(needed, rand);
        return new Cursor(this, needed, rand);
    }

    // One cursor: the blocks are what keeps both cores busy.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [GetRowCursor(columnsNeeded, rand)];

    sealed class Cursor : DataViewRowCursor
    {
        readonly BlockScoredView<TOutput> _view;
        readonly DataViewRowCursor _input;
        readonly bool[] _active;
        readonly Dictionary<int, BlockScoredView.ColumnBuffer> _passed = [];
        readonly ValueGetter<ReadOnlyMemory<char>> _getModel;
        readonly ValueGetter<VBuffer<uint>>? _getTokens;
        readonly ValueGetter<VBuffer<float>>? _getValues;
        readonly ValueGetter<DataViewRowId> _getId;
        readonly DataViewRowId[] _ids = new DataViewRowId[BlockScoring.BlockRows];
        readonly ScoringRow[] _rows = new ScoringRow[BlockScoring.BlockRows];
        readonly ExceptionDispatchInfo?[] _errors = new ExceptionDispatchInfo?[BlockScoring.BlockRows];
        readonly LoadedModel?[] _models = new LoadedModel?[BlockScoring.BlockRows]; // the model each row names
        readonly int[] _pending = new int[BlockScoring.BlockRows];
        readonly ScoringRow[] _scored = new ScoringRow[BlockScoring.BlockRows];
        readonly DataViewRowCursor _outputs;
        readonly TOutput _output = new();
        VBuffer<uint> _tokens;
        VBuffer<float> _values;
        ReadOnlyMemory<char> _model;
        ExceptionDispatchInfo? _inputError; // the input cursor failed after the rows of this block: raised when they are served
        int _count, _slot = -1;
        long _position = -1;

        public Cursor(BlockScoredView<TOutput> view, List<DataViewSchema.Column> needed, Random? rand)
        {
            _view = view;
            var source = view._input.Schema;
            var model = source[DeepSeqColumns.Model];
            var sequence = source[DeepSeqColumns.Input];
            _active = new bool[view.Schema.Count];
            foreach (var c in needed) _active[c.Index] = true;
            var read = needed.Where(c => c.Index < source.Count).Select(c => source[c.Index]).Append(model).Append(sequence).DistinctBy(c => c.Index);
            _input = view._input.GetRowCursor(read, rand);
            try
            {
                foreach (var c in needed.Where(c => c.Index < source.Count)) _passed[c.Index] = BlockScoredView.Buffer(_input, source[c.Index]);
                _getModel = _input.GetGetter<ReadOnlyMemory<char>>(model);
                if (sequence.Type is VectorDataViewType { ItemType.RawType: var item } && item == typeof(uint)) _getTokens = _input.GetGetter<VBuffer<uint>>(sequence);
                else _getValues = _input.GetGetter<VBuffer<float>>(sequence);
                _getId = _input.GetIdGetter();
                for (int i = 0; i < _rows.Length; i++) _rows[i] = new ScoringRow();
                // Each MoveNext of this view of the output class takes the object written for the current row.
                var outputs = s_ml.Data.LoadFromEnumerable(Current());
                _outputs = outputs.GetRowCursor(outputs.Schema);
            }
            catch
            {
                _input.Dispose(); // it may hold ML.NET's reader threads
                throw;
            }
        }

        IEnumerable<TOutput> Current() { while (true) yield return _output; }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        // The current row's slot; ML.NET's words when there is no current row.
        int Slot => _position >= 0 ? _slot : throw new InvalidOperationException("Attempting to fetch a value while the cursor is not on a row: call MoveNext first, and not after it returns false.");

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = _ids[Slot];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_active[column.Index]) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            if (typeof(TValue) != column.Type.RawType)
                throw new InvalidOperationException($"Invalid TValue in GetGetter: '{typeof(TValue)}', expected type: '{column.Type.RawType}'.");
            if (_passed.TryGetValue(column.Index, out var buffer)) return (ValueGetter<TValue>)buffer.Getter(() => Slot);
            var scored = _outputs.GetGetter<TValue>(_outputs.Schema[column.Name]);
            return (ref TValue value) =>
            {
                _errors[Slot]?.Throw(); // the row's own error, where the stock mapping raises it
                scored(ref value);
            };
        }

        public override bool MoveNext()
        {
            if (_slot + 1 >= _count)
            {
                if (_inputError is { } failed) { _inputError = null; _count = 0; _slot = -1; failed.Throw(); }
                if (!ReadBlock()) { _position = -1; return false; }
            }
            _slot++;
            _position++;
            if (_errors[_slot] is null) _output.Write(_rows[_slot].Prediction);
            return _outputs.MoveNext();
        }

        // Reads up to a block of rows, each checked on its own (a bad row keeps its error for its own getters), and
        // scores the good ones. When the input cursor itself fails, the rows read before are served
        // first and its error is raised by the MoveNext after them, where the stock mapping raises it.
        bool ReadBlock()
        {
            _count = 0; _slot = -1;
            try
            {
                while (_count < BlockScoring.BlockRows && _input.MoveNext())
                {
                    int slot = _count;
                    foreach (var buffer in _passed.Values) buffer.Read(slot);
                    _getId(ref _ids[slot]);
                    _errors[slot] = null;
                    _models[slot] = null;
                    _count++;
                    try
                    {
                        _getModel(ref _model);
                        var model = _models[slot] = RowScoring.Resolve(_model);
                        var row = _rows[slot];
                        if (_getTokens is not null) { _getTokens(ref _tokens); model.Read(row, RowScoring.Dense(_tokens), default); }
                        else { _getValues!(ref _values); model.Read(row, default, RowScoring.Dense(_values)); }
                    }
                    catch (Exception e) // raised by the row's scored getters, as the stock mapping raises it
                    {
                        _errors[slot] = ExceptionDispatchInfo.Capture(e);
                    }
                }
            }
            catch (Exception e)
            {
                _inputError = ExceptionDispatchInfo.Capture(e);
                if (_count == 0) { _inputError = null; throw; }
            }
            Score();
            return _count > 0;
        }

        // Scores the block's good rows in batches, each row with the model it names (in practice the value mapping
        // gives every row the same one). A batch whose forward fails gives its rows that error.
        void Score()
        {
            int remaining = 0;
            for (int slot = 0; slot < _count; slot++)
                if (_errors[slot] is null && !_rows[slot].IsMissing) _pending[remaining++] = slot;
            while (remaining > 0)
            {
                var model = _models[_pending[0]]!;
                int scored = 0, left = 0;
                for (int i = 0; i < remaining; i++)
                    if (_models[_pending[i]] == model) _scored[scored++] = _rows[_pending[i]];
                    else _pending[left++] = _pending[i];
                try { model.PredictBlock(_scored.AsSpan(0, scored)); }
                catch (Exception e) // raised by each of these rows' scored getters
                {
                    var error = ExceptionDispatchInfo.Capture(e);
                    for (int slot = 0; slot < _count; slot++)
                        if (_errors[slot] is null && !_rows[slot].IsMissing && _models[slot] == model) _errors[slot] = error;
                }
                remaining = left;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) { _input.Dispose(); _outputs.Dispose(); }
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// A loaded chain whose <c>Transform</c> scores its DeepSeq sequence models in blocks (see <see cref="BlockScoring"/>);
/// everything else, saving included, is the chain's own.
/// </summary>
internal sealed class BlockScoredModel(ITransformer chain) : ITransformer
{
    /// <summary>The chain as loaded.</summary>
    public ITransformer Chain { get; } = chain;
    public bool IsRowToRowMapper => Chain.IsRowToRowMapper;
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Chain.GetOutputSchema(inputSchema);
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => Chain.GetRowToRowMapper(inputSchema);
    public IDataView Transform(IDataView input) => BlockScoring.Transform(Chain, input);
    void ICanSaveModel.Save(ModelSaveContext ctx) => Chain.Save(ctx);
}
