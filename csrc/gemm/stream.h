// Small-m GEMM by streaming whole rows of B (per ISA): the path for the recurrence's batches
// (m <= stream_max_m in gemm/config.h, down to a matrix-vector product), where packing B would
// cost as much as the product. gemm.h cuts op(A) into blocks of at most stream_rows rows and B
// into chunks of at most stream_cols (SC) columns; per KC block of k, per chunk, per row block,
// this kernel sweeps a ROWS x SC accumulator block t (in L1) with U = 4 rows of B at a time,
// each read contiguously: t[i][j] = fma(op(A)[i][p], B[p][j], t[i][j]) for
// increasing p. Then C = t (beta == 0: C not read) or fma(beta, C, t); the caller passes
// beta = 1 for later KC blocks. That is the micro-kernel's arithmetic exactly (gemm/ukernel.h:
// an FMA chain from zero over each KC block, blocks added to C in order), so both paths give
// the same bits and a row's result does not depend on the batch.
//   a  the row block's packed op(A) panel (pack_a with MR = stream_rows: MR values per k step,
//      the first ROWS read).
//   b  kc rows, row stride ldb, columns [0, cols) read, no over-read; any alignment.
//   c  ROWS rows, row stride ldc, columns [0, cols) written (read only if beta != 0).
//   t  ROWS * SC scratch, 64-byte aligned.
#pragma once

#include <cassert>

#include "gemm/ukernel.h"
#include "simd/static_count.h"

namespace pyrnn::PYRNN_ISA {

template <typename T, int MR, int ROWS, index_t SC>
void gemm_stream_block(index_t kc, const T* __restrict a, const T* __restrict b, index_t ldb, T beta,
                       T* __restrict c, index_t ldc, index_t cols, T* __restrict t) {
  using L = gemm_detail::Lanes<T>;
  using V = typename L::V;
  constexpr int W = L::width;
  constexpr int U = 4;  // B rows per sweep (8 measured no faster: m = 1 is bound by reading B)
  static_assert(SC % W == 0 && ROWS >= 1 && ROWS <= MR, "chunk must be whole vectors");
  assert(kc >= 1 && ldb >= cols && ldc >= cols && cols >= 1 && cols <= SC);

  const index_t wv = cols / W * W;  // whole vectors; the last cols - wv columns one by one
  for (index_t x = 0; x < ROWS * SC; x += W) L::store(t + x, V{});
  index_t p = 0;
  for (; p + U <= kc; p += U) {
    const T* bp = b + p * ldb;
    const T* ap = a + p * MR;
    V as[U][ROWS];
#pragma GCC unroll 8
    for (int q = 0; q < U; ++q)
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) as[q][r] = L::splat(ap[q * MR + r]);
    for (index_t j = 0; j < wv; j += W) {
      V bv[U];
#pragma GCC unroll 8
      for (int q = 0; q < U; ++q) bv[q] = L::load(bp + q * ldb + j);
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) {
        V acc = L::load(t + r * SC + j);
#pragma GCC unroll 8
        for (int q = 0; q < U; ++q) acc = L::fmadd(as[q][r], bv[q], acc);
        L::store(t + r * SC + j, acc);
      }
    }
    for (index_t j = wv; j < cols; ++j)
      for (int r = 0; r < ROWS; ++r) {
        T acc = t[r * SC + j];
        for (int q = 0; q < U; ++q) acc = L::fmadd1(ap[q * MR + r], bp[q * ldb + j], acc);
        t[r * SC + j] = acc;
      }
  }
  for (; p < kc; ++p) {
    const T* bp = b + p * ldb;
    const T* ap = a + p * MR;
    for (index_t j = 0; j < wv; j += W) {
      const V bv = L::load(bp + j);
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r)
        L::store(t + r * SC + j, L::fmadd(L::splat(ap[r]), bv, L::load(t + r * SC + j)));
    }
    for (index_t j = wv; j < cols; ++j)
      for (int r = 0; r < ROWS; ++r) t[r * SC + j] = L::fmadd1(ap[r], bp[j], t[r * SC + j]);
  }
  for (int r = 0; r < ROWS; ++r) {
    T* crow = c + r * ldc;
    const T* trow = t + r * SC;
    if (beta == T(0)) {
      for (index_t j = 0; j < cols; ++j) crow[j] = trow[j];
    } else {
      for (index_t j = 0; j < cols; ++j) crow[j] = L::fmadd1(beta, crow[j], trow[j]);
    }
  }
}

}  // namespace pyrnn::PYRNN_ISA
