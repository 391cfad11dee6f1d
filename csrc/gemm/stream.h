// Small-m GEMM by streaming whole rows of B (per ISA): the path for the recurrence's smallest
// batches (m <= stream_max_m in gemm/config.h), e.g. a matrix-vector product per time step.
// For each KC block of k and each chunk of SC columns, a ROWS x SC accumulator block t (in L1) is
// swept by B's rows four at a time: t[i][j] = fma(op(A)[i][p], B[p][j], t[i][j]) for increasing p,
// reading B contiguously once. Then C = t (beta == 0, C not read) or fma(beta, C, t), and later KC
// blocks add to C. That is the micro-kernel's arithmetic exactly (gemm/ukernel.h: an FMA chain from
// zero over each KC block, blocks added to C in order), so both paths give the same bits.
//   a  the block's packed op(A) panel (pack_a with MR = stream_rows: MR values per k step, first
//      ROWS read).
//   b  kc rows, row stride ldb, columns [0, cols) read, no over-read; any alignment.
//   t  ROWS * SC scratch, 64-byte aligned.
#pragma once

#include <cassert>

#include "gemm/ukernel.h"

namespace pyrnn::PYRNN_ISA {

template <typename T, int MR, int ROWS, index_t SC>
void gemm_stream_block(index_t kc, const T* __restrict a, const T* __restrict b, index_t ldb, T beta,
                       T* __restrict c, index_t ldc, index_t cols, T* __restrict t) {
  using L = gemm_detail::Lanes<T>;
  using V = typename L::V;
  constexpr int W = L::width;
  static_assert(SC % W == 0 && ROWS >= 1 && ROWS <= MR, "chunk must be whole vectors");
  assert(kc >= 1 && ldb >= cols && ldc >= cols && cols >= 1 && cols <= SC);

  {
    const index_t j0 = 0, w = cols;
    const index_t wv = w / W * W;  // whole vectors; the rest of the chunk is done one by one
    for (index_t x = 0; x < ROWS * SC; x += W) L::store(t + x, V{});
    index_t p = 0;
    for (; p + 4 <= kc; p += 4) {
      const T* b0 = b + p * ldb + j0;
      const T* ap = a + p * MR;
      V a0[ROWS], a1[ROWS], a2[ROWS], a3[ROWS];
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) {
        a0[r] = L::splat(ap[r]);
        a1[r] = L::splat(ap[MR + r]);
        a2[r] = L::splat(ap[2 * MR + r]);
        a3[r] = L::splat(ap[3 * MR + r]);
      }
      for (index_t j = 0; j < wv; j += W) {
        const V v0 = L::load(b0 + j), v1 = L::load(b0 + ldb + j), v2 = L::load(b0 + 2 * ldb + j),
                v3 = L::load(b0 + 3 * ldb + j);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) {
          V acc = L::load(t + r * SC + j);
          acc = L::fmadd(a0[r], v0, acc);
          acc = L::fmadd(a1[r], v1, acc);
          acc = L::fmadd(a2[r], v2, acc);
          acc = L::fmadd(a3[r], v3, acc);
          L::store(t + r * SC + j, acc);
        }
      }
      for (index_t j = wv; j < w; ++j)
        for (int r = 0; r < ROWS; ++r) {
          T acc = t[r * SC + j];
          for (int q = 0; q < 4; ++q) acc = L::fmadd1(ap[q * MR + r], b0[q * ldb + j], acc);
          t[r * SC + j] = acc;
        }
    }
    for (; p < kc; ++p) {
      const T* b0 = b + p * ldb + j0;
      const T* ap = a + p * MR;
      for (index_t j = 0; j < wv; j += W) {
        const V v0 = L::load(b0 + j);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r)
          L::store(t + r * SC + j, L::fmadd(L::splat(ap[r]), v0, L::load(t + r * SC + j)));
      }
      for (index_t j = wv; j < w; ++j)
        for (int r = 0; r < ROWS; ++r) t[r * SC + j] = L::fmadd1(ap[r], b0[j], t[r * SC + j]);
    }
    for (int r = 0; r < ROWS; ++r) {
      T* crow = c + r * ldc + j0;
      const T* trow = t + r * SC;
      if (beta == T(0)) {
        for (index_t j = 0; j < w; ++j) crow[j] = trow[j];
      } else {
        for (index_t j = 0; j < w; ++j) crow[j] = L::fmadd1(beta, crow[j], trow[j]);
      }
    }
  }
}

// Calls gemm_stream_block with ROWS = rows (1 <= rows <= MAXROWS).
template <typename T, int MR, index_t SC, int ROWS>
inline void gemm_stream_rows(int rows, index_t kc, const T* a, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                             index_t cols, T* t) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return gemm_stream_rows<T, MR, SC, ROWS - 1>(rows, kc, a, b, ldb, beta, c, ldc, cols, t);
  }
  gemm_stream_block<T, MR, ROWS, SC>(kc, a, b, ldb, beta, c, ldc, cols, t);
}

}  // namespace pyrnn::PYRNN_ISA
