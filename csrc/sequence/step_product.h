// The small products inside a step of a layer with a projection (per ISA): for every row b of a
// step's batch and the columns [col_begin, col_end) of W (K, N, row-major, ld ldw),
//   sum[b, col] = sum over k < K, in order, of A[b, k] * W[k, col]     (A row-major, ld lda),
// handed to store(b, col, lanes, n) a vector of columns at a time, the first n lanes real. Each
// element is one FMA chain in k order whatever tile computes it: the same bits for any thread
// count and batch composition (a thread passes its share of the columns). Column tiles are the
// outer loop, so a tile's K x 4 vectors of W stay in L2 across the row tiles; rows go in register
// tiles (kProductRows), enough chains to cover the FMA latency.
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

// kVectors vectors of columns from col0; with kMaskedLast the last has n <= U real lanes.
template <typename T, int kRows, int kVectors, bool kMaskedLast, typename Store>
void step_product_tile(const StepProductArgs<T>& p, index_t b0, index_t col0, index_t n, Store& store) {
  constexpr index_t U = kUnitBlock<T>;
  Lanes<T> acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVectors; ++v) acc[r][v] = Lanes<T>{};
  const T* a = p.a + b0 * p.lda;
  const T* w = p.w + col0;
  for (index_t k = 0; k < p.K; ++k) {
    Lanes<T> wk[kVectors];
    for (int v = 0; v < kVectors; ++v)
      wk[v] = kMaskedLast && v == kVectors - 1 ? load_first_lanes(w + k * p.ldw + v * U, n)
                                               : load_lanes(w + k * p.ldw + v * U);
    for (int r = 0; r < kRows; ++r) {
      const Lanes<T> ak = broadcast(a[r * p.lda + k]);
      for (int v = 0; v < kVectors; ++v) acc[r][v] = fma(ak, wk[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVectors; ++v)
      store(b0 + r, col0 + v * U, acc[r][v], kMaskedLast && v == kVectors - 1 ? n : U);
}

// Rows per tile of V vectors: 24 accumulators of AVX-512's 32 registers (12 of 16 otherwise),
// at most 8.
inline constexpr int kProductAccumulators = kVectorBytes == 64 ? 24 : 12;
template <int V>
inline constexpr int kProductRows = kProductAccumulators / V < 8 ? kProductAccumulators / V : 8;

// Tiles of 4 vectors, then one tile of the 1-4 vectors left, its last vector masked when partial:
// a single row (a streaming step) keeps up to 4 chains going instead of one per vector in turn.
template <typename T, typename Store>
void step_product(const StepProductArgs<T>& p, index_t col_begin, index_t col_end, Store store) {
  constexpr index_t U = kUnitBlock<T>;
  index_t col = col_begin;
  for (; col + 4 * U <= col_end; col += 4 * U)
    for_each_row_tile<kProductRows<4>>(p.rows, [&](auto rows, index_t b0) {
      step_product_tile<T, decltype(rows)::value, 4, false>(p, b0, col, U, store);
    });
  if (col == col_end) return;
  const index_t vectors = (col_end - col + U - 1) / U, n = col_end - col - (vectors - 1) * U;
  with_static_count<4>(vectors, [&](auto tile_vectors) {
    constexpr int V = decltype(tile_vectors)::value;
    for_each_row_tile<kProductRows<V>>(p.rows, [&](auto rows, index_t b0) {
      if (n < U) step_product_tile<T, decltype(rows)::value, V, true>(p, b0, col, n, store);
      else step_product_tile<T, decltype(rows)::value, V, false>(p, b0, col, U, store);
    });
  });
}

}  // namespace pyrnn::PYRNN_ISA
