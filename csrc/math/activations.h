// The activations the cells use, on Lanes (per ISA): sigmoid (math/sigmoid.h) and tanh
// (math/tanh.h), each <= 2 ulp with clean saturation, and relu. NaN in, NaN out.
#pragma once

#include "math/sigmoid.h"
#include "math/tanh.h"
#include "simd/lanes.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
inline Lanes<T> sigmoid_lanes(Lanes<T> x) {
  return sigmoid(x);
}

template <typename T>
inline Lanes<T> tanh_lanes(Lanes<T> x) {
  return tanh(x);
}

template <typename T>
inline Lanes<T> relu_lanes(Lanes<T> x) {
  return select(x < Lanes<T>::zero(), Lanes<T>::zero(), x);  // NaN < 0 is false: NaN passes
}

}  // namespace pyrnn::PYRNN_ISA
