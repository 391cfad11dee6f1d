// Array forms of the vectorised activations (per ISA):
//   vexp(n, x, y), vsigmoid(n, x, y), vtanh(n, x, y) for T = float | double: y[i] = f(x[i]).
// x and y: n elements each, any alignment; y may be x itself (in place) but must not otherwise
// overlap it. The tail (n mod kWidth) goes through one masked partial load / store, so nothing
// past x + n is read or past y + n written. Each element's result is the same whatever n and
// its position. The one-vector forms (exp, sigmoid, tanh on VecF32 / VecF64) are in the headers
// included here, for use inside fused loops.
#pragma once

#include "common/aligned_buffer.h"
#include "math/exp.h"
#include "math/sigmoid.h"
#include "math/tanh.h"
#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

// The per-vector operations, as function objects that map_lanes inlines.
struct ExpOp {
  template <typename V>
  PYRNN_SIMD_INLINE V operator()(V v) const { return exp(v); }
};
struct SigmoidOp {
  template <typename V>
  PYRNN_SIMD_INLINE V operator()(V v) const { return sigmoid(v); }
};
struct TanhOp {
  template <typename V>
  PYRNN_SIMD_INLINE V operator()(V v) const { return tanh(v); }
};

template <typename T, typename Op>
inline void map_lanes(index_t n, const T* x, T* y, Op op) {
  using V = Vec<T>;
  index_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) op(V::load(x + i)).store(y + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    op(V::load_partial(x + i, rest)).store_partial(y + i, rest);
  }
}

template <typename T>
void vexp(index_t n, const T* x, T* y) {
  map_lanes(n, x, y, ExpOp{});
}

template <typename T>
void vsigmoid(index_t n, const T* x, T* y) {
  map_lanes(n, x, y, SigmoidOp{});
}

template <typename T>
void vtanh(index_t n, const T* x, T* y) {
  map_lanes(n, x, y, TanhOp{});
}

}  // namespace pyrnn::PYRNN_ISA
