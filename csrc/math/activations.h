// Scalar activations on one value (per ISA; the compiler vectorises the loops that call them).
// sigmoid(x) = 1 / (1 + exp(-x)): exp overflows to +inf for x < -88 (float) and gives exactly 0,
// never NaN; NaN in, NaN out. tanh from libm (correctly saturating, < 1 ulp).
#pragma once

#include <cmath>

#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T tanh_(T x) {
  return std::tanh(x);
}

template <typename T>
inline T relu(T x) {
  return x > T(0) ? x : (x == x ? T(0) : x);  // NaN propagates
}

}  // namespace pyrnn::PYRNN_ISA
