// Vector math shared by the CPU kernels (internal, not part of the C ABI): one SIMD width per translation unit (`Isa`:
// AVX-512, else AVX2 + FMA, else none, by the flags it is compiled with) with the lane operations the row kernels use,
// and the Cephes single-precision exp in its two forms: on whole registers (Isa::exp, exactly 0 below the float range)
// and as a scalar function that `omp simd` loops vectorize (dn_fast_exp; libm's expf is a call no loop vectorizes).
// Both are ~2 ulp.
#pragma once
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace dn_simd {

// Cephes expf: n = round(x·log2 e), r = x − n·kLn2Hi − n·kLn2Lo (ln 2 split in two so that n·kLn2Hi is exact),
// e^r ≈ 1 + r + r²·P(r) with P of degree 5 (kExpPoly, highest power first), exp(x) = 2^n · e^r.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
// Below kExpUnder the result is not a normal float: Isa::exp returns 0 there.
constexpr float kExpUnder = -87.33654475f;
constexpr float kExpOver = 88.0f;

// 1 + r + r²·P(r) on whole registers, for |r| ≤ ln 2 / 2.
template <typename Isa>
inline typename Isa::F exp_poly(typename Isa::F x) {
  typename Isa::F z = Isa::mul(x, x);
  typename Isa::F y = Isa::set1(kExpPoly[0]);
  y = Isa::fma(y, x, Isa::set1(kExpPoly[1]));
  y = Isa::fma(y, x, Isa::set1(kExpPoly[2]));
  y = Isa::fma(y, x, Isa::set1(kExpPoly[3]));
  y = Isa::fma(y, x, Isa::set1(kExpPoly[4]));
  y = Isa::fma(y, x, Isa::set1(kExpPoly[5]));
  return Isa::fma(y, z, Isa::add(x, Isa::set1(1.0f)));
}

// The register type, its lane count and the lane operations both widths spell alike: _mm512_<op>_ps / _mm256_<op>_ps.
#define DN_SIMD_LANE_OPS(pfx, bits)                                    \
  using F = __m##bits;                                                 \
  static constexpr int W = bits / 32;                                  \
  static F load(const float* p) { return pfx##loadu_ps(p); }           \
  static void store(float* p, F x) { pfx##storeu_ps(p, x); }           \
  static void stream(float* p, F x) { pfx##stream_ps(p, x); }          \
  static F set1(float x) { return pfx##set1_ps(x); }                   \
  static F add(F a, F b) { return pfx##add_ps(a, b); }                 \
  static F sub(F a, F b) { return pfx##sub_ps(a, b); }                 \
  static F mul(F a, F b) { return pfx##mul_ps(a, b); }                 \
  static F div(F a, F b) { return pfx##div_ps(a, b); }                 \
  static F fma(F a, F b, F c) { return pfx##fmadd_ps(a, b, c); }       \
  static F fnma(F a, F b, F c) { return pfx##fnmadd_ps(a, b, c); }     \
  static F max(F a, F b) { return pfx##max_ps(a, b); }                 \
  static F min(F a, F b) { return pfx##min_ps(a, b); }                 \
  /* 2^n for integral n in the float range (the exponent field built directly). */ \
  static F pow2(F n) {                                                                  \
    return pfx##castsi##bits##_ps(pfx##slli_epi32(pfx##add_epi32(pfx##cvtps_epi32(n), pfx##set1_epi32(127)), 23)); \
  }                                                                                     \
  /* The bits of x shifted left by 23 (2^e from a float whose low mantissa bits hold the biased exponent e + 127). */ \
  static F shl23(F x) { return pfx##castsi##bits##_ps(pfx##slli_epi32(pfx##castps_si##bits(x), 23)); }

// exp on whole registers: Cephes range reduction (n = round(x·log2 e), r = x − n·ln 2 in two parts), exp_poly, 2^n;
// exactly 0 below kExpUnder (the callers' masked-out lanes rely on it).
#define DN_SIMD_EXP                                                                   \
  static F exp(F x) {                                                                 \
    const F lo = set1(kExpUnder);                                                     \
    const auto under = below(x, lo);                                                  \
    x = max(min(x, set1(kExpOver)), lo);                                              \
    const F n = round(mul(x, set1(kLog2e)));                                          \
    x = fnma(n, set1(kLn2Hi), x);                                                     \
    x = fnma(n, set1(kLn2Lo), x);                                                     \
    return zero_where(under, mul(exp_poly<Isa>(x), pow2(n)));                         \
  }                                                                                   \
  /* exp for x ≤ ~0 (softmax terms, x = z − max up to a rounding error): the same reduction and  \
     polynomial, but n = round(x·log2 e) comes from one FMA with 1.5·2²³ + 127 (the sum's low      \
     mantissa bits are n + 127, already biased: shifted by 23 they are 2^n) instead of a round, a  \
     conversion and an add, and there is no upper clamp. Exactly 0 below kExpUnder, as exp. */      \
  static F exp_nonpositive(F x) {                                                     \
    const F lo = set1(kExpUnder), shifter = set1(12582912.0f + 127.0f);              \
    const auto under = below(x, lo);                                                  \
    x = max(x, lo);                                                                   \
    const F t = fma(x, set1(kLog2e), shifter);                                        \
    const F n = sub(t, shifter);                                                      \
    x = fnma(n, set1(kLn2Hi), x);                                                     \
    x = fnma(n, set1(kLn2Lo), x);                                                     \
    return zero_where(under, mul(exp_poly<Isa>(x), shl23(t)));                        \
  }

// c[j] = column j of the 8×8 block whose rows are r[0..7] (8 floats each): 24 shuffles in registers, in place of 64
// strided scalar stores. 256-bit at both levels (packing blocks and key transposes are 8 wide).
#define DN_SIMD_TRANSPOSE8                                                                              \
  static void transpose8(const __m256 (&r)[8], __m256 (&c)[8]) {                                        \
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);              \
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);              \
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);              \
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);              \
    /* u0: rows 0-3 of columns 0 and 4 (one per 128-bit lane), u1: columns 1 and 5, u2: 2 and 6, u3: 3 and 7; \
       u4-u7 the same for rows 4-7. */                                                                  \
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);            \
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);            \
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);            \
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);            \
    c[0] = _mm256_permute2f128_ps(u0, u4, 0x20);                                                        \
    c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);                                                        \
    c[2] = _mm256_permute2f128_ps(u2, u6, 0x20);                                                        \
    c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);                                                        \
    c[4] = _mm256_permute2f128_ps(u0, u4, 0x31);                                                        \
    c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);                                                        \
    c[6] = _mm256_permute2f128_ps(u2, u6, 0x31);                                                        \
    c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);                                                        \
  }

// One Isa per level, in a namespace named after it: kernels compiled once per level (gemm/cpu, loss/cpu *_<level>.cpp)
// link into one binary, and their inline functions must not be merged across levels by the linker.
#if defined(__AVX512F__)
inline namespace avx512 {
struct Isa {
  DN_SIMD_LANE_OPS(_mm512_, 512)
  static float rmax(F a) { return _mm512_reduce_max_ps(a); }
  static float rmin(F a) { return _mm512_reduce_min_ps(a); }
  static float rsum(F a) { return _mm512_reduce_add_ps(a); }
  static bool anynan(F a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) != 0; }
  static F round(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static __mmask16 below(F x, F lo) { return _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ); }
  static F zero_where(__mmask16 m, F x) { return _mm512_maskz_mov_ps((__mmask16)~m, x); }
  DN_SIMD_EXP
  DN_SIMD_TRANSPOSE8
};
}  // namespace avx512
#elif defined(__AVX2__) && defined(__FMA__)
inline namespace avx2 {
struct Isa {
  DN_SIMD_LANE_OPS(_mm256_, 256)
  // Horizontal reductions: the two 128-bit halves, then within 4 lanes.
  template <typename Op>
  static float reduce(F v, Op op) {
    __m128 m = op(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = op(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(op(m, _mm_shuffle_ps(m, m, 1)));
  }
  static float rmax(F v) { return reduce(v, [](__m128 a, __m128 b) { return _mm_max_ps(a, b); }); }
  static float rmin(F v) { return reduce(v, [](__m128 a, __m128 b) { return _mm_min_ps(a, b); }); }
  static float rsum(F v) { return reduce(v, [](__m128 a, __m128 b) { return _mm_add_ps(a, b); }); }
  static bool anynan(F a) { return _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q)) != 0; }
  static F round(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F below(F x, F lo) { return _mm256_cmp_ps(x, lo, _CMP_LT_OQ); }
  static F zero_where(F m, F x) { return _mm256_andnot_ps(m, x); }
  DN_SIMD_EXP
  DN_SIMD_TRANSPOSE8
};
}  // namespace avx2
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define DN_SIMD 1
#endif
#undef DN_SIMD_LANE_OPS
#undef DN_SIMD_EXP
#undef DN_SIMD_TRANSPOSE8

}  // namespace dn_simd

// The scalar form, written for `omp simd` loops (the caller's vectorizer turns it into Isa-width code): the clamp to
// [-87, 88] replaces Isa::exp's zero below the range, rounding goes through an integer conversion (std::floor does not
// vectorize without -ffast-math), and the polynomial ends as p·r·r + r + 1. Its results therefore differ from
// Isa::exp in the last bit at times; each kernel keeps the one its tests were measured with.
static inline float dn_fast_exp(float x) {
  using namespace dn_simd;
  x = x < -87.0f ? -87.0f : (x > kExpOver ? kExpOver : x);
  const float t = x * kLog2e;
  const int32_t ni = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
  const float n = (float)ni;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kExpPoly[0];
  p = p * r + kExpPoly[1];
  p = p * r + kExpPoly[2];
  p = p * r + kExpPoly[3];
  p = p * r + kExpPoly[4];
  p = p * r + kExpPoly[5];
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  return y * __builtin_bit_cast(float, bits);
}
