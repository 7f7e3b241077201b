using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace DeepSeq.Core.Kernels;

// The four widths of ISimd. Each member is one System.Runtime.Intrinsics call (SimdScalar: one float operation)
// and inlines away, so a generic kernel compiles to the code one would write for that width by hand.
// MultiplyAdd is MultiplyAddEstimate: fused where the hardware has FMA, a multiply and an add where it has not
// (FusedMultiplyAdd falls back to a software FMA there, several times slower than the two instructions).
// Max is the hardware's maximum (one maxps), not VectorN.Max's IEEE maximum (about ten compare, blend and or
// instructions, twice in every tanh of the recurrent gates): it returns b where either is NaN (x86; Arm returns NaN
// from either side), so kernels pass the value that may be NaN as b, and NaN stays NaN.

/// <summary>512-bit registers (16 floats).</summary>
internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static bool IsAccelerated => Vector512.IsHardwareAccelerated;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    // Masked vmovups: the lanes past n are neither read nor written (faults suppressed). A call here instead (the
    // register image in memory) made the JIT keep every accumulator of the calling kernel on the stack at each
    // multiply-add, since the call clobbers all vector registers: the convolution's product ran at half speed.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadFirst(float* p, int n) =>
        Avx512F.IsSupported ? Avx512F.MaskLoad(p, First(n), Vector512<float>.Zero) : Lanes.LoadThroughMemory<Vector512<float>>(p, n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFirst(float* p, Vector512<float> v, int n)
    {
        if (Avx512F.IsSupported) Avx512F.MaskStore(p, First(n), v);
        else Lanes.StoreThroughMemory(p, v, n);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> First(int n) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float* p) => Vector512.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Negate(Vector512<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => Vector512.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> x) => Vector512.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Avx512F.IsSupported ? Avx512F.Max(a, b) : Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> x) => Vector512.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> IfPositive(Vector512<float> x, Vector512<float> value) => Vector512.GreaterThan(x, Vector512<float>.Zero) & value;
}

/// <summary>256-bit registers (8 floats).</summary>
internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    // vmaskmovps: the lanes past n are neither read nor written (no fault past the end of a buffer).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadFirst(float* p, int n) => Avx.IsSupported ? Avx.MaskLoad(p, First(n)) : Lanes.LoadThroughMemory<Vector256<float>>(p, n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFirst(float* p, Vector256<float> v, int n)
    {
        if (Avx.IsSupported) Avx.MaskStore(p, First(n), v);
        else Lanes.StoreThroughMemory(p, v, n);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> First(int n) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(n)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float* p) => Vector256.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Negate(Vector256<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => Vector256.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Avx.IsSupported ? Avx.Max(a, b) : Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> x) => Vector256.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> IfPositive(Vector256<float> x, Vector256<float> value) => Vector256.GreaterThan(x, Vector256<float>.Zero) & value;
}

/// <summary>128-bit registers (4 floats).</summary>
internal readonly unsafe struct Simd128 : ISimd<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static bool IsAccelerated => Vector128.IsHardwareAccelerated;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadFirst(float* p, int n) => Avx.IsSupported ? Avx.MaskLoad(p, First(n)) : Lanes.LoadThroughMemory<Vector128<float>>(p, n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFirst(float* p, Vector128<float> v, int n)
    {
        if (Avx.IsSupported) Avx.MaskStore(p, First(n), v);
        else Lanes.StoreThroughMemory(p, v, n);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<float> First(int n) => Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(n)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Create(float x) => Vector128.Create(x);
    // Without AVX2 the JIT builds Create(*p) from a scalar load and a shuffle, which competes with the multiplies
    // and adds for the vector ports (the 128-bit GEMM reached ~58% of its peak that way, ~75% with one load).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float* p) =>
        Avx.IsSupported ? Avx.BroadcastScalarToVector128(p) : AdvSimd.IsSupported ? AdvSimd.LoadAndReplicateToVector128(p) : Vector128.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Negate(Vector128<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp(Vector128<float> x) => Vector128.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sqrt(Vector128<float> x) => Vector128.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) =>
        Sse.IsSupported ? Sse.Max(a, b) : AdvSimd.IsSupported ? AdvSimd.Max(a, b) : Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> x) => Vector128.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> IfPositive(Vector128<float> x, Vector128<float> value) => Vector128.GreaterThan(x, Vector128<float>.Zero) & value;
}

/// <summary>One float: the kernels' path where no vector width is accelerated (e.g. <c>DOTNET_EnableHWIntrinsic=0</c>).</summary>
internal readonly unsafe struct SimdScalar : ISimd<float>
{
    public static int Count => 1;
    public static bool IsAccelerated => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float v) => *p = v;
    // One lane: n is always Count, so there is no first-n case.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LoadFirst(float* p, int n) => n > 0 ? *p : 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreFirst(float* p, float v, int n) { if (n > 0) *p = v; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Create(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Subtract(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Negate(float a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Divide(float a, float b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MultiplyAdd(float a, float b, float c) => float.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp(float x) => MathF.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sqrt(float x) => MathF.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float a, float b) => a > b ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float IfPositive(float x, float value) => x > 0f ? value : 0f;
}
