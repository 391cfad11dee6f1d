// Activations, scalar and on Lanes (per ISA).
// sigmoid(x) = 1 / (1 + exp(-x)): exp overflows to +inf for x < -88 (float) and gives exactly 0,
// never NaN; NaN in, NaN out. tanh from libm (saturating, < 1 ulp). The Lanes forms apply the
// scalar ones lane by lane.
#pragma once

#include <cmath>

#include "simd/lanes.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T relu(T x) {
  return x > T(0) ? x : (x == x ? T(0) : x);  // NaN propagates
}

template <typename T>
inline Lanes<T> sigmoid_lanes(Lanes<T> x) {
  for (index_t i = 0; i < kUnitBlock<T>; ++i) x[i] = sigmoid(x[i]);
  return x;
}

template <typename T>
inline Lanes<T> tanh_lanes(Lanes<T> x) {
  for (index_t i = 0; i < kUnitBlock<T>; ++i) x[i] = std::tanh(x[i]);
  return x;
}

template <typename T>
inline Lanes<T> relu_lanes(Lanes<T> x) {
  for (index_t i = 0; i < kUnitBlock<T>; ++i) x[i] = relu(x[i]);
  return x;
}

}  // namespace pyrnn::PYRNN_ISA
