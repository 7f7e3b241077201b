using System.Numerics.Tensors;

namespace DeepSeq.Core.Training;

/// <summary>Gradient clipping (Pascanu et al. 2013), which keeps exploding recurrent gradients finite.</summary>
public static class GradientClipper
{
    /// <summary>The L2 norm of all gradients together, summed in a fixed order (reproducible).</summary>
    public static double GlobalNorm(IReadOnlyList<Parameter> parameters)
    {
        double sum = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            float n = TensorPrimitives.Norm(parameters[i].Gradient.Data);
            sum += (double)n * n;
        }
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Scales all gradients by maxNorm / norm when their global norm exceeds <paramref name="maxNorm"/>.
    /// Returns the norm before clipping (NaN or ∞ when a gradient is not finite: the caller should skip the step).
    /// </summary>
    public static double ClipByGlobalNorm(IReadOnlyList<Parameter> parameters, float maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The maximum norm must be positive.");
        double norm = GlobalNorm(parameters);
        if (double.IsFinite(norm) && norm > maxNorm)
        {
            float scale = (float)(maxNorm / norm);
            for (int i = 0; i < parameters.Count; i++) TensorPrimitives.Multiply(parameters[i].Gradient.Data, scale, parameters[i].Gradient.Data);
        }
        return norm;
    }

    /// <summary>Clamps every gradient value to [−limit, limit].</summary>
    public static void ClipByValue(IReadOnlyList<Parameter> parameters, float limit)
    {
        if (!(limit > 0)) throw new ArgumentOutOfRangeException(nameof(limit), limit, "The clipping limit must be positive.");
        for (int i = 0; i < parameters.Count; i++) TensorPrimitives.Clamp(parameters[i].Gradient.Data, -limit, limit, parameters[i].Gradient.Data);
    }
}
