// The forward recurrence of one layer, fused and weight-stationary (per ISA).
//
// Each step computes, per batch row b and block of U hidden units, the G gate pre-activations
//   acc = x_proj[t, b] + bias + h[b] W_hh^T       (GRU's n gate: b_hn + h W_hn^T, kept apart)
// as U-wide vectors, accumulating over k in registers from the unit block's panel (pack.h),
// and applies the cell maths to those registers at once: no separate pass over the gates.
// Every output element is one FMA chain over k = 0 .. Hout-1 from the same initial value,
// whatever the batch size, the row tiling or the thread count, so results are bitwise the same
// for any thread count and for a sequence alone or inside a batch.
//
// Threading: each thread owns a fixed range of unit blocks (with all G gates of those units)
// for the whole sequence, so its slice of the packed W_hh stays in its own cache; the state h
// is double-buffered. Over several steps without a projection, no thread waits for the others
// at the end of a step: the next step's first tile waits for each other thread's part of h only
// when its k reaches that part (StepProgress), so a thread whose own part comes first starts on
// it at once. As that tile waits for every other part before it writes, no thread overwrites
// the h that another still reads. Otherwise the threads meet at one barrier per step (two with
// a projection, whose output slice each thread computes after the first). With two directions
// and at least two threads, each direction runs on its own group of threads, concurrently.
//
// With few rows or a product too small for gemm() to split (layer_forward.h), each thread
// projects its own units' columns of x_proj (project_tile) before its first step; a call of one
// step does so tile by tile inside the step, just before the tile's h-chain, so the step is one
// pass over W_ih's and W_hh's panels.
//
// Rows at t >= length keep their state and write zeros to y. State layout: h (B, hs) with
// hs = Hp (no projection) or P; c and r (B, Hp). Padded units hold zeros and are never read.
// Where the caller's state arrays have that layout (no padded units), the first step reads h0
// and c0 from them and the last writes h_n and c_n into them: a streaming call copies no state.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/rnn.h"
#include "gemm/config.h"
#include "sequence/direction_teams.h"
#include "sequence/layer_args.h"
#include "sequence/packed_layer.h"
#include "sequence/row_tiles.h"
#include "sequence/step_product.h"
#include "sequence/tape.h"

