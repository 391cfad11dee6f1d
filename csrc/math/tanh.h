// Vectorised hyperbolic tangent on the SIMD wrapper (per ISA): VecF32 tanh(VecF32),
// VecF64 tanh(VecF64).
//
// Method. tanh is odd: it is computed on a = |x| and given x's sign at the end (so
// tanh(-0) = -0).
//   a < 0.625: tanh(a) = a + a^3 P(a^2), P the minimax polynomial for the relative error of
//     tanh on [0, 0.625] (tools/remez.py): degree 4 (float, approximation error 8.6e-9 =
//     0.14 ulp) / degree 10 (double, 1.3e-17 = 0.12 ulp). The correction a^3 P is at most 15%
//     of the result, so there is no cancellation and tanh(1e-20) = 1e-20, subnormals included.
//   a >= 0.625: z = exp(-2a) (math/exp.h) <= 0.287 and tanh(a) = (1 - z) / (1 + z); the error of
//     z is damped by 2z / (1 - z^2) <= 0.62 and 1 - z does not cancel. a is clamped to
//     kSaturated (9 / 19) first, where tanh already rounds to 1 and z is still a normal number,
//     so z comes from exp_normal (the same bits as exp, cheaper).
// Both branches are computed and blended per lane.
// Saturation. Exactly +-1 from |x| = 8.66434 (float) / 18.71497 (double), +-inf included
// (exp(-inf) = 0); in [-1, 1] for every input but NaN, and NaN -> NaN.
// Error bound: 2 ulp (asserted by tests/test_math.py). Measured maximum (tools/ulp_scan.py):
// float 1.51 ulp (1.52 on generic) over all 2^32 inputs; double 1.52 ulp over 3.4e7 inputs.
#pragma once

#include "math/exp.h"
#include "math/polynomial.h"
#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct TanhConstants;

template <>
struct TanhConstants<float> {
  static constexpr float kPolyBound = 0.625f;
  static constexpr float kSaturated = 9.0f;  // tanh rounds to 1 from 8.66434
  template <typename V>
  PYRNN_SIMD_INLINE static V p(V s) {
    return horner(s, -0.3333328068256378f, 0.13331441581249237f, -0.05373971536755562f, 0.0206390880048275f,
                  -0.005704987328499556f);
  }
};

template <>
struct TanhConstants<double> {
  static constexpr double kPolyBound = 0.625;
  static constexpr double kSaturated = 19.0;  // tanh rounds to 1 from 18.71497
  template <typename V>
  PYRNN_SIMD_INLINE static V p(V s) {
    return horner(s, -0.33333333333332854, 0.1333333333326209, -0.05396825393126768, 0.021869487576094148,
                  -0.00886322100262408, 0.003591989173756739, -0.0014549588776573686, 0.0005863165391667507,
                  -0.00022856420859019788, 7.714436361304322e-05, -1.6072568127627267e-05);
  }
};

template <typename V>
PYRNN_SIMD_INLINE V tanh_impl(V x) {
  using T = typename V::Scalar;
  using C = TanhConstants<T>;
  const V one = V::broadcast(T(1));
  const V a = abs(x);
  const V s = a * a;
  const V near_zero = fma(a * s, C::p(s), a);
  const V z = exp_normal(V::broadcast(T(-2)) * min(V::broadcast(C::kSaturated), a));  // keeps a NaN
  const V far = (one - z) / (one + z);
  return copysign(select(a < V::broadcast(C::kPolyBound), near_zero, far), x);
}

PYRNN_SIMD_INLINE VecF32 tanh(VecF32 x) { return tanh_impl(x); }
PYRNN_SIMD_INLINE VecF64 tanh(VecF64 x) { return tanh_impl(x); }

}  // namespace pyrnn::PYRNN_ISA
