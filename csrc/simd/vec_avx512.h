// AVX-512 (F + DQ) vector wrapper, included by simd/vec.h (interface documented there).
// Vec<float>: 16 lanes in a zmm register, Vec<double>: 8. Masks are k-registers. Partial loads
// and stores are masked (lanes past n are neither read nor written, so they cannot fault).
// ldexp is vscalefps / vscalefpd: any n, one rounding, overflow and subnormals handled in hardware;
// ldexp_normal is the same instruction.
// min, max and scalef are spelled as their zero-masking forms with an all-ones mask (the same
// instruction): GCC 12's plain forms trip a false -Wmaybe-uninitialized (GCC bug 105593).
#pragma once

#include <immintrin.h>

#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  using Scalar = float;
  static constexpr int kWidth = 16;
  struct Mask {
    __mmask16 k;
  };
  __m512 v;

  PYRNN_SIMD_INLINE static Mask tail(int n) { return {static_cast<__mmask16>((1u << n) - 1u)}; }  // 0 <= n <= 16
  PYRNN_SIMD_INLINE static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  PYRNN_SIMD_INLINE static Vec load_partial(const float* p, int n) { return {_mm512_maskz_loadu_ps(tail(n).k, p)}; }
  PYRNN_SIMD_INLINE void store(float* p) const { _mm512_storeu_ps(p, v); }
  PYRNN_SIMD_INLINE void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, tail(n).k, v); }
  PYRNN_SIMD_INLINE static Vec broadcast(float x) { return {_mm512_set1_ps(x)}; }
  PYRNN_SIMD_INLINE static Vec zero() { return {_mm512_setzero_ps()}; }
};

template <>
struct Vec<double> {
  using Scalar = double;
  static constexpr int kWidth = 8;
  struct Mask {
    __mmask8 k;
  };
  __m512d v;

  PYRNN_SIMD_INLINE static Mask tail(int n) { return {static_cast<__mmask8>((1u << n) - 1u)}; }  // 0 <= n <= 8
  PYRNN_SIMD_INLINE static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
  PYRNN_SIMD_INLINE static Vec load_partial(const double* p, int n) { return {_mm512_maskz_loadu_pd(tail(n).k, p)}; }
  PYRNN_SIMD_INLINE void store(double* p) const { _mm512_storeu_pd(p, v); }
  PYRNN_SIMD_INLINE void store_partial(double* p, int n) const { _mm512_mask_storeu_pd(p, tail(n).k, v); }
  PYRNN_SIMD_INLINE static Vec broadcast(double x) { return {_mm512_set1_pd(x)}; }
  PYRNN_SIMD_INLINE static Vec zero() { return {_mm512_setzero_pd()}; }
};

using VecF32 = Vec<float>;
using VecF64 = Vec<double>;

