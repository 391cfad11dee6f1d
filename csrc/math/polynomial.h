// Polynomial evaluation on the SIMD wrapper (per ISA).
//   horner(x, c0, c1, ..., cn) = c0 + x (c1 + x (... + x cn)), one fma per coefficient.
// Coefficients are scalars of the vector's type (float literals need the f suffix).
#pragma once

#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

template <typename V>
PYRNN_SIMD_INLINE V horner(V, typename V::Scalar c0) {
  return V::broadcast(c0);
}

template <typename V, typename... C>
PYRNN_SIMD_INLINE V horner(V x, typename V::Scalar c0, C... rest) {
  return fma(horner(x, rest...), x, V::broadcast(c0));
}

}  // namespace pyrnn::PYRNN_ISA
