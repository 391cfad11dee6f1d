// Vectorised exp on the SIMD wrapper (per ISA): VecF32 exp(VecF32), VecF64 exp(VecF64), and
// exp_normal, the same bits for x in [kNormalLo, 0] (NaN -> NaN) at a lower cost, for the
// activations.
//
// Method. x is clamped to [kLo, kHi] (a NaN passes through); n = round(x log2(e)) with the
// 1.5 * 2^mant shifter; r = x - n ln2 in two fma steps (Cody-Waite: ln2_hi has enough trailing
// zero bits that n ln2_hi is exact for every n the clamp allows, so x - n ln2_hi is exact and
// |r| <= ln2 / 2 up to rounding); exp(r) = 1 + r + r^2 Q(r) with Q the minimax polynomial for
// the relative error of exp on |r| <= ln2 / 2 (1 + 2^-10) (tools/remez.py); finally
// exp(x) = ldexp(exp(r), n), rounded once, so results in the subnormal range are right too.
//   float:  Q of degree 4, approximation error 4.4e-9 relative (<= 0.07 ulp)
//   double: Q of degree 9, approximation error 9.6e-18 relative (0.09 ulp)
// Saturation. The clamp bounds are past both ends of the representable range, so
// exp(x) = +inf from x = 88.72284 (float) / 709.78271289338 (double), +inf included; subnormal
// below -87.34 / -708.40; 0 below -103.97208 / -745.13322, -inf included. Never NaN for a
// non-NaN input.
// exp_normal. For x in [kNormalLo, 0], where exp(x) is a normal number no more than 1
// (exp(kNormalLo) > 2^-126 / 2^-1022), the scaling by 2^n is exact with one multiplication:
// exp_normal skips the clamp and scales with ldexp_normal, where ldexp halves n and multiplies
// twice. The same bits as exp there, in 15 vector operations in place of 22 (AVX2, float).
// Outside that range (NaN aside: NaN -> NaN) its result is unspecified.
// Error bound: 1.5 ulp over the whole range, subnormal results included (asserted by
// tests/test_math.py). Measured maximum (tools/ulp_scan.py): float 1.02 ulp (0.99 on generic)
// over all 2^32 inputs; double 1.03 ulp over 3.4e7 inputs (random bit patterns, dense grids).
#pragma once

#include "math/polynomial.h"
#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct ExpConstants;

template <>
struct ExpConstants<float> {
  static constexpr float kLo = -104.0f;  // exp(-104) < 2^-150: rounds to 0
  static constexpr float kHi = 89.0f;    // exp(89) > 2^128: rounds to +inf
  static constexpr float kNormalLo = -87.0f;  // exp(-87) = 1.4 * 2^-126
  static constexpr float kShifter = 0x1.8p23f;
  static constexpr float kLog2e = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62e4p-1f;  // 15 significant bits: n ln2_hi exact for |n| < 2^9
  static constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
  template <typename V>
  PYRNN_SIMD_INLINE static V q(V r) {
    return horner(r, 0.4999999403953552f, 0.1666651964187622f, 0.04166839271783829f, 0.008368778973817825f,
                  0.001381447073072195f);
  }
};

template <>
struct ExpConstants<double> {
  static constexpr double kLo = -746.0;  // exp(-746) < 2^-1075: rounds to 0
  static constexpr double kHi = 710.0;   // exp(710) > 2^1024: rounds to +inf
  static constexpr double kNormalLo = -708.0;  // exp(-708) = 1.5 * 2^-1022
  static constexpr double kShifter = 0x1.8p52;
  static constexpr double kLog2e = 0x1.71547652b82fep+0;
  static constexpr double kLn2Hi = 0x1.62e42fefa38p-1;  // 42 significant bits: n ln2_hi exact for |n| < 2^11
  static constexpr double kLn2Lo = 0x1.ef35793c7673p-45;
  template <typename V>
  PYRNN_SIMD_INLINE static V q(V r) {
    return horner(r, 0.5000000000000011, 0.1666666666666641, 0.04166666666652921, 0.008333333333495598,
                  0.0013888888943915092, 0.00019841269504804096, 2.4801492771463396e-05, 2.7557587324996475e-06,
                  2.763037526266667e-07, 2.4999965207409352e-08);
  }
};

// kNormalResult: x is in [kNormalLo, 0] or NaN (exp_normal).
template <bool kNormalResult, typename V>
PYRNN_SIMD_INLINE V exp_impl(V x) {
  using T = typename V::Scalar;
  using C = ExpConstants<T>;
  if constexpr (!kNormalResult)
    x = min(V::broadcast(C::kHi), max(V::broadcast(C::kLo), x));  // this operand order keeps a NaN
  const V shifter = V::broadcast(C::kShifter);
  const V n = fma(x, V::broadcast(C::kLog2e), shifter) - shifter;
  V r = fma(n, V::broadcast(-C::kLn2Hi), x);
  r = fma(n, V::broadcast(-C::kLn2Lo), r);
  const V p = fma(r * r, C::q(r), r) + V::broadcast(T(1));
  if constexpr (kNormalResult) return ldexp_normal(p, n);
  else return ldexp(p, n);
}

PYRNN_SIMD_INLINE VecF32 exp(VecF32 x) { return exp_impl<false>(x); }
PYRNN_SIMD_INLINE VecF64 exp(VecF64 x) { return exp_impl<false>(x); }
PYRNN_SIMD_INLINE VecF32 exp_normal(VecF32 x) { return exp_impl<true>(x); }
PYRNN_SIMD_INLINE VecF64 exp_normal(VecF64 x) { return exp_impl<true>(x); }

}  // namespace pyrnn::PYRNN_ISA
