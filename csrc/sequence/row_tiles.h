// Batch rows in register tiles for the recurrences' step kernels (per ISA).
// A tile of r rows keeps r independent accumulator chains per vector of weights; a short tile has
// too few to cover the FMA latency (one row runs at a quarter of the rate of six). So the rows are
// cut into the fewest tiles of at most R rows, with heights that differ by at most one (32 rows
// with R = 6: 5,5,5,5,6,6 rather than six 6s and two 1s). Tiling changes no result: every output
// element is one FMA chain whatever tile computes it.
#pragma once

#include "simd/static_count.h"

namespace pyrnn::PYRNN_ISA {

// Calls tile_fn(StaticCount<r>{}, b0) for tiles of r <= R rows from b0 covering rows [0, batch).
template <int R, typename TileFn>
void for_each_row_tile(index_t batch, TileFn tile_fn) {
  static_assert(R >= 1, "a tile holds at least one row");
  const index_t tiles = (batch + R - 1) / R;
  for (index_t tile = 0; tile < tiles; ++tile) {
    const index_t b0 = batch * tile / tiles, b1 = batch * (tile + 1) / tiles;
    with_static_count<R>(b1 - b0, [&](auto rows) { tile_fn(rows, b0); });
  }
}

}  // namespace pyrnn::PYRNN_ISA
