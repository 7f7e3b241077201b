using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace DeepSeq.Fixtures;

/// <summary>
/// The ONNX Runtime side: a one-node model (LSTM or GRU operator, opset 14) written as protobuf by hand, so
/// no ONNX tooling is needed. Weights are converted from DeepSeq/PyTorch layout to ONNX's: LSTM gates
/// [i, f, g, o] → [i, o, f, c], peepholes P = [i, o, f]; GRU gates [r, z, n] → [z, r, h].
/// </summary>
static class OnnxReference
{
    public static ReferenceResult Run(FixtureCase c, FixtureData d)
    {
        int h = c.HiddenSize, I = c.InputSize, B = c.Batch, T = c.Steps;
        var p = d.Parameters;
        bool lstm = c.Kind == "lstm";
        // Our gate block index for each ONNX gate; −1 = a zero block (the forget gate of a coupled LSTM).
        int[] order = lstm ? (c.Coupled ? [0, 2, -1, 1] : [0, 3, 1, 2]) : [1, 0, 2];
        float[] Reorder(float[] src, int width) // src: (G·H, width) in our order → (G'·H, width) in ONNX order
        {
            var dst = new float[order.Length * h * width];
            for (int k = 0; k < order.Length; k++)
                if (order[k] >= 0) Array.Copy(src, order[k] * h * width, dst, k * h * width, h * width);
            return dst;
        }
        var w = Reorder(p["weight_ih_l0"], I);
        var r = Reorder(p["weight_hh_l0"], h);
        var bias = Reorder(p["bias_ih_l0"], 1).Concat(Reorder(p["bias_hh_l0"], 1)).ToArray();
        int gates = order.Length;

        var inputs = new List<(string Name, int[] Shape, float[]? F, int[]? I32)>
        {
            ("X", [T, B, I], d.X, null), ("W", [1, gates * h, I], w, null), ("R", [1, gates * h, h], r, null),
            ("B", [1, 2 * gates * h], bias, null), ("sequence_lens", [B], null, c.Lengths), ("initial_h", [1, B, h], d.H0, null),
        };
        if (lstm)
        {
            inputs.Add(("initial_c", [1, B, h], d.C0, null));
            float[] Peep(string gate) => p.TryGetValue($"weight_p{gate}_l0", out var v) ? v : new float[h];
            inputs.Add(("P", [1, 3 * h], [.. Peep("i"), .. Peep("o"), .. Peep("f")], null));
        }
        var attributes = new List<(string, long?, string?)> { ("hidden_size", h, null) };
        if (lstm) attributes.Add(("input_forget", c.Coupled ? 1 : 0, null));
        else attributes.Add(("linear_before_reset", c.GruReset == "after" ? 1 : 0, null));
        string[] outputs = lstm ? ["Y", "Y_h", "Y_c"] : ["Y", "Y_h"];
        var model = OnnxModelWriter.SingleNode(lstm ? "LSTM" : "GRU", inputs.Select(i => (i.Name, i.Shape, i.I32 is null)).ToList(), outputs, attributes);

        using var session = new InferenceSession(model);
        var feeds = inputs.Select(i => i.F is not null
            ? NamedOnnxValue.CreateFromTensor(i.Name, new DenseTensor<float>(i.F, i.Shape))
            : NamedOnnxValue.CreateFromTensor(i.Name, new DenseTensor<int>(i.I32!, i.Shape))).ToList();
        using var results = session.Run(feeds);
        float[] Out(string name) => [.. results.First(v => v.Name == name).AsTensor<float>()];
        string variant = lstm ? $"LSTM input_forget={(c.Coupled ? 1 : 0)}, P={(c.Peepholes.Length > 0 ? string.Join("+", c.Peepholes) : "zero")}" : $"GRU linear_before_reset={(c.GruReset == "after" ? 1 : 0)}";
        return new ReferenceResult($"ONNX Runtime {OrtEnv.Instance().GetVersionString()}: {variant}, float32, outputs only",
            Out("Y"), Out("Y_h"), lstm ? Out("Y_c") : null, null);
    }
}

/// <summary>Just enough of the ONNX protobuf schema (onnx.proto) to write a one-node model.</summary>
static class OnnxModelWriter
{
    public static byte[] SingleNode(string op, List<(string Name, int[] Shape, bool IsFloat)> inputs, string[] outputs, List<(string Name, long? Int, string? Str)> attributes)
    {
        var node = new Proto();
        foreach (var i in inputs) node.String(1, i.Name);                     // NodeProto.input
        foreach (var o in outputs) node.String(2, o);                         // NodeProto.output
        node.String(4, op);                                                   // NodeProto.op_type
        foreach (var (name, i, s) in attributes)
        {
            var a = new Proto().String(1, name);                              // AttributeProto.name
            if (i is long v) a.Varint(3, (ulong)v).Varint(20, 2);             // .i, type INT
            else a.Bytes(4, Encoding.UTF8.GetBytes(s!)).Varint(20, 3);        // .s, type STRING
            node.Message(5, a);                                               // NodeProto.attribute
        }
        var graph = new Proto().Message(1, node).String(2, "reference");      // GraphProto.node, .name
        foreach (var i in inputs) graph.Message(11, ValueInfo(i.Name, i.IsFloat ? 1 : 6, i.Shape)); // .input (FLOAT / INT32)
        foreach (var o in outputs) graph.Message(12, ValueInfo(o, 1, null)); // .output, shape inferred
        return new Proto()
            .Varint(1, 8)                                                     // ModelProto.ir_version
            .Message(8, new Proto().String(1, "").Varint(2, 14))              // .opset_import {domain "", version 14}
            .Message(7, graph)                                                // .graph
            .ToArray();
    }

    static Proto ValueInfo(string name, int elemType, int[]? shape)
    {
        var tensorType = new Proto().Varint(1, (ulong)elemType);              // TypeProto.Tensor.elem_type
        if (shape is not null)
        {
            var s = new Proto();
            foreach (int dim in shape) s.Message(1, new Proto().Varint(1, (ulong)dim)); // TensorShapeProto.dim.dim_value
            tensorType.Message(2, s);                                         // .shape
        }
        return new Proto().String(1, name).Message(2, new Proto().Message(1, tensorType)); // ValueInfoProto{name, type{tensor_type}}
    }

    sealed class Proto
    {
        readonly MemoryStream _s = new();
        public Proto Varint(int field, ulong value) { Key(field, 0); Raw(value); return this; }
        public Proto String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));
        public Proto Message(int field, Proto value) => Bytes(field, value.ToArray());
        public Proto Bytes(int field, byte[] value) { Key(field, 2); Raw((ulong)value.Length); _s.Write(value); return this; }
        public byte[] ToArray() => _s.ToArray();
        void Key(int field, int wireType) => Raw((ulong)(field << 3 | wireType));
        void Raw(ulong v)
        {
            do { byte b = (byte)(v & 0x7f); v >>= 7; _s.WriteByte(v != 0 ? (byte)(b | 0x80) : b); } while (v != 0);
        }
    }
}
