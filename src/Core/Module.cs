namespace DeepSeq.Core;

/// <summary>
/// A building block of a model: trainable <see cref="Parameter"/>s, non-trainable state tensors (e.g. the
/// running statistics of batch normalisation) and child modules, each under a name. Names join into unique
/// hierarchical paths (<c>encoder.layers.0.forward.weight_ih</c>), which is how snapshots, checkpoints and the
/// saved format find every tensor.
/// </summary>
/// <remarks>
/// A module registers its parts in its constructor (<see cref="AddParameter"/>, <see cref="AddState"/>,
/// <see cref="AddChild{T}"/>); the order of registration is the order of <see cref="Parameters"/>.
/// Forward and backward are each layer's own methods, with one argument order across the library: outputs,
/// inputs, weights, sizes (backward: the gradients it adds into, the output gradient, what forward kept, sizes).
/// Buffers that forward keeps for backward are sized by a layer's <c>Reserve</c> method for the largest batch
/// shape it will see, never inside forward or backward.
/// </remarks>
public abstract class Module
{
    readonly List<(string Name, Parameter Value)> _parameters = [];
    readonly List<(string Name, Tensor Value)> _state = [];
    readonly List<(string Name, Module Value)> _children = [];

    /// <summary>Registers a trainable parameter of the given shape (values and gradient zero).</summary>
    protected Parameter AddParameter(string name, params int[] shape)
    {
        CheckName(name);
        var p = new Parameter(name, shape);
        _parameters.Add((name, p));
        return p;
    }

    /// <summary>Registers a non-trainable state tensor of the given shape (zero).</summary>
    protected Tensor AddState(string name, params int[] shape)
    {
        CheckName(name);
        var t = new Tensor(shape);
        _state.Add((name, t));
        return t;
    }

    /// <summary>Registers a child module; its parts are named <c>name.part</c>.</summary>
    protected T AddChild<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"A part name must be non-empty and contain no '.': '{name}'.", nameof(name));
        if (_parameters.Any(p => p.Name == name) || _state.Any(s => s.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"The module already has a part named '{name}'.", nameof(name));
    }

    /// <summary>Every trainable parameter: this module's own in registration order, then each child's, depth first.</summary>
    public IReadOnlyList<Parameter> Parameters => [.. NamedParameters().Select(p => p.Value)];

    /// <summary>Every parameter with its full name.</summary>
    public IEnumerable<KeyValuePair<string, Parameter>> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters) yield return new(prefix + name, p);
        foreach (var (name, child) in _children)
            foreach (var kv in child.NamedParameters(prefix + name + ".")) yield return kv;
    }

    /// <summary>Every state tensor with its full name.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedState(string prefix = "")
    {
        foreach (var (name, t) in _state) yield return new(prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var kv in child.NamedState(prefix + name + ".")) yield return kv;
    }

    /// <summary>Every tensor that defines the trained module — parameter values, then state — by full name.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedTensors() =>
        NamedParameters().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.Value)).Concat(NamedState());

    /// <summary>The child modules with their names.</summary>
    public IEnumerable<KeyValuePair<string, Module>> Children => _children.Select(c => new KeyValuePair<string, Module>(c.Name, c.Value));

    /// <summary>
    /// Starts the random streams of this module and its children (dropout masks, RReLU slopes) afresh from
    /// <paramref name="seed"/>: a training loop reseeds before every step from (seed, step) so that a run resumed
    /// from a checkpoint draws exactly the masks the uninterrupted run drew.
    /// </summary>
    public void Reseed(ulong seed)
    {
        OnReseed(seed);
        ulong k = 0;
        foreach (var (_, child) in _children) child.Reseed(Mix(seed, ++k));
    }

    /// <summary>Restarts this module's own random stream, if it has one.</summary>
    protected virtual void OnReseed(ulong seed) { }

    /// <summary>Copies every tensor from <paramref name="tensors"/> (matched by full name and size) and bumps parameter versions.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong size, or an unknown one is given.</exception>
    public void Load(IReadOnlyDictionary<string, float[]> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        int used = 0;
        foreach (var (name, t) in NamedTensors())
        {
            if (!tensors.TryGetValue(name, out var values))
                throw new InvalidDataException($"The saved model has no tensor '{name}', which this architecture needs.");
            if (values.Length != t.Length)
                throw new InvalidDataException($"The saved tensor '{name}' has {values.Length} values; this architecture needs {t.Length}.");
            values.CopyTo(t.Data, 0);
            used++;
        }
        if (used != tensors.Count)
        {
            var known = NamedTensors().Select(kv => kv.Key).ToHashSet();
            throw new InvalidDataException($"The saved model has tensors this architecture does not know: {string.Join(", ", tensors.Keys.Where(k => !known.Contains(k)).Take(5))}.");
        }
        foreach (var p in Parameters) p.MarkChanged();
    }

    /// <summary>A copy of every tensor by full name (see <see cref="NamedTensors"/>).</summary>
    public Dictionary<string, float[]> SnapshotTensors() => NamedTensors().ToDictionary(kv => kv.Key, kv => (float[])kv.Value.Data.Clone());

    /// <summary>SplitMix64 finaliser of two words: independent streams for children and steps.</summary>
    public static ulong Mix(ulong a, ulong b)
    {
        ulong z = a + 0x9E3779B97F4A7C15UL * (b + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>A module that only groups named children, e.g. the layers of a stack (<c>layers.0</c>, <c>layers.1</c>).</summary>
public sealed class ModuleList : Module
{
    /// <summary>Adds a child under <paramref name="name"/> and returns it.</summary>
    public T Add<T>(string name, T module) where T : Module => AddChild(name, module);
}
