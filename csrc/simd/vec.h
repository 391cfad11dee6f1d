// The vector wrapper for the ISA this translation unit is compiled for (per ISA). Includes
// vec_avx512.h, vec_avx2.h or vec_generic.h by PYRNN_ISA; all three give, in namespace
// pyrnn::PYRNN_ISA, the same interface:
//
//   Vec<T> (T = float | double), aliases VecF32 / VecF64
//     kWidth                       lanes: avx512 16 / 8, avx2 8 / 4, generic 4 / 2
//     Vec<T>::Mask                 one boolean per lane (result of a comparison)
//     load(p), store(p)            unaligned, kWidth lanes
//     load_partial(p, n)           the first n lanes (0 <= n <= kWidth), the others 0;
//     store_partial(p, n)          writes only the first n lanes. Neither touches memory
//                                  past p + n (masked on avx512, maskload/maskstore on avx2)
//     broadcast(x), zero()
//   + - * / (and unary -), fma(a, b, c) = a * b + c (fused on avx2 / avx512; two roundings
//   on generic, which has no FMA at baseline x86-64), min, max, abs, copysign(mag, sign),
//   < <= > >= == (ordered: false if either is NaN), != (true if either is NaN),
//   select(mask, if_true, if_false), any(mask), all(mask), mask & mask, mask | mask,
//   ldexp(x, n) = x * 2^n for integral-valued n with |n| <= kLdexpMaxN<T> (252 for float,
//   2044 for double); +-inf on overflow, NaN for a NaN x (a NaN or out-of-range n gives an
//   unspecified value). Rounded once (so exact unless the result is subnormal) on avx512
//   always, elsewhere when x * 2^(n/2) is normal -- e.g. for 0.5 <= |x| < 2 and n >= -250
//   (float) / -2040 (double), which is what exp needs.
//   ldexp_normal(x, n) = x * 2^n, one multiplication by 2^n built in the exponent field: exact
//   where 2^n and x * 2^n are normal numbers (the caller's guarantee; elsewhere unspecified),
//   NaN for a NaN x. The cheap form for exp where its result cannot be subnormal or overflow.
//
// NaN and min / max: min(a, b) = a < b ? a : b and max(a, b) = a > b ? a : b on every ISA
// (the x86 instructions' rule), so when either is NaN the result is b. Clamp as
// min(hi, max(lo, x)) and a NaN x passes through.
#pragma once

#include "simd/isa.h"

// Every wrapper operation and every math function on it is forced inline: a call would pass a
// vector through memory (for the generic struct, in two halves) and re-broadcast the constants.
#define PYRNN_SIMD_INLINE inline __attribute__((always_inline))

#define PYRNN_VEC_ISA_generic 1
#define PYRNN_VEC_ISA_avx2 2
#define PYRNN_VEC_ISA_avx512 3
#define PYRNN_VEC_CAT_(a, b) a##b
#define PYRNN_VEC_CAT(a, b) PYRNN_VEC_CAT_(a, b)
#define PYRNN_VEC_ISA PYRNN_VEC_CAT(PYRNN_VEC_ISA_, PYRNN_ISA)

#if PYRNN_VEC_ISA == PYRNN_VEC_ISA_avx512
#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__FMA__)
#error "PYRNN_ISA=avx512 needs -mavx512f -mavx512dq -mfma"
#endif
#include "simd/vec_avx512.h"
#elif PYRNN_VEC_ISA == PYRNN_VEC_ISA_avx2
#if !defined(__AVX2__) || !defined(__FMA__)
#error "PYRNN_ISA=avx2 needs -mavx2 -mfma"
#endif
#include "simd/vec_avx2.h"
#elif PYRNN_VEC_ISA == PYRNN_VEC_ISA_generic
#include "simd/vec_generic.h"
#else
#error "PYRNN_ISA must be generic, avx2 or avx512"
#endif

namespace pyrnn::PYRNN_ISA {

template <typename T>
inline constexpr int kLdexpMaxN = sizeof(T) == 4 ? 252 : 2044;

}  // namespace pyrnn::PYRNN_ISA
