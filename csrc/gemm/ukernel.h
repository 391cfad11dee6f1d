// The GEMM micro-kernel, one template compiled per ISA: f32_gemm_6x64__avx512,
// f64_gemm_6x32__avx512, f32_gemm_6x16__avx2, f64_gemm_6x8__avx2, f32_gemm_6x8__generic,
// f64_gemm_6x4__generic (tile and name per ISA in gemm/config.h). ROWS x NR accumulators live in
// registers for the whole k loop: each k step loads NR values of B (NR / width vectors), and for
// each row broadcasts one value of op(A), from its packed panel or from A's row in place, into a
// fused multiply-add (generic: multiply then add, the baseline ISA has no FMA).
//
// Contract (checked by assertions in debug builds):
//   acc[i][j] = sum over p = 0, 1, ..., k-1 (in that order, from 0) of a[p*MR + i] * b[p*NR + j]
//   C[i][j]   = acc[i][j]                  if beta == 0 (C is never read: it may hold NaN),
//             = fma(beta, C[i][j], acc[i][j]) otherwise (beta == 1 gives C + acc exactly),
//   for i < ROWS (template, 1..MR) and j < cols (1..NR).
//   a  kAInPlace false: a packed op(A) micro-panel, MR values per k step, the first ROWS of each
//      read (lda unused). kAInPlace true: ROWS rows of a row-major A itself, lda apart, k values
//      each. Any alignment.
//   b  packed B panel, k rows of NR values. All NR columns are read, so a panel with cols < NR
//      must be zero-padded (pack_b does it); nothing past row k-1 is read. Any alignment
//      (unaligned loads; pack_b's panels are 64-byte aligned when NR * sizeof(T) is a multiple).
//   c  row stride ldc >= cols, any alignment; cols < NR goes through a local tile, so no column
//      at or past cols is read or written.
#pragma once

#include <cassert>
#include <cstddef>
#include <utility>

#include "gemm/config.h"

#if PYRNN_GEMM_ISA_ID != 0
#include <immintrin.h>
#endif

namespace pyrnn::PYRNN_ISA {
namespace gemm_detail {

// The few vector operations the micro-kernels need, on GCC vector types (the intrinsics' own
// representation): V is one register of T, U the same with element alignment for loads/stores;
// fmadd1 is the scalar fmadd with the same rounding as a lane of fmadd.
template <typename T, int W>
struct LanesOf {
  static constexpr int width = W;
  typedef T V __attribute__((vector_size(W * sizeof(T))));
  typedef T U __attribute__((vector_size(W * sizeof(T)), aligned(sizeof(T)), may_alias));
  static V load(const T* p) { return *reinterpret_cast<const U*>(p); }
  static void store(T* p, V v) { *reinterpret_cast<U*>(p) = v; }
  // A broadcast, written as {x, x, ..., x} (V{} + x would add 0 and turn -0 into +0).
  static V splat(T x) { return splat_of(x, std::make_index_sequence<W>()); }
  template <std::size_t... I>
  static V splat_of(T x, std::index_sequence<I...>) {
    return V{(static_cast<void>(I), x)...};
  }
};

#if PYRNN_GEMM_ISA_ID == 2
template <typename T>
struct Lanes;
template <>
struct Lanes<float> : LanesOf<float, 16> {
  static V fmadd(V a, V b, V c) { return V(_mm512_fmadd_ps(__m512(a), __m512(b), __m512(c))); }
  static float fmadd1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
};
template <>
struct Lanes<double> : LanesOf<double, 8> {
  static V fmadd(V a, V b, V c) { return V(_mm512_fmadd_pd(__m512d(a), __m512d(b), __m512d(c))); }
  static double fmadd1(double a, double b, double c) { return __builtin_fma(a, b, c); }
};
#elif PYRNN_GEMM_ISA_ID == 1
template <typename T>
struct Lanes;
template <>
struct Lanes<float> : LanesOf<float, 8> {
  static V fmadd(V a, V b, V c) { return V(_mm256_fmadd_ps(__m256(a), __m256(b), __m256(c))); }
  static float fmadd1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
};
template <>
struct Lanes<double> : LanesOf<double, 4> {
  static V fmadd(V a, V b, V c) { return V(_mm256_fmadd_pd(__m256d(a), __m256d(b), __m256d(c))); }
  static double fmadd1(double a, double b, double c) { return __builtin_fma(a, b, c); }
};
#else
// Baseline x86-64 has 128-bit SSE2 and no FMA: a * b + c, two roundings (the generic kernel's
// results differ from the FMA ISAs' in the last bits, as they may).
template <typename T>
struct Lanes : LanesOf<T, 16 / sizeof(T)> {
  using V = typename LanesOf<T, 16 / sizeof(T)>::V;
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static T fmadd1(T a, T b, T c) { return a * b + c; }
};
#endif

}  // namespace gemm_detail

template <typename T, int MR, int NR, int ROWS, bool kAInPlace>
void gemm_ukernel(index_t k, const T* __restrict a, index_t lda, const T* __restrict b, T beta, T* __restrict c,
                  index_t ldc, index_t cols) {
  using L = gemm_detail::Lanes<T>;
  using V = typename L::V;
  constexpr int W = L::width, NV = NR / W;
  static_assert(NR % W == 0 && ROWS >= 1 && ROWS <= MR, "tile must be whole vectors, 1 <= ROWS <= MR");
  assert(k >= 1 && cols >= 1 && cols <= NR && ldc >= cols);

  V acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};

#pragma GCC unroll 4
  for (index_t p = 0; p < k; ++p) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = L::load(b + v * W);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const V ar = L::splat(kAInPlace ? a[r * lda] : a[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = L::fmadd(ar, bv[v], acc[r][v]);
    }
    a += kAInPlace ? 1 : MR;
    b += NR;
  }

  // Full tiles update C in place; an edge tile (cols < NR) updates a local copy of its cols.
  alignas(64) T tile[ROWS * NR];
  T* dst = c;
  index_t ldd = ldc;
  const bool edge = cols < NR;
  if (edge) {
    dst = tile;
    ldd = NR;
    for (int r = 0; r < ROWS; ++r)
      for (index_t j = 0; j < NR; ++j) tile[r * NR + j] = (beta != T(0) && j < cols) ? c[r * ldc + j] : T(0);
  }
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) L::store(dst + r * ldd + v * W, acc[r][v]);
  } else {
    const V vbeta = L::splat(beta);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        L::store(dst + r * ldd + v * W, L::fmadd(vbeta, L::load(dst + r * ldd + v * W), acc[r][v]));
  }
  if (edge)
    for (int r = 0; r < ROWS; ++r)
      for (index_t j = 0; j < cols; ++j) c[r * ldc + j] = tile[r * NR + j];
}

// Calls gemm_ukernel with ROWS = rows (1 <= rows <= MR): a full-height tile or an exact edge.
template <typename T, int MR, int NR, bool kAInPlace, int ROWS = MR>
inline void gemm_ukernel_rows(int rows, index_t k, const T* a, index_t lda, const T* b, T beta, T* c, index_t ldc,
                              index_t cols) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return gemm_ukernel_rows<T, MR, NR, kAInPlace, ROWS - 1>(rows, k, a, lda, b, beta, c, ldc, cols);
  }
  gemm_ukernel<T, MR, NR, ROWS, kAInPlace>(k, a, lda, b, beta, c, ldc, cols);
}

}  // namespace pyrnn::PYRNN_ISA
