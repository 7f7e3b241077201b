using System.Numerics.Tensors;

namespace DeepSeq.Core.Training;

/// <summary>Loss functions: each returns the mean loss and writes its gradient (of the mean) into the logits' gradient.</summary>
public static class Losses
{
    /// <summary>
    /// Sigmoid + binary cross-entropy on logits z with targets y ∈ [0, 1]:
    /// max(z, 0) − z·y + log(1 + e^−|z|), stable for any z. Gradient (σ(z) − y) / N.
    /// </summary>
    public static float BinaryCrossEntropyWithLogits(ReadOnlySpan<float> logits, ReadOnlySpan<float> targets, Span<float> dLogits)
    {
        CheckLengths(logits.Length, targets.Length, dLogits.Length);
        double sum = 0;
        float inv = 1f / logits.Length;
        for (int i = 0; i < logits.Length; i++)
        {
            float z = logits[i], y = targets[i];
            sum += Math.Max(z, 0f) - z * y + Math.Log(1.0 + Math.Exp(-Math.Abs(z)));
            dLogits[i] = (1f / (1f + MathF.Exp(-z)) - y) * inv;
        }
        return (float)(sum / logits.Length);
    }

    /// <summary>
    /// Softmax + cross-entropy over K classes for N rows of logits (N, K) and labels in [0, K).
    /// Gradient (softmax − one-hot) / N. <paramref name="probabilities"/> (N, K) receives the softmax.
    /// </summary>
    public static float SoftmaxCrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits, Span<float> probabilities)
    {
        int n = labels.Length;
        CheckLengths(logits.Length, n * classes, dLogits.Length);
        CheckLengths(logits.Length, probabilities.Length, logits.Length);
        double sum = 0;
        float inv = 1f / n;
        for (int r = 0; r < n; r++)
        {
            int label = labels[r];
            if ((uint)label >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label of row {r} is outside [0, {classes}).");
            var p = probabilities.Slice(r * classes, classes);
            TensorPrimitives.SoftMax(logits.Slice(r * classes, classes), p);
            sum -= Math.Log(Math.Max(p[label], 1e-30f));
            var d = dLogits.Slice(r * classes, classes);
            TensorPrimitives.Multiply(p, inv, d);
            d[label] -= inv;
        }
        return (float)(sum / n);
    }

    /// <summary>Mean squared error over all values; gradient 2(p − t) / N.</summary>
    public static float MeanSquaredError(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> dPredictions)
    {
        CheckLengths(predictions.Length, targets.Length, dPredictions.Length);
        double sum = 0;
        float scale = 2f / predictions.Length;
        for (int i = 0; i < predictions.Length; i++)
        {
            float e = predictions[i] - targets[i];
            sum += (double)e * e;
            dPredictions[i] = scale * e;
        }
        return (float)(sum / predictions.Length);
    }

    static void CheckLengths(int a, int b, int c)
    {
        if (a == 0) throw new ArgumentException("A loss needs at least one value.");
        if (a != b || a != c) throw new ArgumentException($"Lengths differ: {a}, {b}, {c}.");
    }
}
