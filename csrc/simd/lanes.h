// The vector of the ISA this translation unit is compiled for (per ISA): GCC vector extensions
// over 64 (AVX-512), 32 (AVX2) or 16 (baseline SSE2) bytes, and the few memory operations the
// kernels need. Lanes<T> holds kUnitBlock<T> values; arithmetic is the built-in operators
// (a * b + c contracts to an FMA where the ISA has one).
#pragma once

#include <cstddef>

#include "common/aligned_buffer.h"
#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

#if defined(__AVX512F__)
inline constexpr index_t kVectorBytes = 64;
#elif defined(__AVX2__)
inline constexpr index_t kVectorBytes = 32;
#else
inline constexpr index_t kVectorBytes = 16;
#endif

template <typename T>
inline constexpr index_t kUnitBlock = kVectorBytes / static_cast<index_t>(sizeof(T));

template <typename T>
struct LanesOf;
template <>
struct LanesOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct LanesOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Lanes = typename LanesOf<T>::type;

template <typename T>
inline Lanes<T> load_lanes(const T* p) {
  Lanes<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// The first n <= U lanes from p, zeros in the others; reads only n values.
template <typename T>
inline Lanes<T> load_first_lanes(const T* p, index_t n) {
  if (n == kUnitBlock<T>) return load_lanes(p);
  Lanes<T> v{};
  __builtin_memcpy(&v, p, sizeof(T) * static_cast<std::size_t>(n));
  return v;
}

template <typename T>
inline void store_lanes(T* p, Lanes<T> v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

// Stores the first n <= U lanes.
template <typename T>
inline void store_first_lanes(T* p, Lanes<T> v, index_t n) {
  if (n == kUnitBlock<T>) store_lanes(p, v);
  else __builtin_memcpy(p, &v, sizeof(T) * static_cast<std::size_t>(n));
}

template <typename T>
inline Lanes<T> broadcast(T x) {
  return Lanes<T>{} + x;
}

}  // namespace pyrnn::PYRNN_ISA
