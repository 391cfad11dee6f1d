// AVX2 + FMA vector wrapper, included by simd/vec.h (interface documented there).
// Vec<float>: 8 lanes in a ymm register, Vec<double>: 4. Masks are all-ones / all-zeros lanes.
// Partial loads and stores use vmaskmov (lanes past n are neither read nor written, so they
// cannot fault). ldexp builds 2^n1 and 2^n2 (n1 = n / 2 rounded, n2 = n - n1) in the exponent
// field and multiplies by both, so that each factor is a normal number; ldexp_normal builds 2^n.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  using Scalar = float;
  static constexpr int kWidth = 8;
  struct Mask {
    __m256 m;
  };
  __m256 v;

  PYRNN_SIMD_INLINE static __m256i tail(int n) {  // lanes < n all ones, 0 <= n <= 8
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  PYRNN_SIMD_INLINE static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  PYRNN_SIMD_INLINE static Vec load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, tail(n))}; }
  PYRNN_SIMD_INLINE void store(float* p) const { _mm256_storeu_ps(p, v); }
  PYRNN_SIMD_INLINE void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, tail(n), v); }
  PYRNN_SIMD_INLINE static Vec broadcast(float x) { return {_mm256_set1_ps(x)}; }
  PYRNN_SIMD_INLINE static Vec zero() { return {_mm256_setzero_ps()}; }
};

template <>
struct Vec<double> {
  using Scalar = double;
  static constexpr int kWidth = 4;
  struct Mask {
    __m256d m;
  };
  __m256d v;

