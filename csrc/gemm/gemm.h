// Dense matrix product for the all-steps projections and gradients (per ISA).
//   C (m x n) = op(A) * B + beta * C,  row-major, unit column stride;
//   op(A) = A stored (m x k, row stride lda), or A^T with A stored (k x m, row stride lda);
//   B stored (k x n, row stride ldb).
// beta == 0 never reads C (it may hold NaN). Threads split C into tiles; every element of C is
// summed over k by one thread in increasing k, so results do not depend on the thread count.
#pragma once

#include "common/aligned_buffer.h"
#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

inline constexpr index_t kGemmRowTile = 32;
inline constexpr index_t kGemmColTile = 256;
inline constexpr double kGemmParallelFlops = 1 << 16;

template <typename T>
void gemm_tile(bool transpose_a, index_t i0, index_t i1, index_t j0, index_t j1, index_t k, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  for (index_t i = i0; i < i1; ++i) {
    T* crow = c + i * ldc;
    if (beta == T(0)) {
      for (index_t j = j0; j < j1; ++j) crow[j] = T(0);
    } else if (beta != T(1)) {
      for (index_t j = j0; j < j1; ++j) crow[j] *= beta;
    }
    for (index_t p = 0; p < k; ++p) {
      const T aval = transpose_a ? a[p * lda + i] : a[i * lda + p];
      const T* brow = b + p * ldb;
      for (index_t j = j0; j < j1; ++j) crow[j] += aval * brow[j];
    }
  }
}

template <typename T>
void gemm(bool transpose_a, index_t m, index_t n, index_t k, const T* a, index_t lda, const T* b, index_t ldb,
          T beta, T* c, index_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  const index_t row_tiles = (m + kGemmRowTile - 1) / kGemmRowTile;
  const index_t col_tiles = (n + kGemmColTile - 1) / kGemmColTile;
  const bool parallel = threads > 1 && double(m) * double(n) * double(k) > kGemmParallelFlops;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads) if (parallel)
  for (index_t ti = 0; ti < row_tiles; ++ti) {
    for (index_t tj = 0; tj < col_tiles; ++tj) {
      const index_t i0 = ti * kGemmRowTile, j0 = tj * kGemmColTile;
      const index_t i1 = i0 + kGemmRowTile < m ? i0 + kGemmRowTile : m;
      const index_t j1 = j0 + kGemmColTile < n ? j0 + kGemmColTile : n;
      gemm_tile(transpose_a, i0, i1, j0, j1, k, a, lda, b, ldb, beta, c, ldc);
    }
  }
}

// dst[j] = sum over rows r of src[r * ld + j], summed in row order (thread-count independent).
template <typename T>
void column_sums(index_t rows, index_t cols, const T* src, index_t ld, T* dst) {
  for (index_t j = 0; j < cols; ++j) dst[j] = T(0);
  for (index_t r = 0; r < rows; ++r) {
    const T* row = src + r * ld;
    for (index_t j = 0; j < cols; ++j) dst[j] += row[j];
  }
}

// dst (cols x rows, row stride ldd) = src^T, src (rows x cols, row stride lds).
template <typename T>
void transpose(index_t rows, index_t cols, const T* src, index_t lds, T* dst, index_t ldd) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) dst[j * ldd + r] = src[r * lds + j];
}

}  // namespace pyrnn::PYRNN_ISA
