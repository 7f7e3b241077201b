using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.utils.rnn;

namespace DeepSeq.Fixtures;

/// <summary>The libtorch side, through TorchSharp.</summary>
static class TorchReference
{
    const string Version = "libtorch 2.10.0 via TorchSharp-cpu 0.107.0";

    static Tensor T(float[] data, params long[] shape) => tensor(data, shape, dtype: ScalarType.Float64).requires_grad_(true);
    static float[] F(Tensor t) => [.. t.to_type(ScalarType.Float32).contiguous().data<float>()];

    /// <summary>nn.RNN / nn.LSTM / nn.GRU on a packed batch, in double precision.</summary>
    public static ReferenceResult RunModule(FixtureCase c, FixtureData d)
    {
        int h = c.HiddenSize, L = c.Layers, D = c.Directions, B = c.Batch;
        LSTM? lstm = null; GRU? gru = null; RNN? rnn = null;
        if (c.Kind == "lstm") lstm = nn.LSTM(c.InputSize, h, L, bidirectional: c.Bidirectional, dtype: ScalarType.Float64);
        else if (c.Kind == "gru") gru = nn.GRU(c.InputSize, h, L, bidirectional: c.Bidirectional, dtype: ScalarType.Float64);
        else rnn = nn.RNN(c.InputSize, h, L, c.RnnActivation == "relu" ? nn.NonLinearities.ReLU : nn.NonLinearities.Tanh, bidirectional: c.Bidirectional, dtype: ScalarType.Float64);
        nn.Module module = (nn.Module?)lstm ?? (nn.Module?)gru ?? rnn!;
        var named = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, values) in d.Parameters) named[name].copy_(tensor(values, named[name].shape, dtype: ScalarType.Float64));

        var x = T(d.X, c.Steps, B, c.InputSize);
        var h0 = T(d.H0, L * D, B, h);
        var c0 = T(d.C0, L * D, B, h);
        var packed = nn.utils.rnn.pack_padded_sequence(x, tensor(c.Lengths.Select(v => (long)v).ToArray()), enforce_sorted: false);
        PackedSequence outPacked; Tensor hT; Tensor? cT = null;
        if (lstm is not null) (outPacked, hT, cT) = lstm.call(packed, (h0, c0));
        else if (gru is not null) (outPacked, hT) = gru.call(packed, h0);
        else (outPacked, hT) = rnn!.call(packed, h0);
        var (y, _) = nn.utils.rnn.pad_packed_sequence(outPacked, total_length: c.Steps);

        var loss = (y * tensor(d.Dy, y.shape, dtype: ScalarType.Float64)).sum() + (hT * tensor(d.DhT, hT.shape, dtype: ScalarType.Float64)).sum();
        if (cT is not null) loss += (cT * tensor(d.DcT, cT.shape, dtype: ScalarType.Float64)).sum();
        loss.backward();
        var grads = named.ToDictionary(p => p.Key, p => F(p.Value.grad!));
        grads["x"] = F(x.grad!); grads["h0"] = F(h0.grad!);
        if (cT is not null) grads["c0"] = F(c0.grad!);
        return new ReferenceResult($"{Version}: nn.{c.Kind.ToUpperInvariant()} on pack_padded_sequence, float64, autograd", F(y), F(hT), cT is null ? null : F(cT), grads);
    }

    /// <summary>The cell equations written in torch ops (one layer, one direction), with autograd for the gradients.</summary>
    public static ReferenceResult RunManual(FixtureCase c, FixtureData d)
    {
        if (c.Layers != 1 || c.Bidirectional) throw new NotSupportedException("Manual references are single-layer, forward only.");
        int h = c.HiddenSize, B = c.Batch, I = c.InputSize;
        var p = d.Parameters.ToDictionary(kv => kv.Key, kv => T(kv.Value, kv.Value.Length));
        var wih = p["weight_ih_l0"].view(-1, I); var whh = p["weight_hh_l0"].view(-1, h);
        var bih = p["bias_ih_l0"]; var bhh = p["bias_hh_l0"];
        var x = T(d.X, c.Steps, B, I);
        var h0 = T(d.H0, 1, B, h); var c0 = T(d.C0, 1, B, h);
        Tensor state = h0[0], cell = c0[0];
        var outputs = new List<Tensor>();
        for (int t = 0; t < c.Steps; t++)
        {
            var mask = tensor(c.Lengths.Select(l => t < l ? 1.0 : 0.0).ToArray(), [B, 1], dtype: ScalarType.Float64);
            Tensor hNew, cNew = cell;
            if (c.Kind == "lstm")
            {
                var a = x[t].matmul(wih.t()) + bih + state.matmul(whh.t()) + bhh;
                var chunks = a.chunk(c.Coupled ? 3 : 4, 1);
                Tensor ai = chunks[0], ag = chunks[c.Coupled ? 1 : 2], ao = chunks[c.Coupled ? 2 : 3];
                if (p.TryGetValue("weight_pi_l0", out var pi)) ai = ai + pi * cell;
                var i = sigmoid(ai);
                Tensor f;
                if (c.Coupled) f = 1 - i;
                else
                {
                    var af = chunks[1];
                    if (p.TryGetValue("weight_pf_l0", out var pf)) af = af + pf * cell;
                    f = sigmoid(af);
                }
                cNew = f * cell + i * tanh(ag);
                if (p.TryGetValue("weight_po_l0", out var po)) ao = ao + po * cNew;
                hNew = sigmoid(ao) * tanh(cNew);
            }
            else
            {
                var xs = (x[t].matmul(wih.t()) + bih).chunk(3, 1);
                var ws = whh.chunk(3, 0); var bs = bhh.chunk(3, 0);
                var r = sigmoid(xs[0] + state.matmul(ws[0].t()) + bs[0]);
                var z = sigmoid(xs[1] + state.matmul(ws[1].t()) + bs[1]);
                var n = tanh(xs[2] + (r * state).matmul(ws[2].t()) + bs[2]); // reset before the recurrent matmul
                hNew = (1 - z) * n + z * state;
            }
            outputs.Add(hNew * mask);
            state = mask * hNew + (1 - mask) * state;
            cell = mask * cNew + (1 - mask) * cell;
        }
        var y = stack(outputs);
        var hT = state.unsqueeze(0); var cT = cell.unsqueeze(0);
        bool lstm = c.Kind == "lstm";
        var loss = (y * tensor(d.Dy, y.shape, dtype: ScalarType.Float64)).sum() + (hT * tensor(d.DhT, hT.shape, dtype: ScalarType.Float64)).sum();
        if (lstm) loss += (cT * tensor(d.DcT, cT.shape, dtype: ScalarType.Float64)).sum();
        loss.backward();
        var grads = p.ToDictionary(kv => kv.Key, kv => F(kv.Value.grad!));
        grads["x"] = F(x.grad!); grads["h0"] = F(h0.grad!);
        if (lstm) grads["c0"] = F(c0.grad!);
        return new ReferenceResult($"{Version}: the cell equations in torch ops, float64, autograd", F(y), F(hT), lstm ? F(cT) : null, grads);
    }
}