// ---- float ----
PYRNN_SIMD_INLINE VecF32 operator+(VecF32 a, VecF32 b) { return {_mm512_add_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator-(VecF32 a, VecF32 b) { return {_mm512_sub_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator*(VecF32 a, VecF32 b) { return {_mm512_mul_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator/(VecF32 a, VecF32 b) { return {_mm512_div_ps(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 operator-(VecF32 a) { return {_mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f))}; }
PYRNN_SIMD_INLINE VecF32 fma(VecF32 a, VecF32 b, VecF32 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
PYRNN_SIMD_INLINE VecF32 min(VecF32 a, VecF32 b) { return {_mm512_maskz_min_ps(0xFFFF, a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 max(VecF32 a, VecF32 b) { return {_mm512_maskz_max_ps(0xFFFF, a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF32 abs(VecF32 a) { return {_mm512_abs_ps(a.v)}; }
PYRNN_SIMD_INLINE VecF32 copysign(VecF32 mag, VecF32 sign) {
  const __m512 s = _mm512_set1_ps(-0.0f);
  return {_mm512_or_ps(_mm512_andnot_ps(s, mag.v), _mm512_and_ps(s, sign.v))};
}
PYRNN_SIMD_INLINE VecF32 ldexp(VecF32 x, VecF32 n) { return {_mm512_maskz_scalef_ps(0xFFFF, x.v, n.v)}; }
PYRNN_SIMD_INLINE VecF32 ldexp_normal(VecF32 x, VecF32 n) { return ldexp(x, n); }
PYRNN_SIMD_INLINE VecF32::Mask operator<(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator<=(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator>(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator>=(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator==(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator!=(VecF32 a, VecF32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_NEQ_UQ)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator&(VecF32::Mask a, VecF32::Mask b) { return {static_cast<__mmask16>(a.k & b.k)}; }
PYRNN_SIMD_INLINE VecF32::Mask operator|(VecF32::Mask a, VecF32::Mask b) { return {static_cast<__mmask16>(a.k | b.k)}; }
PYRNN_SIMD_INLINE VecF32 select(VecF32::Mask m, VecF32 a, VecF32 b) { return {_mm512_mask_blend_ps(m.k, b.v, a.v)}; }
PYRNN_SIMD_INLINE bool any(VecF32::Mask m) { return m.k != 0; }
PYRNN_SIMD_INLINE bool all(VecF32::Mask m) { return m.k == 0xFFFF; }

// ---- double ----
PYRNN_SIMD_INLINE VecF64 operator+(VecF64 a, VecF64 b) { return {_mm512_add_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator-(VecF64 a, VecF64 b) { return {_mm512_sub_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator*(VecF64 a, VecF64 b) { return {_mm512_mul_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator/(VecF64 a, VecF64 b) { return {_mm512_div_pd(a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 operator-(VecF64 a) { return {_mm512_xor_pd(a.v, _mm512_set1_pd(-0.0))}; }
PYRNN_SIMD_INLINE VecF64 fma(VecF64 a, VecF64 b, VecF64 c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
PYRNN_SIMD_INLINE VecF64 min(VecF64 a, VecF64 b) { return {_mm512_maskz_min_pd(0xFF, a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 max(VecF64 a, VecF64 b) { return {_mm512_maskz_max_pd(0xFF, a.v, b.v)}; }
PYRNN_SIMD_INLINE VecF64 abs(VecF64 a) { return {_mm512_abs_pd(a.v)}; }
PYRNN_SIMD_INLINE VecF64 copysign(VecF64 mag, VecF64 sign) {
  const __m512d s = _mm512_set1_pd(-0.0);
  return {_mm512_or_pd(_mm512_andnot_pd(s, mag.v), _mm512_and_pd(s, sign.v))};
}
PYRNN_SIMD_INLINE VecF64 ldexp(VecF64 x, VecF64 n) { return {_mm512_maskz_scalef_pd(0xFF, x.v, n.v)}; }
PYRNN_SIMD_INLINE VecF64 ldexp_normal(VecF64 x, VecF64 n) { return ldexp(x, n); }
PYRNN_SIMD_INLINE VecF64::Mask operator<(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator<=(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator>(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator>=(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator==(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_EQ_OQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator!=(VecF64 a, VecF64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_NEQ_UQ)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator&(VecF64::Mask a, VecF64::Mask b) { return {static_cast<__mmask8>(a.k & b.k)}; }
PYRNN_SIMD_INLINE VecF64::Mask operator|(VecF64::Mask a, VecF64::Mask b) { return {static_cast<__mmask8>(a.k | b.k)}; }
PYRNN_SIMD_INLINE VecF64 select(VecF64::Mask m, VecF64 a, VecF64 b) { return {_mm512_mask_blend_pd(m.k, b.v, a.v)}; }
PYRNN_SIMD_INLINE bool any(VecF64::Mask m) { return m.k != 0; }
PYRNN_SIMD_INLINE bool all(VecF64::Mask m) { return m.k == 0xFF; }

}  // namespace pyrnn::PYRNN_ISA
