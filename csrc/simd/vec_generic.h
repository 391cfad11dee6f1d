// Portable vector wrapper, included by simd/vec.h (interface documented there). Builds with
// baseline x86-64 flags: Vec<T> holds one 16-byte GCC/Clang vector-extension value (4 floats /
// 2 doubles), which the compiler maps to SSE2 (or to any target's vectors) without intrinsics.
// No FMA at baseline: fma(a, b, c) rounds twice. Masks are the integer vectors that vector
// comparisons give (all ones / all zeros per lane). Partial loads / stores move the first n
// lanes one at a time. ldexp builds 2^n1 and 2^n2 (n1 = n / 2 rounded, n2 = n - n1) in the
// exponent field via the 1.5 * 2^mant shifter, so that each factor is a normal number;
// ldexp_normal builds 2^n the same way.
#pragma once

#include <cstdint>

#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct GenericLanes;

template <>
struct GenericLanes<float> {
  typedef float Values __attribute__((vector_size(16)));
  typedef std::int32_t Mask __attribute__((vector_size(16)));
  typedef std::uint32_t Bits __attribute__((vector_size(16)));
  static constexpr int kMantissa = 23;
  static constexpr std::uint32_t kExponentBias = 127;
  static constexpr std::uint32_t kSignBit = 0x80000000u;
  static constexpr float kShifter = 0x1.8p23f;  // x + it rounds x to an integer, left in the low bits
};

template <>
struct GenericLanes<double> {
  typedef double Values __attribute__((vector_size(16)));
  typedef std::int64_t Mask __attribute__((vector_size(16)));
  typedef std::uint64_t Bits __attribute__((vector_size(16)));
  static constexpr int kMantissa = 52;
  static constexpr std::uint64_t kExponentBias = 1023;
  static constexpr std::uint64_t kSignBit = 0x8000000000000000u;
  static constexpr double kShifter = 0x1.8p52;
};

template <typename T>
struct MaskOf {
  typename GenericLanes<T>::Mask m;
};

template <typename T>
struct Vec {
  using Scalar = T;
  using Mask = MaskOf<T>;
  using Values = typename GenericLanes<T>::Values;
  static constexpr int kWidth = 16 / sizeof(T);
  Values v;

  PYRNN_SIMD_INLINE static Vec load(const T* p) {
    Vec r;
    __builtin_memcpy(&r.v, p, sizeof r.v);
    return r;
  }
  PYRNN_SIMD_INLINE static Vec load_partial(const T* p, int n) {
    Vec r{};
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  PYRNN_SIMD_INLINE void store(T* p) const { __builtin_memcpy(p, &v, sizeof v); }
  PYRNN_SIMD_INLINE void store_partial(T* p, int n) const {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  PYRNN_SIMD_INLINE static Vec broadcast(T x) { return {Values{} + x}; }
  PYRNN_SIMD_INLINE static Vec zero() { return {Values{}}; }
};

using VecF32 = Vec<float>;
using VecF64 = Vec<double>;

template <typename T>
PYRNN_SIMD_INLINE typename GenericLanes<T>::Bits bits_of(Vec<T> a) {
  return __builtin_bit_cast(typename GenericLanes<T>::Bits, a.v);
}
template <typename T>
PYRNN_SIMD_INLINE Vec<T> from_bits(typename GenericLanes<T>::Bits b) {
  return {__builtin_bit_cast(typename Vec<T>::Values, b)};
}
template <typename T>
inline constexpr auto kSignBit = GenericLanes<T>::kSignBit;

template <typename T>
PYRNN_SIMD_INLINE Vec<T> operator+(Vec<T> a, Vec<T> b) { return {a.v + b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> operator-(Vec<T> a, Vec<T> b) { return {a.v - b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> operator*(Vec<T> a, Vec<T> b) { return {a.v * b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> operator/(Vec<T> a, Vec<T> b) { return {a.v / b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> operator-(Vec<T> a) { return from_bits<T>(bits_of(a) ^ kSignBit<T>); }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> fma(Vec<T> a, Vec<T> b, Vec<T> c) { return {a.v * b.v + c.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> min(Vec<T> a, Vec<T> b) { return {a.v < b.v ? a.v : b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> max(Vec<T> a, Vec<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> abs(Vec<T> a) { return from_bits<T>(bits_of(a) & ~kSignBit<T>); }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> copysign(Vec<T> mag, Vec<T> sign) {
  return from_bits<T>((bits_of(mag) & ~kSignBit<T>) | (bits_of(sign) & kSignBit<T>));
}
// 2^k for the integer k in the low mantissa bits of `shifted` (k + kShifter), in the normal range.
template <typename T>
PYRNN_SIMD_INLINE typename GenericLanes<T>::Values exponent_scale(typename GenericLanes<T>::Values shifted) {
  using L = GenericLanes<T>;
  const auto exponent = __builtin_bit_cast(typename L::Bits, shifted) << L::kMantissa;
  return __builtin_bit_cast(typename L::Values, exponent + (L::kExponentBias << L::kMantissa));
}
template <typename T>
PYRNN_SIMD_INLINE Vec<T> ldexp(Vec<T> x, Vec<T> n) {
  using L = GenericLanes<T>;
  const auto t1 = n.v * T(0.5) + L::kShifter;                // low bits: n1 = round(n / 2)
  const auto t2 = (n.v - (t1 - L::kShifter)) + L::kShifter;  // low bits: n2 = n - n1
  return {x.v * exponent_scale<T>(t1) * exponent_scale<T>(t2)};
}
template <typename T>
PYRNN_SIMD_INLINE Vec<T> ldexp_normal(Vec<T> x, Vec<T> n) {
  return {x.v * exponent_scale<T>(n.v + GenericLanes<T>::kShifter)};  // low bits: n
}
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator<(Vec<T> a, Vec<T> b) { return {a.v < b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator<=(Vec<T> a, Vec<T> b) { return {a.v <= b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator>(Vec<T> a, Vec<T> b) { return {a.v > b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator>=(Vec<T> a, Vec<T> b) { return {a.v >= b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator==(Vec<T> a, Vec<T> b) { return {a.v == b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator!=(Vec<T> a, Vec<T> b) { return {a.v != b.v}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator&(MaskOf<T> a, MaskOf<T> b) { return {a.m & b.m}; }
template <typename T>
PYRNN_SIMD_INLINE MaskOf<T> operator|(MaskOf<T> a, MaskOf<T> b) { return {a.m | b.m}; }
template <typename T>
PYRNN_SIMD_INLINE Vec<T> select(MaskOf<T> m, Vec<T> a, Vec<T> b) { return {m.m ? a.v : b.v}; }
template <typename T>
PYRNN_SIMD_INLINE bool any(MaskOf<T> m) {
  bool r = false;
  for (int i = 0; i < Vec<T>::kWidth; ++i) r |= m.m[i] != 0;
  return r;
}
template <typename T>
PYRNN_SIMD_INLINE bool all(MaskOf<T> m) {
  bool r = true;
  for (int i = 0; i < Vec<T>::kWidth; ++i) r &= m.m[i] != 0;
  return r;
}

}  // namespace pyrnn::PYRNN_ISA
