using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepSeq.Core.Kernels;

/// <summary>
/// The operations of one vector width on its register type <typeparamref name="TV"/> (<see cref="Simd512"/> on
/// <see cref="Vector512{T}"/>, <see cref="Simd256"/>, <see cref="Simd128"/>, <see cref="SimdScalar"/> on float).
/// Kernels are written once, generic over (register, operations), and the JIT compiles one specialised copy per
/// width. .NET 10 keeps <c>ISimdVector&lt;TSelf, T&gt;</c> internal, so this is the public-API stand-in, as
/// TensorPrimitives does with its per-width operator structs.
/// </summary>
internal unsafe interface ISimd<TV> where TV : unmanaged
{
    /// <summary>Float lanes of the register.</summary>
    static abstract int Count { get; }
    /// <summary>True when the width runs on hardware instructions rather than a software fallback.</summary>
    static abstract bool IsAccelerated { get; }

    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    /// <summary>Lanes [0, n) from p, zeros past n (0 &lt; n &lt; Count); reads nothing past p + n.</summary>
    static abstract TV LoadFirst(float* p, int n);
    /// <summary>Lanes [0, n) of v to p (0 &lt; n &lt; Count); writes nothing past p + n.</summary>
    static abstract void StoreFirst(float* p, TV v, int n);
    static abstract TV Create(float x);
    /// <summary>*p in every lane, loaded straight into the register where the instruction set allows.</summary>
    static abstract TV Broadcast(float* p);
    static abstract TV Add(TV a, TV b);
    static abstract TV Subtract(TV a, TV b);
    static abstract TV Negate(TV a);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Divide(TV a, TV b);
    /// <summary>a · b + c, fused where the hardware has FMA, a multiply and an add otherwise (never a software FMA).</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Exp(TV x);
    static abstract TV Sqrt(TV x);
    /// <summary>The larger of a and b; b where either is NaN (pass the operand that may be NaN as b).</summary>
    static abstract TV Max(TV a, TV b);
    /// <summary>The sum of the lanes.</summary>
    static abstract float Sum(TV x);
    /// <summary><paramref name="value"/> where <paramref name="x"/> &gt; 0, else 0.</summary>
    static abstract TV IfPositive(TV x, TV value);
}