namespace pyrnn::PYRNN_ISA {

// Everything one step of one direction reads and writes.
template <typename T>
struct StepContext {
  const PackedLayer<T>* layer;
  index_t t, batch, hs;                // time step, B, row stride of h
  const std::int64_t* lengths;         // nullptr: all rows valid
  T* x_proj;                           // (B, D*G*Hp) at step t, this direction's columns from +d*G*Hp
  const T* x;                          // (B, I) at step t when the step projects it itself, else nullptr
  const T* x_bias;                     // (G*Hp) this direction
  const T* hn_bias;                    // (Hp) this direction
  const T* panels;                     // this direction's w_hh_panels
  const T* h_cur;                      // (B, hs)
  T* h_next;                           // (B, hs)
  const T* c_prev;                     // (B, Hp), LSTM; may be c_next (the state updated in place)
  T* c_next;                           // (B, Hp), LSTM
  T* r;                                // (B, Hp), LSTM with projection
  T* y;                                // (B, D*Hout) at step t, this direction's columns from +d*Hout
  index_t y_stride;                    // D*Hout
  LayerTape<T>* tape;                  // nullptr for inference
  index_t tape_row0, direction;        // t*B; d
  // Steps chained by StepProgress (see the header): the team's progress, this thread's seat
  // (its shares of the unit blocks tell each member's part of h) and the step's index.
  StepProgress* progress;              // nullptr: h_cur is complete when the step starts
  const TeamSeat* seat;
  std::int64_t step;
  // This thread's unit blocks and the step's sweep over them (for_each_block_tile); x_proj at this
  // direction's next step, nullptr at the last (prefetch_next_tile).
  index_t block_begin, block_end;
  bool backwards;
  const T* next_x_proj;
};

template <typename T>
inline bool row_valid(const StepContext<T>& s, index_t b) {
  return s.lengths == nullptr || s.t < s.lengths[b];
}

template <Cell kCell>
inline constexpr index_t kGates = kCell == Cell::lstm ? 4 : (kCell == Cell::gru ? 3 : 1);

// Row b of this direction's columns in x_proj (a step's x_proj, s.x_proj or s.next_x_proj): gate g
// of unit u at [g * Hp + u].
template <typename T, Cell kCell>
inline const T* x_proj_row(const StepContext<T>& s, const T* x_proj, index_t b) {
  constexpr index_t G = kGates<kCell>;
  const index_t Hp = s.layer->padded_hidden;
  return x_proj + b * s.layer->spec.directions * G * Hp + s.direction * G * Hp;
}

// What a block's cell maths and stores read besides its accumulators: the previous h (zero with
// a projection, where h has P columns and project_step owns it), c (LSTM) and the n gate's input
// side (GRU).
template <typename T>
struct BlockState {
  Lanes<T> h_prev, c_prev, x_n;
};

template <typename T, Cell kCell>
PYRNN_SIMD_INLINE BlockState<T> load_block_state(const StepContext<T>& s, index_t b, index_t u0) {
  const index_t Hp = s.layer->padded_hidden;
  BlockState<T> state{};
  if (s.layer->spec.proj_size == 0) state.h_prev = load_lanes(s.h_cur + b * s.hs + u0);
  if constexpr (kCell == Cell::lstm) state.c_prev = load_lanes(s.c_prev + b * Hp + u0);
  if constexpr (kCell == Cell::gru) {
    const T* x_row = x_proj_row<T, kCell>(s, s.x_proj, b);
    state.x_n = load_lanes(x_row + 2 * Hp + u0) + load_lanes(s.x_bias + 2 * Hp + u0);
  }
  return state;
}

// What the cell maths gives for a block: its gates and new state (cells/*.h), an RNN's new h.
template <typename T, Cell kCell>
using CellStep = std::conditional_t<kCell == Cell::lstm, LstmStep<T>,
                                    std::conditional_t<kCell == Cell::gru, GruStep<T>, Lanes<T>>>;

// One row's stores for one unit block (units u0 .. u0+n-1 are real), from its cell maths; rows at
// t >= length keep their state instead.
template <typename T, Cell kCell>
PYRNN_SIMD_INLINE void cell_epilogue(const StepContext<T>& s, index_t b, index_t u0, const Lanes<T>* acc,
                                     const BlockState<T>& state, const CellStep<T, kCell>& step) {
  const PackedLayer<T>& L = *s.layer;
  const LayerSpec& spec = L.spec;
  const index_t H = spec.hidden_size, Hp = L.padded_hidden, D = spec.directions, d = s.direction;
  const index_t n = H - u0 < kUnitBlock<T> ? H - u0 : kUnitBlock<T>;
  const bool projected = spec.proj_size > 0;
  const bool valid = row_valid(s, b);
  const index_t tape_row = s.tape_row0 + b;
  T* y_row = s.y + b * s.y_stride + u0;
  const Lanes<T> h_prev = state.h_prev;
  if (s.tape != nullptr && !projected)  // zero at padded steps: see tape.h
    store_first_lanes(s.tape->h_prev.data() + tape_row * D * H + d * H + u0, valid ? h_prev : Lanes<T>{}, n);

  if constexpr (kCell == Cell::lstm) {
    T* c_row = s.c_next + b * Hp + u0;
    const Lanes<T> c_prev = state.c_prev;
    const index_t tape_offset = tape_row * D * H + d * H + u0;
    if (s.tape != nullptr) store_first_lanes(s.tape->c_prev.data() + tape_offset, c_prev, n);
    if (!valid) {
      store_lanes(c_row, c_prev);
      if (!projected) {
        store_lanes(s.h_next + b * s.hs + u0, h_prev);
        store_first_lanes(y_row, Lanes<T>{}, n);
      } else if (s.tape != nullptr) {  // read by dW_hr = dH^T R, with dH = 0 here
        store_first_lanes(s.tape->proj_in.data() + tape_offset, Lanes<T>{}, n);
      }
      return;
    }
    store_lanes(c_row, step.c);
    const Lanes<T> out = step.r;
    if (projected) {
      store_lanes(s.r + b * Hp + u0, out);
    } else {
      store_lanes(s.h_next + b * s.hs + u0, out);
      store_first_lanes(y_row, out, n);
    }
    if (s.tape != nullptr) {
      T* gates = s.tape->gates.data() + tape_row * D * 4 * H + d * 4 * H + u0;
      store_first_lanes(gates, step.i, n);
      store_first_lanes(gates + H, step.f, n);
      store_first_lanes(gates + 2 * H, step.g, n);
      store_first_lanes(gates + 3 * H, step.o, n);
      store_first_lanes(s.tape->tanh_cell.data() + tape_offset, step.tanh_c, n);
      if (projected) store_first_lanes(s.tape->proj_in.data() + tape_offset, out, n);
    }
  } else {
    if (!valid) {
      store_lanes(s.h_next + b * s.hs + u0, h_prev);
      store_first_lanes(y_row, Lanes<T>{}, n);
      return;
    }
    Lanes<T> h_new;
    if constexpr (kCell == Cell::gru) {
      h_new = step.h;
      if (s.tape != nullptr) {
        T* gates = s.tape->gates.data() + tape_row * D * 3 * H + d * 3 * H + u0;
        store_first_lanes(gates, step.r, n);
        store_first_lanes(gates + H, step.z, n);
        store_first_lanes(gates + 2 * H, step.n, n);
        store_first_lanes(s.tape->hidden_lin.data() + tape_row * D * H + d * H + u0, acc[2], n);
      }
    } else {
      h_new = step;
      if (s.tape != nullptr) store_first_lanes(s.tape->gates.data() + tape_row * D * H + d * H + u0, h_new, n);
    }
    store_lanes(s.h_next + b * s.hs + u0, h_new);
    store_first_lanes(y_row, h_new, n);
  }
}

// The cell maths of a tile's kRows x kBlocks vectors of units, then each block's stores. LSTM and
// GRU take every vector through one stage of their maths before the next (cells/lstm.h): every
// vector's maths is as it would be alone, the same bits. Rows at t >= length go through the maths
// too, and cell_epilogue drops it. On Zen 1, B = 1, two threads: LSTM and GRU(64, 128..256)
// latency calls 4-8% faster, one thread within 2% (docs/HACKING.md). An RNN's one activation has
// no chain to overlap, and staging made it up to 3% slower: block by block.
template <typename T, Cell kCell, int kRows, int kBlocks>
PYRNN_SIMD_INLINE void tile_epilogue(const StepContext<T>& s, index_t b0, index_t block0,
                                     const Lanes<T> (&acc)[kRows][kBlocks][kGates<kCell>]) {
  constexpr index_t U = kUnitBlock<T>;
  if constexpr (kCell == Cell::rnn_relu || kCell == Cell::rnn_tanh) {
    for (int r = 0; r < kRows; ++r)
      for (int jb = 0; jb < kBlocks; ++jb) {
        const index_t u0 = (block0 + jb) * U;
        cell_epilogue<T, kCell>(s, b0 + r, u0, acc[r][jb], load_block_state<T, kCell>(s, b0 + r, u0),
                                rnn_forward<T>(kCell == Cell::rnn_relu, acc[r][jb][0]));
      }
  } else {
    BlockState<T> state[kRows][kBlocks];
    CellStep<T, kCell> step[kRows][kBlocks];
    for (int r = 0; r < kRows; ++r)
      for (int jb = 0; jb < kBlocks; ++jb) state[r][jb] = load_block_state<T, kCell>(s, b0 + r, (block0 + jb) * U);
    if constexpr (kCell == Cell::lstm) {
      for (int r = 0; r < kRows; ++r)
        for (int jb = 0; jb < kBlocks; ++jb) lstm_gates<T>(acc[r][jb], step[r][jb]);
      for (int r = 0; r < kRows; ++r)
        for (int jb = 0; jb < kBlocks; ++jb) lstm_state<T>(state[r][jb].c_prev, step[r][jb]);
    } else {
      for (int r = 0; r < kRows; ++r)
        for (int jb = 0; jb < kBlocks; ++jb) gru_gates<T>(acc[r][jb], step[r][jb]);
      for (int r = 0; r < kRows; ++r)
        for (int jb = 0; jb < kBlocks; ++jb)
          gru_state<T>(acc[r][jb], state[r][jb].x_n, state[r][jb].h_prev, step[r][jb]);
    }
    for (int r = 0; r < kRows; ++r)
      for (int jb = 0; jb < kBlocks; ++jb)
        cell_epilogue<T, kCell>(s, b0 + r, (block0 + jb) * U, acc[r][jb], state[r][jb], step[r][jb]);
  }
}

// kBlocks unit blocks' columns of x_proj (every gate) from block0, for kRows rows from row0: the
// input projection from the blocks' W_ih panels (pack.h), streamed in order. Each element is the
// product's chain (gemm/gemm.h): an FMA chain from zero over each KC block of k, the blocks
// added in order, so these are the bits layer_forward's product would give.
template <typename T, Cell kCell, int kRows, int kBlocks>
void project_tile(const PackedLayer<T>& L, const T* x, index_t row0, index_t d, index_t block0, T* x_proj) {
  constexpr index_t G = kGates<kCell>, U = kUnitBlock<T>, KC = GemmConfig<T>::kc;
  const index_t I = L.spec.input_size, Hp = L.padded_hidden, columns = L.spec.directions * G * Hp;
  const T* panel = L.w_ih_unit_panels.data() + (d * (Hp / U) + block0) * I * G * U;
  Lanes<T> sum[kRows][kBlocks][G] = {};  // (I >= 1: the first KC block sets it)
  for (index_t pc = 0; pc < I; pc += KC) {
    Lanes<T> acc[kRows][kBlocks][G] = {};
    const index_t pc_end = pc + KC < I ? pc + KC : I;
    for (index_t k = pc; k < pc_end; ++k) {
      Lanes<T> w[kBlocks][G];
      for (int jb = 0; jb < kBlocks; ++jb)
        for (index_t g = 0; g < G; ++g) w[jb][g] = load_lanes(panel + (jb * I + k) * G * U + g * U);
      for (int r = 0; r < kRows; ++r) {
        const Lanes<T> xk = broadcast(x[(row0 + r) * I + k]);
        for (int jb = 0; jb < kBlocks; ++jb)
          for (index_t g = 0; g < G; ++g) acc[r][jb][g] = fma(xk, w[jb][g], acc[r][jb][g]);
      }
    }
    for (int r = 0; r < kRows; ++r)
      for (int jb = 0; jb < kBlocks; ++jb)
        for (index_t g = 0; g < G; ++g) sum[r][jb][g] = pc == 0 ? acc[r][jb][g] : sum[r][jb][g] + acc[r][jb][g];
  }
  for (int r = 0; r < kRows; ++r)
    for (int jb = 0; jb < kBlocks; ++jb)
      for (index_t g = 0; g < G; ++g)
        store_lanes(x_proj + (row0 + r) * columns + (d * G + g) * Hp + (block0 + jb) * U, sum[r][jb][g]);
}

// acc[r][jb][g] += h[b0 + r, k] * W_hh panel for k in [k_begin, k_end), in k order.
template <typename T, Cell kCell, int kRows, int kBlocks>
PYRNN_SIMD_INLINE void accumulate_h(const StepContext<T>& s, index_t b0, const T* const (&panel)[kBlocks],
                                    index_t k_begin, index_t k_end, Lanes<T> (&acc)[kRows][kBlocks][kGates<kCell>]) {
  constexpr index_t G = kGates<kCell>, U = kUnitBlock<T>;
  for (index_t k = k_begin; k < k_end; ++k) {
    Lanes<T> w[kBlocks][G];
    for (int jb = 0; jb < kBlocks; ++jb)
      for (index_t g = 0; g < G; ++g) w[jb][g] = load_lanes(panel[jb] + (k * G + g) * U);
    for (int r = 0; r < kRows; ++r) {
      const Lanes<T> hk = broadcast(s.h_cur[(b0 + r) * s.hs + k]);
      for (int jb = 0; jb < kBlocks; ++jb)
        for (index_t g = 0; g < G; ++g) acc[r][jb][g] = fma(hk, w[jb][g], acc[r][jb][g]);
    }
  }
}

// Prefetches the lines of x_proj (every gate of kBlocks unit blocks from block0, rows [row_begin,
// row_end)) that a later tile starts its accumulators from.
template <typename T, Cell kCell, int kBlocks>
PYRNN_SIMD_INLINE void prefetch_x_proj(const StepContext<T>& s, const T* x_proj, index_t row_begin, index_t row_end,
                                       index_t block0) {
  constexpr index_t G = kGates<kCell>, U = kUnitBlock<T>;
  const index_t Hp = s.layer->padded_hidden;
  const index_t blocks = block0 + kBlocks < Hp / U ? kBlocks : Hp / U - block0;
  for (index_t b = row_begin; b < row_end; ++b) {
    const T* row = x_proj_row<T, kCell>(s, x_proj, b) + block0 * U;
    for (index_t jb = 0; jb < blocks; ++jb)
      for (index_t g = 0; g < G; ++g) __builtin_prefetch(row + g * Hp + jb * U, 0, 3);
  }
}

// A tile of a batch with several row tiles per block prefetches the lines of x_proj that the
// step's next tile starts from, a k-loop ahead of their use: the block's next rows, else the
// first rows of the next block in the sweep, else those of this block at the next step, which
// starts where this one ends. Written by the all-steps product before the recurrence, x_proj of
// a large batch has left the caches by the time its step comes (13 MB for LSTM(256, 256) at
// T = 50, B = 64), and a tile that only loads its lines when it starts waits for memory before
// its first FMA. One thread, Zen 5, T = 50, B = 64: LSTM(256, 256) 8% faster, LSTM(1, 256) 11%,
// GRU and LSTM(512, 512) 4-5%; B = 1 unchanged (docs/HACKING.md). Rows are counted as if the next
// tile were one taller (heights differ by at most one, row_tiles.h), and the next block in the
// sweep as kBlocks away (one off where tiles of J blocks meet single ones): a prefetch of a
// line that is not read next costs little.
template <typename T, Cell kCell, int kRows, int kBlocks>
PYRNN_SIMD_INLINE void prefetch_next_tile(const StepContext<T>& s, index_t b0, index_t block0) {
  const index_t next_b0 = b0 + kRows, rows = kRows + 1;
  if (next_b0 < s.batch) {
    prefetch_x_proj<T, kCell, kBlocks>(s, s.x_proj, next_b0, next_b0 + rows < s.batch ? next_b0 + rows : s.batch,
                                       block0);
    return;
  }
  const index_t next_block0 = s.backwards ? block0 - kBlocks : block0 + kBlocks;
  const index_t first_rows = rows < s.batch ? rows : s.batch;
  if (next_block0 >= s.block_begin && next_block0 < s.block_end)
    prefetch_x_proj<T, kCell, kBlocks>(s, s.x_proj, 0, first_rows, next_block0);
  else if (s.next_x_proj != nullptr)
    prefetch_x_proj<T, kCell, kBlocks>(s, s.next_x_proj, 0, first_rows, block0);
}

// kRows batch rows from b0 times kBlocks unit blocks from block0: G*kRows*kBlocks accumulators.
// kWaitForH: the step's first tile, which waits for the other members' parts of h (StepProgress).
template <typename T, Cell kCell, int kRows, int kBlocks, bool kWaitForH>
void fused_step_tile(const StepContext<T>& s, index_t b0, index_t block0) {
  constexpr index_t G = kGates<kCell>, U = kUnitBlock<T>;
  const PackedLayer<T>& L = *s.layer;
  const index_t Hp = L.padded_hidden, Hout = L.spec.out_size();

  if (s.x != nullptr) project_tile<T, kCell, kRows, kBlocks>(L, s.x, b0, s.direction, block0, s.x_proj);
  else if (s.batch > kRows) prefetch_next_tile<T, kCell, kRows, kBlocks>(s, b0, block0);
  Lanes<T> acc[kRows][kBlocks][G];
  const T* panel[kBlocks];
  for (int jb = 0; jb < kBlocks; ++jb) {
    const index_t u0 = (block0 + jb) * U;
    panel[jb] = s.panels + (block0 + jb) * Hout * G * U;
    for (int r = 0; r < kRows; ++r) {
      const T* x_row = x_proj_row<T, kCell>(s, s.x_proj, b0 + r);
      for (index_t g = 0; g < G; ++g) {
        if (kCell == Cell::gru && g == 2) acc[r][jb][g] = load_lanes(s.hn_bias + u0);
        else acc[r][jb][g] = load_lanes(x_row + g * Hp + u0) + load_lanes(s.x_bias + g * Hp + u0);
      }
    }
  }
  if constexpr (!kWaitForH) {
    accumulate_h<T, kCell, kRows, kBlocks>(s, b0, panel, 0, Hout, acc);
  } else {  // the step's first tile: each other member's part of h once that member has written it
    const TeamSeat& seat = *s.seat;
    const index_t blocks = Hp / U;
    index_t k = 0;
    for (int part = 0; part < seat.size; ++part) {
      const index_t part_end = seat.share_end_of(part, blocks) * U, k_end = part_end < Hout ? part_end : Hout;
      if (part != seat.member) s.progress->wait_for(part, s.step - 1);
      accumulate_h<T, kCell, kRows, kBlocks>(s, b0, panel, k, k_end, acc);
      k = k_end;
    }
  }
  tile_epilogue<T, kCell, kRows, kBlocks>(s, b0, block0, acc);
}

// Tiling: a tile of J unit blocks by up to kTileRows rows keeps G*J*rows accumulators, 24 of
// AVX-512's 32 registers (12 of AVX2's 16): enough independent chains to cover the FMA latency,
// few enough to stay in registers (LSTM tiles of 5 or 7 rows ran within 3% of 6 at B = 32-256).
// Per k it loads G*J panel vectors and broadcasts one h value per row. Any tiling gives the same
// bits (see the header).
template <Cell kCell, int J>
inline constexpr int kTileRows = (kVectorBytes == 64 ? 24 : 12) / (kGates<kCell> * J);

// Calls fn(StaticCount<J>{}) with the blocks per tile for this cell and `rows` to tile. LSTM: one
// block (4 vectors, 6 rows). RNN: four (4 vectors, 6 rows; one block of 24 rows ran 1.4x slower
// at B = 64, bound by its broadcasts). GRU: two blocks of 4 rows, 6 chains for a single row; but
// one block of 8 rows when the rows fill it, which halves the panel loads that bound it there
// (GRU(256, 256) and GRU(512, 512), B = 64: 4-6% faster, 12% with AVX2). On Zen 4 one block was
// also 2-3% faster at B = 1 where its panel fitted in L1 (H <= 128), the alternating sweep
// (for_each_block_tile) then starting on a panel still there; on Zen 5 it made GRU(64, 128)
// latency calls 10% slower on one thread and 16% on two, GRU(17, 33) 13% (tools/ab_inprocess.py).
// With AVX2 a single LSTM row takes two blocks: 8 chains, where one block's 4 leave the FMAs
// waiting on their latency (a 256-bit FMA takes 5 cycles, one issued per cycle, on Zen 1).
// There, one thread, B = 1: LSTM(64, 128..512) calls 3-30% faster, streaming steps 5-14%
// (docs/HACKING.md); with AVX-512 two blocks at B = 1 made no difference.
template <Cell kCell, typename Fn>
PYRNN_SIMD_INLINE void with_tile_blocks(index_t rows, Fn&& fn) {
  if constexpr (kCell == Cell::lstm) {
    if (kVectorBytes == 32 && rows == 1) fn(StaticCount<2>{});
    else fn(StaticCount<1>{});
  } else if constexpr (kCell == Cell::gru) {
    if (rows >= kTileRows<kCell, 1>) fn(StaticCount<1>{});
    else fn(StaticCount<2>{});
  } else {
    fn(StaticCount<4>{});
  }
}

template <typename T, Cell kCell, int kRowsMax, int kBlocks, bool kWaitForH>
void fused_step_rows(const StepContext<T>& s, index_t block0) {
  for_each_row_tile<kRowsMax>(s.batch, [&](auto rows, index_t b0) {
    if (kWaitForH && b0 == 0) fused_step_tile<T, kCell, decltype(rows)::value, kBlocks, kWaitForH>(s, b0, block0);
    else fused_step_tile<T, kCell, decltype(rows)::value, kBlocks, false>(s, b0, block0);
  });
}

// Calls tile_fn(StaticCount<j>{}, block0) for tiles of J blocks, then single blocks, covering
// [block_begin, block_end); `backwards` visits the same tiles last to first. The recurrence
// alternates from step to step, counting the layer's steps over all its calls (a streaming step
// is a call), so a step starts on the panels the previous one read last, which are still in
// cache: with a W_hh slice near the size of L2, sweeping one way every step would evict each
// panel shortly before its next use. Sweeping one way only, one thread, was slower by 1-5% on
// Zen 4's latency cases with H = 256 and 512 and 9% on a streaming step of GRU(64, 256); on
// Zen 5 by 23-31% on LSTM(64, 256) latency calls, 12-18% on streaming steps of GRU and
// LSTM(64, 256), 11% on GRU(64, 128) latency calls (LSTM(64, 128): 1%). Blocks are
// independent, so the order changes no result.
template <int J, typename TileFn>
PYRNN_SIMD_INLINE void for_each_block_tile(index_t block_begin, index_t block_end, bool backwards, TileFn tile_fn) {
  const index_t tiles = (block_end - block_begin) / J, singles_begin = block_begin + tiles * J;
  const index_t units = tiles + (block_end - singles_begin);
  for (index_t i = 0; i < units; ++i) {
    const index_t unit = backwards ? units - 1 - i : i;
    if (unit < tiles) tile_fn(StaticCount<J>{}, block_begin + unit * J);
    else tile_fn(StaticCount<1>{}, singles_begin + unit - tiles);
  }
}

// Calls fn(std::integral_constant<Cell, c>{}) for the run-time cell c.
template <typename Fn>
PYRNN_SIMD_INLINE void with_cell(Cell cell, Fn&& fn) {
  switch (cell) {
    case Cell::lstm: fn(std::integral_constant<Cell, Cell::lstm>{}); break;
    case Cell::gru: fn(std::integral_constant<Cell, Cell::gru>{}); break;
    case Cell::rnn_relu: fn(std::integral_constant<Cell, Cell::rnn_relu>{}); break;
    default: fn(std::integral_constant<Cell, Cell::rnn_tanh>{}); break;
  }
}

// The tiles of unit blocks [block_begin, block_end) for `rows` rows, in the order of
// for_each_block_tile: calls tile_fn(cell, tile_blocks, blocks, block0) with the cell as
// std::integral_constant, the tiling's blocks per tile (with_tile_blocks) and this tile's blocks
// as StaticCounts.
//
// It runs once per step, so it and the helpers above are inlined into the step: called out of
// line, they copied their closures with wide loads that cannot take their data from the narrow
// stores just made. Such a load waits for the stores before it to drain, and at the start of a
// chained step those include the previous step's StepProgress::publish, a store to a line the
// other threads are reading: ~3% of a 2-thread LSTM(1, 128) step sat on one such load.
template <typename TileFn>
PYRNN_SIMD_INLINE void for_each_unit_tile(Cell cell, index_t rows, index_t block_begin, index_t block_end,
                                          bool backwards, TileFn tile_fn) {
  with_cell(cell, [&](auto cell_constant) {
    constexpr Cell kCell = decltype(cell_constant)::value;
    with_tile_blocks<kCell>(rows, [&](auto tile_blocks) {
      for_each_block_tile<decltype(tile_blocks)::value>(block_begin, block_end, backwards,
                                                        [&](auto blocks, index_t block0) {
                                                          tile_fn(cell_constant, tile_blocks, blocks, block0);
                                                        });
    });
  });
}

// One step's tiles over the thread's unit blocks, in the step's sweep. kChained: the first tile
// waits for the other threads' parts of h (StepProgress); a separate instance keeps the code of
// the unchained step as it was (a run-time flag made a streaming GRU step 1.5% slower).
template <typename T, bool kChained>
void fused_step_tiles(const StepContext<T>& s) {
  bool first_tile = kChained;
  for_each_unit_tile(s.layer->spec.cell, s.batch, s.block_begin, s.block_end, s.backwards,
                     [&](auto cell, auto tile_blocks, auto blocks, index_t block0) {
                       constexpr Cell kCell = decltype(cell)::value;
                       constexpr int kRowsMax = kTileRows<kCell, decltype(tile_blocks)::value>;
                       if (kChained && first_tile) {
                         first_tile = false;
                         fused_step_rows<T, kCell, kRowsMax, decltype(blocks)::value, true>(s, block0);
                       } else {
                         fused_step_rows<T, kCell, kRowsMax, decltype(blocks)::value, false>(s, block0);
                       }
                     });
}

template <typename T>
void fused_step(const StepContext<T>& s) {
  if (s.progress != nullptr) fused_step_tiles<T, true>(s);
  else fused_step_tiles<T, false>(s);
}

// h_next[b, p] = r[b] . W_hr[p] for p in [p_begin, p_end): the LSTM projection, rows past their
// length keep h. Also writes y and, with a tape, h_prev for those columns (zero at padded steps).
template <typename T>
void project_step(const StepContext<T>& s, index_t p_begin, index_t p_end) {
  const PackedLayer<T>& L = *s.layer;
  const index_t H = L.spec.hidden_size, P = L.spec.proj_size, Hp = L.padded_hidden, D = L.spec.directions;
  const StepProductArgs<T> product{s.batch, H, s.r, Hp, L.w_hr_panels.data() + s.direction * H * P, P};
  step_product(product, p_begin, p_end, [&](index_t b, index_t p, Lanes<T> sum, index_t n) {
    const bool valid = row_valid(s, b);
    const Lanes<T> h = load_first_lanes(s.h_cur + b * P + p, n);
    if (s.tape != nullptr)
      store_first_lanes(s.tape->h_prev.data() + (s.tape_row0 + b) * D * P + s.direction * P + p,
                        valid ? h : Lanes<T>{}, n);
    store_first_lanes(s.h_next + b * P + p, valid ? sum : h, n);
    store_first_lanes(s.y + b * s.y_stride + p, valid ? sum : Lanes<T>{}, n);
  });
}

// x_proj's columns of direction d's unit blocks [block_begin, block_end), every gate, for all
// T*B rows: the part of the input projection that the thread owning those blocks reads. Tiled
// and ordered as the step kernel's (fused_step).
template <typename T>
void project_unit_blocks(const PackedLayer<T>& L, const ForwardArgs<T>& a, index_t d, index_t block_begin,
                         index_t block_end, bool backwards, T* x_proj) {
  const index_t rows = a.steps * a.batch;
  for_each_unit_tile(L.spec.cell, rows, block_begin, block_end, backwards,
                     [&](auto cell, auto tile_blocks, auto blocks, index_t block0) {
                       constexpr Cell kCell = decltype(cell)::value;
                       for_each_row_tile<kTileRows<kCell, decltype(tile_blocks)::value>>(
                           rows, [&](auto tile_rows, index_t row0) {
                             project_tile<T, kCell, decltype(tile_rows)::value, decltype(blocks)::value>(
                                 L, a.x, row0, d, block0, x_proj);
                           });
                     });
}

// With project_in_teams, x_proj arrives empty and each thread fills the columns it reads:
// before its first step (project_unit_blocks), or in the step when the call has one.
template <typename T>
void recurrence_forward(const PackedLayer<T>& L, const ForwardArgs<T>& a, T* x_proj, bool project_in_teams,
                        LayerTape<T>* tape) {
  const LayerSpec& spec = L.spec;
  const index_t D = spec.directions, G = spec.gates(), Hp = L.padded_hidden, H = spec.hidden_size,
                P = spec.proj_size, Hout = spec.out_size(), B = a.batch, steps = a.steps;
  const index_t U = L.unit_block, blocks = Hp / U, hs = P > 0 ? P : Hp;
  const bool lstm = spec.has_cell_state();

  // Direct: the first step reads h0 (c0) and the last writes h_n (c_n) in the caller's arrays,
  // which then have the kernels' layout; the steps between use the scratch buffers, alternating
  // as always, so a thread a step ahead never writes the h another reads. Otherwise the state is
  // copied in, padded, and out.
  const bool h_direct = hs == Hout, c_direct = Hp == H;
  ScratchBuffer<T> h(h_direct && steps == 1 ? 0 : checked_mul(2 * D * B, hs)),
      c(!lstm || (c_direct && steps == 1) ? 0 : checked_mul(D * B, Hp));
  AlignedBuffer<T> r(P > 0 ? checked_mul(D * B, Hp) : 0);
  r.fill_zero();  // project_step multiplies every row; a row past its length keeps h, whatever r holds
  if (!h_direct) {
    h.fill_zero();
    for (index_t d = 0; d < D; ++d)
      for (index_t b = 0; b < B; ++b)
        for (index_t k = 0; k < Hout; ++k) h.data()[(2 * d * B + b) * hs + k] = a.h0[(d * B + b) * Hout + k];
  }
  if (lstm && !c_direct) {
    c.fill_zero();
    for (index_t d = 0; d < D; ++d)
      for (index_t b = 0; b < B; ++b)
        for (index_t u = 0; u < H; ++u) c.data()[(d * B + b) * Hp + u] = a.c0[(d * B + b) * H + u];
  }

  const double step_work = double(B) * double(G * Hp) * double(Hout);
  // The sweep direction alternates over the layer's steps of all calls (for_each_block_tile).
  const std::uint64_t first_step = L.forward_steps.fetch_add(std::uint64_t(steps), std::memory_order_relaxed);
  for_each_direction_team(a.threads, D, blocks, steps, step_work, [&](index_t d, TeamSeat seat) {
    const index_t block_begin = seat.share_begin(blocks), block_end = seat.share_end(blocks);
    const index_t p_begin = seat.share_begin(P), p_end = seat.share_end(P);
    StepContext<T> s;
    s.layer = &L;
    s.batch = B;
    s.hs = hs;
    s.lengths = a.lengths;
    s.x_bias = L.x_bias.data() + d * G * Hp;
    s.hn_bias = L.hn_bias.data() + d * Hp;
    s.panels = L.w_hh_panels.data() + d * blocks * Hout * G * U;
    s.r = P > 0 ? r.data() + d * B * Hp : nullptr;
    s.y_stride = D * Hout;
    s.tape = tape;
    s.direction = d;
    s.progress = P == 0 ? seat.progress : nullptr;  // the seat has none for one step or one thread
    s.seat = &seat;
    s.block_begin = block_begin;
    s.block_end = block_end;
    const bool project_in_step = project_in_teams && steps == 1;
    s.x = project_in_step ? a.x : nullptr;
    if (project_in_teams && !project_in_step)
      project_unit_blocks(L, a, d, block_begin, block_end, first_step % 2 == 1, x_proj);
    for (index_t step = 0; step < steps; ++step) {
      s.t = d == 0 ? step : steps - 1 - step;
      s.x_proj = x_proj + s.t * B * D * G * Hp;
      s.next_x_proj = step + 1 < steps ? x_proj + (d == 0 ? s.t + 1 : s.t - 1) * B * D * G * Hp : nullptr;
      const bool first = step == 0, last = step == steps - 1;
      s.h_cur = h_direct && first ? a.h0 + d * B * Hout : h.data() + (2 * d + step % 2) * B * hs;
      s.h_next = h_direct && last ? a.h_n + d * B * Hout : h.data() + (2 * d + (step + 1) % 2) * B * hs;
      if (lstm) {
        s.c_prev = c_direct && first ? a.c0 + d * B * H : c.data() + d * B * Hp;
        s.c_next = c_direct && last ? a.c_n + d * B * H : c.data() + d * B * Hp;
      }
      s.step = step;
      s.y = a.y + s.t * B * D * Hout + d * Hout;
      s.tape_row0 = s.t * B;
      s.backwards = (first_step + std::uint64_t(step)) % 2 == 1;
      fused_step(s);
      if (P > 0) {
        seat.barrier->wait();
        project_step(s, p_begin, p_end);
      }
      if (s.progress != nullptr) s.progress->publish(seat.member, step);
      else seat.barrier->wait();
    }
  });

  if (!h_direct)
    for (index_t d = 0; d < D; ++d) {
      const T* h_final = h.data() + (2 * d + steps % 2) * B * hs;
      for (index_t b = 0; b < B; ++b)
        for (index_t k = 0; k < Hout; ++k) a.h_n[(d * B + b) * Hout + k] = h_final[b * hs + k];
    }
  if (lstm && !c_direct)
    for (index_t d = 0; d < D; ++d)
      for (index_t b = 0; b < B; ++b)
        for (index_t u = 0; u < H; ++u) a.c_n[(d * B + b) * H + u] = c.data()[(d * B + b) * Hp + u];
}

}  // namespace pyrnn::PYRNN_ISA
