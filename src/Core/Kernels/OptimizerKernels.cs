using System.Runtime.CompilerServices;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// Adam's moment and weight update over Length values, written once over the vector width (see <see cref="Lanes"/>):
/// m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; w −= StepSize·m / (√(v·C2) + ε), where StepSize = lr / (1 − β1ᵗ)
/// and C2 = 1 / (1 − β2ᵗ) carry the bias corrections.
/// </summary>
internal unsafe struct AdamUpdate : IVecKernel
{
    public int Length;
    public float* W, G, M, V;
    public float Beta1, Beta2, StepSize, C2, Epsilon;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>
    {
        int len = Length;
        float* pw = W, pg = G, pm = M, pv = V;
        Vec<TV, TO> vb1 = Vec<TV, TO>.Create(Beta1), vb2 = Vec<TV, TO>.Create(Beta2), a1 = Vec<TV, TO>.Create(1f - Beta1), a2 = Vec<TV, TO>.Create(1f - Beta2);
        Vec<TV, TO> vc1 = Vec<TV, TO>.Create(StepSize), vc2 = Vec<TV, TO>.Create(C2), eps = Vec<TV, TO>.Create(Epsilon);
        for (int i = 0; i < len; i += TO.Count)
        {
            int n = Math.Min(TO.Count, len - i);
            var gi = Lanes.Load<TV, TO>(pg + i, n);
            var mi = vb1 * Lanes.Load<TV, TO>(pm + i, n) + a1 * gi;
            var vi = vb2 * Lanes.Load<TV, TO>(pv + i, n) + a2 * gi * gi;
            Lanes.Store(pm + i, mi, n); Lanes.Store(pv + i, vi, n);
            Lanes.Store(pw + i, Lanes.Load<TV, TO>(pw + i, n) - vc1 * mi / (Vec<TV, TO>.Sqrt(vi * vc2) + eps), n);
        }
    }
}
