using System.Numerics;
using System.Numerics.Tensors;

namespace DeepSeq.Core.Layers;

/// <summary>Element-wise activation functions without parameters.</summary>
public enum ActivationKind
{
    /// <summary>y = x.</summary>
    Identity,
    /// <summary>y = 1 / (1 + e^−x).</summary>
    Sigmoid,
    /// <summary>y = tanh x.</summary>
    Tanh,
    /// <summary>y = max(x, 0).</summary>
    Relu,
    /// <summary>y = x for x &gt; 0, αx otherwise (α = <see cref="Activation.Alpha"/>, default 0.01).</summary>
    LeakyRelu,
    /// <summary>y = x for x &gt; 0, α(e^x − 1) otherwise (Clevert et al. 2015; α default 1).</summary>
    Elu,
    /// <summary>GELU, tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) (PyTorch <c>approximate='tanh'</c>).</summary>
    Gelu,
    /// <summary>SELU: λ·ELU_α(x), λ = 1.0507…, α = 1.6733… (Klambauer et al. 2017).</summary>
    Selu,
}

/// <summary>
/// An element-wise activation with its derivative. Forward writes y; backward adds dy·f'(x) into dx, reading
/// whichever of x and y the derivative is cheapest from (both are kept by the caller's forward).
/// </summary>
public readonly record struct Activation(ActivationKind Kind, float Alpha = float.NaN)
{
    const float SeluLambda = 1.0507009873554805f, SeluAlpha = 1.6732632423543772f;
    const float GeluC = 0.7978845608028654f, GeluK = 0.044715f; // √(2/π), cubic coefficient

    float A => float.IsNaN(Alpha) ? (Kind == ActivationKind.LeakyRelu ? 0.01f : 1f) : Alpha;

    /// <summary>y = f(x).</summary>
    public void Forward(Span<float> y, ReadOnlySpan<float> x)
    {
        CheckLengths(x.Length, y.Length);
        float a = A;
        switch (Kind)
        {
            case ActivationKind.Identity: x.CopyTo(y); break;
            case ActivationKind.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case ActivationKind.Tanh: TensorPrimitives.Tanh(x, y); break;
            case ActivationKind.Relu: TensorPrimitives.Max(x, 0f, y); break;
            case ActivationKind.LeakyRelu:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : a * x[i];
                break;
            case ActivationKind.Elu:
                for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : a * (MathF.Exp(x[i]) - 1f);
                break;
            case ActivationKind.Selu:
                for (int i = 0; i < x.Length; i++) y[i] = SeluLambda * (x[i] > 0 ? x[i] : SeluAlpha * (MathF.Exp(x[i]) - 1f));
                break;
            case ActivationKind.Gelu:
                for (int i = 0; i < x.Length; i++)
                {
                    float v = x[i];
                    y[i] = 0.5f * v * (1f + MathF.Tanh(GeluC * (v + GeluK * v * v * v)));
                }
                break;
            default: throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown activation.");
        }
    }

    /// <summary>dx += dy · f'(x), given the x and y = f(x) of the forward pass.</summary>
    public void Backward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        CheckLengths(dx.Length, dy.Length);
        if (Kind == ActivationKind.Relu) { ReluBackward(dx, dy, x); return; }
        float a = A;
        for (int i = 0; i < dx.Length; i++)
        {
            float d = Kind switch
            {
                ActivationKind.Identity => 1f,
                ActivationKind.Sigmoid => y[i] * (1f - y[i]),
                ActivationKind.Tanh => 1f - y[i] * y[i],
                ActivationKind.Relu => x[i] > 0 ? 1f : 0f,
                ActivationKind.LeakyRelu => x[i] > 0 ? 1f : a,
                ActivationKind.Elu => x[i] > 0 ? 1f : y[i] + a,                          // d/dx α(eˣ−1) = y + α
                ActivationKind.Selu => x[i] > 0 ? SeluLambda : y[i] + SeluLambda * SeluAlpha,
                ActivationKind.Gelu => GeluDerivative(x[i]),
                _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown activation."),
            };
            dx[i] += dy[i] * d;
        }
    }

    // dx += dy where x > 0, a vector at a time: the per-element derivative switch costs more than the
    // convolutions around it at a ResNet's first stage.
    static void ReluBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> x)
    {
        CheckLengths(x.Length, dy.Length);
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i <= dx.Length - w; i += w)
            {
                var passed = Vector.ConditionalSelect(Vector.GreaterThan(new Vector<float>(x[i..]), Vector<float>.Zero), new Vector<float>(dy[i..]), Vector<float>.Zero);
                (new Vector<float>(dx[i..]) + passed).CopyTo(dx[i..]);
            }
        for (; i < dx.Length; i++)
            if (x[i] > 0) dx[i] += dy[i];
    }

    static float GeluDerivative(float v)
    {
        float t = MathF.Tanh(GeluC * (v + GeluK * v * v * v));
        return 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * GeluC * (1f + 3f * GeluK * v * v);
    }

    static void CheckLengths(int a, int b)
    {
        if (a != b) throw new ArgumentException($"Input and output lengths differ ({a} vs {b}).");
    }
}
