// Packing for the blocked GEMM (per ISA): copies a block of op(A) or B into the micro-kernel's
// panel layout so that its k loop reads both operands contiguously (see gemm/ukernel.h).
//   A block (rows x kc) -> panels of tile_rows <= MR rows (the last may be shorter), each kc * MR
//     values, panel_stride (>= kc * MR) apart, then k, then the rows of the panel:
//     dst[(i / tile_rows) * panel_stride + p * MR + i % tile_rows] = op(A)[i][p]. The unused rows
//     of a short panel are not written (the micro-kernel reads only its ROWS).
//   B block (kc x cols) -> ceil(cols / NR) panels of kc * NR values:
//     dst[(j / NR) * kc * NR + p * NR + j % NR] = B[p][j], a short last panel zero-padded to NR.
#pragma once

#include "gemm/config.h"

namespace pyrnn::PYRNN_ISA {

// Rows [i0, i0 + rows) and depth [p0, p0 + kc) of op(A), in panels of tile_rows (1..MR) rows;
// op(A) = A (m x k, row stride lda) or A^T (A stored k x m, row stride lda).
template <typename T, int MR>
void pack_a(bool transpose_a, index_t i0, index_t rows, index_t tile_rows, index_t p0, index_t kc, const T* a,
            index_t lda, index_t panel_stride, T* __restrict dst) {
  if (transpose_a) {
    // Row p of A holds k step p of every panel: read it once, contiguously, across the panels.
    // Full panels copy MR values of fixed count (a variable count became a memmove call per
    // panel and k step: 6% of an LSTM's training step). The rows lie lda apart (the weight
    // gradients' A is d_pre, 4 KiB and more per row) and the hardware prefetchers did not run
    // ahead of them: asking for row p + kRowsAhead while copying row p took dW = d_pre^T X
    // (1024 x 256 x 1600) from 97 to 100 GF/s on one thread and 189 to 193 on two.
    constexpr index_t kRowsAhead = 8;
    for (index_t p = 0; p < kc; ++p) {
      const T* src = a + (p0 + p) * lda + i0;
      if (p + kRowsAhead < kc)
        for (index_t i = 0; i < rows; i += kLineValues<T>) __builtin_prefetch(src + kRowsAhead * lda + i, 0, 3);
      index_t ib = 0, t = 0;
      if (tile_rows == MR)
        for (; ib + MR <= rows; ib += MR, ++t) {
          T* out = dst + t * panel_stride + p * MR;
          for (int i = 0; i < MR; ++i) out[i] = src[ib + i];
        }
      for (; ib < rows; ib += tile_rows, ++t) {
        const index_t h = rows - ib < tile_rows ? rows - ib : tile_rows;
        T* out = dst + t * panel_stride + p * MR;
        for (index_t i = 0; i < h; ++i) out[i] = src[ib + i];
      }
    }
    return;
  }
  // A panel's k step p gathers column p of its rows: write the panel contiguously, reading its
  // h rows of A side by side.
  for (index_t ib = 0, t = 0; ib < rows; ib += tile_rows, ++t) {
    const index_t h = rows - ib < tile_rows ? rows - ib : tile_rows;
    T* panel = dst + t * panel_stride;
    const T* src = a + (i0 + ib) * lda + p0;
    if (h == MR) {
      for (index_t p = 0; p < kc; ++p)
        for (index_t i = 0; i < MR; ++i) panel[p * MR + i] = src[i * lda + p];
    } else {
      for (index_t p = 0; p < kc; ++p)
        for (index_t i = 0; i < h; ++i) panel[p * MR + i] = src[i * lda + p];
    }
  }
}

// Panels [jp0, jp1) of the block with columns [j0, j0 + cols) and depth [p0, p0 + kc) of B
// (row stride ldb); panel jp goes to dst + jp * kc * NR.
template <typename T, int NR>
void pack_b(index_t jp0, index_t jp1, index_t j0, index_t cols, index_t p0, index_t kc, const T* b, index_t ldb,
            T* __restrict dst) {
  for (index_t jp = jp0; jp < jp1; ++jp) {
    const index_t jb = jp * NR;
    const index_t w = cols - jb < NR ? cols - jb : NR;
    T* panel = dst + jp * kc * NR;
    const T* src = b + p0 * ldb + j0 + jb;
    if (w == NR) {
      for (index_t p = 0; p < kc; ++p)
        for (index_t j = 0; j < NR; ++j) panel[p * NR + j] = src[p * ldb + j];
    } else {
      for (index_t p = 0; p < kc; ++p)
        for (index_t j = 0; j < NR; ++j) panel[p * NR + j] = j < w ? src[p * ldb + j] : T(0);
    }
  }
}

}  // namespace pyrnn::PYRNN_ISA
