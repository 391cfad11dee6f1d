// The kernels' view of the ISA's vector (per ISA): Lanes<T> is simd/vec.h's Vec<T>, one vector
// of kUnitBlock<T> hidden units, with the memory operations the recurrences use. Arithmetic is
// Vec's operators and fma().
#pragma once

#include "common/aligned_buffer.h"
#include "simd/vec.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
using Lanes = Vec<T>;

template <typename T>
inline constexpr index_t kUnitBlock = Vec<T>::kWidth;

inline constexpr index_t kVectorBytes = kUnitBlock<float> * static_cast<index_t>(sizeof(float));

template <typename T>
inline Lanes<T> load_lanes(const T* p) {
  return Lanes<T>::load(p);
}

// The first n <= U lanes from p, zeros in the others; reads only n values.
template <typename T>
inline Lanes<T> load_first_lanes(const T* p, index_t n) {
  return n == kUnitBlock<T> ? Lanes<T>::load(p) : Lanes<T>::load_partial(p, static_cast<int>(n));
}

template <typename T>
inline void store_lanes(T* p, Lanes<T> v) {
  v.store(p);
}

// Stores the first n <= U lanes.
template <typename T>
inline void store_first_lanes(T* p, Lanes<T> v, index_t n) {
  if (n == kUnitBlock<T>) v.store(p);
  else v.store_partial(p, static_cast<int>(n));
}

template <typename T>
inline Lanes<T> broadcast(T x) {
  return Lanes<T>::broadcast(x);
}

}  // namespace pyrnn::PYRNN_ISA
