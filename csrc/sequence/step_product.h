// The small products inside a step of a layer with a projection (per ISA): for every row b of a
// step's batch and the columns [col_begin, col_end) of W (K, N, row-major, ld ldw),
//   sum[b, col] = sum over k < K, in order, of A[b, k] * W[k, col]     (A row-major, ld lda),
// handed to store(b, col, lanes, n) a vector of columns at a time, the first n lanes real. Each
// element is one FMA chain in k order whatever tile computes it: the same bits for any thread
// count and batch composition (a thread passes its share of the columns). Column tiles are the
// outer loop, so a tile's K x 4 vectors of W stay in L2 across the row tiles; rows go in register
// tiles of up to 6 (4 vectors; 3 with 16 vector registers) or 8 (1 vector) rows, enough chains
// to cover the FMA latency.
// Reads A's rows [0, rows) for k < K, and W's row k at columns [col_begin, col_end) only.
#pragma once

#include "sequence/row_tiles.h"
#include "simd/lanes.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct StepProductArgs {
  index_t rows, K;
  const T* a;
  index_t lda;
  const T* w;
  index_t ldw;
};

// kVectors vectors of columns from col0, the last with n real lanes (n < U only when kVectors == 1).
template <typename T, int kRows, int kVectors, typename Store>
void step_product_tile(const StepProductArgs<T>& p, index_t b0, index_t col0, index_t n, Store& store) {
  constexpr index_t U = kUnitBlock<T>;
  Lanes<T> acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVectors; ++v) acc[r][v] = Lanes<T>{};
  const T* a = p.a + b0 * p.lda;
  const T* w = p.w + col0;
  for (index_t k = 0; k < p.K; ++k) {
    Lanes<T> wk[kVectors];
    if constexpr (kVectors == 1) wk[0] = load_first_lanes(w + k * p.ldw, n);
    else
      for (int v = 0; v < kVectors; ++v) wk[v] = load_lanes(w + k * p.ldw + v * U);
    for (int r = 0; r < kRows; ++r) {
      const Lanes<T> ak = broadcast(a[r * p.lda + k]);
      for (int v = 0; v < kVectors; ++v) acc[r][v] = fma(ak, wk[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVectors; ++v) store(b0 + r, col0 + v * U, acc[r][v], kVectors == 1 ? n : U);
}

template <typename T, typename Store>
void step_product(const StepProductArgs<T>& p, index_t col_begin, index_t col_end, Store store) {
  constexpr index_t U = kUnitBlock<T>;
  index_t col = col_begin;
  for (; col + 4 * U <= col_end; col += 4 * U)
    for_each_row_tile<kVectorBytes == 64 ? 6 : 3>(p.rows, [&](auto rows, index_t b0) {
      step_product_tile<T, decltype(rows)::value, 4>(p, b0, col, U, store);
    });
  for (; col < col_end; col += U) {
    const index_t n = col_end - col < U ? col_end - col : U;
    for_each_row_tile<8>(p.rows, [&](auto rows, index_t b0) {
      step_product_tile<T, decltype(rows)::value, 1>(p, b0, col, n, store);
    });
  }
}

}  // namespace pyrnn::PYRNN_ISA
