// Batch rows in register tiles for the recurrences' step kernels (per ISA).
// A tile of r rows keeps r independent accumulator chains per vector of weights; a short tile has
// too few to cover the FMA latency (one row runs at a quarter of the rate of six). So the rows are
// cut into the fewest tiles of at most R rows, with heights that differ by at most one (32 rows
// with R = 6: 5,5,5,5,6,6 rather than six 6s and two 1s). Tiling changes no result: every output
// element is one FMA chain whatever tile computes it.
#pragma once

#include "common/aligned_buffer.h"
#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <int N>
struct RowCount {
  static constexpr int value = N;
};

template <int kMax, typename TileFn>
void call_with_rows(index_t rows, index_t b0, TileFn& tile_fn) {
  if constexpr (kMax > 1) {
    if (rows < kMax) return call_with_rows<kMax - 1>(rows, b0, tile_fn);
  }
  tile_fn(RowCount<kMax>{}, b0);
}

// Calls tile_fn(RowCount<r>{}, b0) for tiles of r <= R rows from b0 covering rows [0, batch).
template <int R, typename TileFn>
void for_each_row_tile(index_t batch, TileFn tile_fn) {
  const index_t tiles = (batch + R - 1) / R;
  for (index_t tile = 0; tile < tiles; ++tile) {
    const index_t b0 = batch * tile / tiles, b1 = batch * (tile + 1) / tiles;
    call_with_rows<R>(b1 - b0, b0, tile_fn);
  }
}

}  // namespace pyrnn::PYRNN_ISA
