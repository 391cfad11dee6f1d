// Vectorised logistic sigmoid on the SIMD wrapper (per ISA): VecF32 sigmoid(VecF32),
// VecF64 sigmoid(VecF64). sigmoid(x) = 1 / (1 + e^-x).
//
// Method. z = exp(-|x|) (math/exp.h) lies in [0, 1] and never overflows; then
//   sigmoid(x) = 1 / (1 + z) for x >= 0,   z / (1 + z) for x < 0,
// one division either way. No cancellation on either side: the result is accurate in relative
// terms for large negative x too (sigmoid(-80) = 1.8e-35 in float), and results in the
// subnormal range are exp's correctly scaled values, not flushed to 0. z comes from exp_normal
// (the same bits, cheaper) unless a lane has |x| > 87 (float) / 708 (double), where z may be
// subnormal: then the whole vector takes exp.
// Saturation. Exactly 1 from x = 16.635532 (float) / 36.7368 (double), +inf included; exactly 0
// where exp(x) underflows to 0 (below -103.97208 / -745.13322), -inf included; in [0, 1] for
// every input but NaN, and NaN -> NaN. sigmoid(-0) = 0.5.
// Error bound: 2.5 ulp (asserted by tests/test_math.py). Measured maximum (tools/ulp_scan.py):
// float 2.40 ulp over all 2^32 inputs, every ISA; double 2.32 ulp over 3.4e7 inputs. Worst on
// the negative side, where exp's error passes straight into z / (1 + z). Not monotone to the
// last ulp: ~2e5 float inputs give 1 ulp less than their predecessor.
#pragma once

#include "math/exp.h"
#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

template <typename V>
PYRNN_SIMD_INLINE V sigmoid_impl(V x) {
  using T = typename V::Scalar;
  const V one = V::broadcast(T(1));
  const V minus_a = -abs(x);
  const V z = any(minus_a < V::broadcast(ExpConstants<T>::kNormalLo)) ? exp(minus_a) : exp_normal(minus_a);
  return select(x < V::zero(), z, one) / (one + z);
}

PYRNN_SIMD_INLINE VecF32 sigmoid(VecF32 x) { return sigmoid_impl(x); }
PYRNN_SIMD_INLINE VecF64 sigmoid(VecF64 x) { return sigmoid_impl(x); }

}  // namespace pyrnn::PYRNN_ISA