  PYRNN_SIMD_INLINE static __m256i tail(int n) {  // lanes < n all ones, 0 <= n <= 4
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  PYRNN_SIMD_INLINE static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
  PYRNN_SIMD_INLINE static Vec load_partial(const double* p, int n) { return {_mm256_maskload_pd(p, tail(n))}; }
  PYRNN_SIMD_INLINE void store(double* p) const { _mm256_storeu_pd(p, v); }
  PYRNN_SIMD_INLINE void store_partial(double* p, int n) const { _mm256_maskstore_pd(p, tail(n), v); }
  PYRNN_SIMD_INLINE static Vec broadcast(double x) { return {_mm256_set1_pd(x)}; }
  PYRNN_SIMD_INLINE static Vec zero() { return {_mm256_setzero_pd()}; }
};

using VecF32 = Vec<float>;
using VecF64 = Vec<double>;

// ---- float ----
PYRNN_SIMD_INLINE VecF32 operator+(VecF32 a, VecF32 b) { return {_mm256_add_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator-(VecF32 a, VecF32 b) { return {_mm256_sub_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator*(VecF32 a, VecF32 b) { return {_mm256_mul_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator/(VecF32 a, VecF32 b) { return {_mm256_div_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator-(VecF32 a) { return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))}; }
PYRNN_SIMD_INLINE VecF32 fma(VecF32 a, VecF32 b, VecF32 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
PYRNN_SIMD_INLINE VecF32 min(VecF32 a, VecF32 b) { return {_mm256_min_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 max(VecF32 a, VecF32 b) { return {_mm256_max_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 abs(VecF32 a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
PYRNN_SIMD_INLINE VecF32 copysign(VecF32 mag, VecF32 sign) {
  const __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(s, sign.v))};
}
// 2^k for integer lanes k in the normal range: k + 127 in the exponent field.
PYRNN_SIMD_INLINE __m256 exponent_scale(__m256i k) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}
PYRNN_SIMD_INLINE VecF32 ldexp(VecF32 x, VecF32 n) {
  const __m256i ni = _mm256_cvtps_epi32(n.v);  // exact: n is integral
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  return {_mm256_mul_ps(_mm256_mul_ps(x.v, exponent_scale(n1)), exponent_scale(n2))};
}
PYRNN_SIMD_INLINE VecF32 ldexp_normal(VecF32 x, VecF32 n) {
  return {_mm256_mul_ps(x.v, exponent_scale(_mm256_cvtps_epi32(n.v)))};  // exact conversion: n is integral
}
PYRNN_SIMD_INLINE VecF32::Mask operator<(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator<=(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator>(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator>=(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator==(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator!=(VecF32 a, VecF32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_NEQ_UQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator&(VecF32::Mask a, VecF32::Mask b) { return {_mm256_and_ps(a.m, b.m)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator|(VecF32::Mask a, VecF32::Mask b) { return {_mm256_or_ps(a.m, b.m)}; }
PYRNN_SIMD_INLINE VecF32 select(VecF32::Mask m, VecF32 a, VecF32 b) { return {_mm256_blendv_ps(b.v, a.v, m.m)}; }
PYRNN_SIMD_INLINE bool any(VecF32::Mask m) { return _mm256_movemask_ps(m.m) != 0; }
PYRNN_SIMD_INLINE bool all(VecF32::Mask m) { return _mm256_movemask_ps(m.m) == 0xFF; }

// ---- double ----
PYRNN_SIMD_INLINE VecF64 operator+(VecF64 a, VecF64 b) { return {_mm256_add_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator-(VecF64 a, VecF64 b) { return {_mm256_sub_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator*(VecF64 a, VecF64 b) { return {_mm256_mul_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator/(VecF64 a, VecF64 b) { return {_mm256_div_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator-(VecF64 a) { return {_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))}; }
PYRNN_SIMD_INLINE VecF64 fma(VecF64 a, VecF64 b, VecF64 c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
PYRNN_SIMD_INLINE VecF64 min(VecF64 a, VecF64 b) { return {_mm256_min_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 max(VecF64 a, VecF64 b) { return {_mm256_max_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 abs(VecF64 a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
PYRNN_SIMD_INLINE VecF64 copysign(VecF64 mag, VecF64 sign) {
  const __m256d s = _mm256_set1_pd(-0.0);
  return {_mm256_or_pd(_mm256_andnot_pd(s, mag.v), _mm256_and_pd(s, sign.v))};
}
// No double -> int64 conversion in AVX2: adding 1.5 * 2^52 to an integral k (|k| < 2^51) leaves k
// in the low mantissa bits (`shifted`), and shifting those bits left by 52 gives k << 52.
PYRNN_SIMD_INLINE __m256d exponent_scale(__m256d shifted) {
  const __m256i exponent = _mm256_slli_epi64(_mm256_castpd_si256(shifted), 52);
  return _mm256_castsi256_pd(_mm256_add_epi64(exponent, _mm256_set1_epi64x(std::int64_t{1023} << 52)));
}
PYRNN_SIMD_INLINE VecF64 ldexp(VecF64 x, VecF64 n) {
  const __m256d shifter = _mm256_set1_pd(0x1.8p52);
  const __m256d t1 = _mm256_fmadd_pd(n.v, _mm256_set1_pd(0.5), shifter);  // n1 = round(n / 2)
  const __m256d t2 = _mm256_add_pd(_mm256_sub_pd(n.v, _mm256_sub_pd(t1, shifter)), shifter);  // n - n1
  return {_mm256_mul_pd(_mm256_mul_pd(x.v, exponent_scale(t1)), exponent_scale(t2))};
}
PYRNN_SIMD_INLINE VecF64 ldexp_normal(VecF64 x, VecF64 n) {
  return {_mm256_mul_pd(x.v, exponent_scale(_mm256_add_pd(n.v, _mm256_set1_pd(0x1.8p52))))};
}
PYRNN_SIMD_INLINE VecF64::Mask operator<(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator<=(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator>(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator>=(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator==(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_EQ_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator!=(VecF64 a, VecF64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_NEQ_UQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator&(VecF64::Mask a, VecF64::Mask b) { return {_mm256_and_pd(a.m, b.m)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator|(VecF64::Mask a, VecF64::Mask b) { return {_mm256_or_pd(a.m, b.m)}; }
PYRNN_SIMD_INLINE VecF64 select(VecF64::Mask m, VecF64 a, VecF64 b) { return {_mm256_blendv_pd(b.v, a.v, m.m)}; }
PYRNN_SIMD_INLINE bool any(VecF64::Mask m) { return _mm256_movemask_pd(m.m) != 0; }
PYRNN_SIMD_INLINE bool all(VecF64::Mask m) { return _mm256_movemask_pd(m.m) == 0xF; }

}  // namespace pyrnn::PYRNN_ISA
