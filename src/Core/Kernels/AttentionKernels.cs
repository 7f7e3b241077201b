using System.Runtime.CompilerServices;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// Additive attention's scores for one batch row, fused: for s &lt; Length, z_s = tanh(k_s + u) (A values, kept for
/// backward) and e_s = v·z_s — one pass over each key instead of an add, a tanh and a dot product, with the gate
/// maths' tanh (<see cref="Lanes.Tanh{TV, TO}(Vec{TV, TO})"/>).
/// </summary>
internal unsafe struct AdditiveScores : IVecKernel
{
    public int Length, Size;
    /// <summary>Floats from k_s to k_{s+1}.</summary>
    public long KeyStride;
    public float* Keys, U, V, Z, Scores;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int a = Size;
        float* keys = Keys, u = U, v = V, z = Z, scores = Scores;
        for (int s = 0; s < Length; s++, keys += KeyStride, z += a)
        {
            var e = default(Vec<TV, TO>);
            for (int j = 0; j < a; j += TO.Count)
            {
                int n = Math.Min(TO.Count, a - j);
                var zj = Lanes.Tanh(Lanes.Load<TV, TO>(keys + j, n) + Lanes.Load<TV, TO>(u + j, n));
                Lanes.Store(z + j, zj, n);
                e += Lanes.Load<TV, TO>(v + j, n) * zj; // lanes past n are zero in v
            }
            scores[s] = TO.Sum(e.V);
        }
    }
}