/// <summary>
/// A register of <typeparamref name="TO"/>'s width with operators, so that element-wise kernels read as their
/// equations. (The GEMM tiles use <typeparamref name="TO"/> on the raw register instead: the JIT gives each result
/// of a struct-returning operator its own register and a copy, which an FMA-bound tile cannot afford.)
/// </summary>
internal readonly unsafe struct Vec<TV, TO> where TV : unmanaged where TO : ISimd<TV>
{
    public readonly TV V;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public Vec(TV v) => V = v;

    public static Vec<TV, TO> One { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => new(TO.Create(1f)); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> Create(float x) => new(TO.Create(x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> operator +(Vec<TV, TO> a, Vec<TV, TO> b) => new(TO.Add(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> operator -(Vec<TV, TO> a, Vec<TV, TO> b) => new(TO.Subtract(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> operator -(Vec<TV, TO> a) => new(TO.Negate(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> operator *(Vec<TV, TO> a, Vec<TV, TO> b) => new(TO.Multiply(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> operator /(Vec<TV, TO> a, Vec<TV, TO> b) => new(TO.Divide(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> Sqrt(Vec<TV, TO> x) => new(TO.Sqrt(x.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> Max(Vec<TV, TO> a, Vec<TV, TO> b) => new(TO.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vec<TV, TO> IfPositive(Vec<TV, TO> x, Vec<TV, TO> value) => new(TO.IfPositive(x.V, value.V));
}

/// <summary>A kernel written once over the width: <see cref="Lanes.Run{TKernel}"/> runs it at the widest accelerated one.</summary>
internal interface IVecKernel
{
    void Run<TV, TO>() where TV : unmanaged where TO : ISimd<TV>;
}

/// <summary>
/// The width ladder and the helpers shared by the kernels. Widths are tried 512 → 256 → 128 → scalar, as
/// TensorPrimitives does; <c>VectorN.IsHardwareAccelerated</c> is a JIT-time constant, so the choice costs nothing
/// and follows the process's settings (<c>DOTNET_EnableAVX512=0</c> gives the 256-bit kernels,
/// <c>DOTNET_EnableAVX2=0</c> the 128-bit ones, as does Arm64's AdvSimd; <c>DOTNET_EnableHWIntrinsic=0</c> scalar).
/// An element-wise kernel body handles lanes [j, j + n) with n ≤ Count, loading and storing the last, partial group
/// with masked moves (zeros past n), so no scalar copy of the equations is needed for the tail.
/// </summary>
internal static unsafe class Lanes
{
    /// <summary>Bits of the widest accelerated float vector; 32 when every vector width is emulated (scalar kernels).</summary>
    public static int Bits =>
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 32;

    /// <summary>Which vector widths the runtime accelerates, and the one the kernels use.</summary>
    public static string Describe() =>
        $"Vector512={Vector512.IsHardwareAccelerated} Vector256={Vector256.IsHardwareAccelerated} Vector128={Vector128.IsHardwareAccelerated} kernels={Bits}-bit";

    /// <summary>Runs <paramref name="kernel"/> at the widest accelerated width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<TKernel>(TKernel kernel) where TKernel : IVecKernel, allows ref struct
    {
        if (Vector512.IsHardwareAccelerated) kernel.Run<Vector512<float>, Simd512>();
        else if (Vector256.IsHardwareAccelerated) kernel.Run<Vector256<float>, Simd256>();
        else if (Vector128.IsHardwareAccelerated) kernel.Run<Vector128<float>, Simd128>();
        else kernel.Run<float, SimdScalar>();
    }

    /// <summary>Loads n ≤ Count lanes; the lanes past n are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TV, TO> Load<TV, TO>(float* p, int n) where TV : unmanaged where TO : ISimd<TV> =>
        new(n == TO.Count ? TO.Load(p) : TO.LoadFirst(p, n));

    /// <summary>Stores the first n ≤ Count lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TV, TO>(float* p, Vec<TV, TO> x, int n) where TV : unmanaged where TO : ISimd<TV>
    {
        if (n == TO.Count) TO.Store(p, x.V);
        else TO.StoreFirst(p, x.V, n);
    }

    /// <summary>
    /// The first n lanes through a register image in memory: the tail where the hardware has no masked load (128-bit
    /// without AVX, and the software-emulated widths). Out of line, because a local whose address is taken sends every
    /// vector of the calling kernel's loop to the stack.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static TV LoadThroughMemory<TV>(float* p, int n) where TV : unmanaged
    {
        TV v = default;
        float* lanes = (float*)&v;
        for (int k = 0; k < n; k++) lanes[k] = p[k];
        return v;
    }

    /// <inheritdoc cref="LoadThroughMemory{TV}"/>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void StoreThroughMemory<TV>(float* p, TV v, int n) where TV : unmanaged
    {
        float* lanes = (float*)&v;
        for (int k = 0; k < n; k++) p[k] = lanes[k];
    }

    /// <summary>σ(x) = (1 + tanh(x/2)) / 2: within 1.5e-7 of σ (absolute), 0 &lt; σ &lt; 1; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TV, TO> Sigmoid<TV, TO>(Vec<TV, TO> x) where TV : unmanaged where TO : ISimd<TV>
    {
        var half = TO.Create(0.5f);
        return new(TO.MultiplyAdd(half, Tanh<TV, TO>(TO.Multiply(half, x.V)), half));
    }

    /// <summary>
    /// tanh(x) as a rational function (odd degree-13 over even degree-6 polynomial, Eigen's fast float tanh) on x
    /// clamped to ±7.905, where tanh is 1 to float precision: within 3e-7 of tanh; NaN stays NaN. The gate maths
    /// of every recurrent step runs through it: multiply-adds and one division instead of an exponential, which
    /// costs several times more (Vector256.Exp works in double precision).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TV, TO> Tanh<TV, TO>(Vec<TV, TO> x) where TV : unmanaged where TO : ISimd<TV> => new(Tanh<TV, TO>(x.V));

    // On the raw register: five of these inline into one LSTM step, and the operator wrappers' temporaries would
    // outnumber the locals the JIT keeps in registers (the rest then live on the stack).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Tanh<TV, TO>(TV x) where TV : unmanaged where TO : ISimd<TV>
    {
        var clamp = TO.Create(-7.90531110763549805f);
        x = TO.Negate(TO.Max(clamp, TO.Negate(TO.Max(clamp, x)))); // x second: NaN stays NaN
        var x2 = TO.Multiply(x, x);
        var p = TO.MultiplyAdd(x2, TO.Create(-2.76076847742355e-16f), TO.Create(2.00018790482477e-13f));
        p = TO.MultiplyAdd(x2, p, TO.Create(-8.60467152213735e-11f));
        p = TO.MultiplyAdd(x2, p, TO.Create(5.12229709037114e-08f));
        p = TO.MultiplyAdd(x2, p, TO.Create(1.48572235717979e-05f));
        p = TO.MultiplyAdd(x2, p, TO.Create(6.37261928875436e-04f));
        p = TO.MultiplyAdd(x2, p, TO.Create(4.89352455891786e-03f));
        var q = TO.MultiplyAdd(x2, TO.Create(1.19825839466702e-06f), TO.Create(1.18534705686654e-04f));
        q = TO.MultiplyAdd(x2, q, TO.Create(2.26843463243900e-03f));
        q = TO.MultiplyAdd(x2, q, TO.Create(4.89352518554385e-03f));
        return TO.Divide(TO.Multiply(x, p), q);
    }
}
