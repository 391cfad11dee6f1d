// The backward recurrence of one layer (per ISA): BPTT's only sequential part, fused and
// weight-stationary like the forward (recurrence.h), one direction per thread group.
//
// Per step, in the reverse of the direction's processing order, without projection:
//   A. each thread, for its own unit blocks and every row: dh = carried dh + dy[t]; the cell's
//      backward (cells/) gives d_pre (the gate pre-activation gradients, kept for every step:
//      the weight gradients are products over all steps afterwards) and the direct term of dh
//      that bypasses W_hh (GRU: z*dh; 0 otherwise); LSTM's dc stays in the thread's own units.
//   barrier
//   B. each thread, for its own unit blocks: carried dh = direct + d_pre_h W_hh (all G*H rows of
//      W_hh, its own columns). The next step's A reads only the thread's own units: no barrier.
// With a projection (LSTM, h' = W_hr r): A0 forms dh for the thread's slice of the P outputs,
// barrier, A1 maps it through W_hr to dr for the thread's units and runs the cell's backward,
// barrier, B forms the carried dh for its P slice. Rows at t >= length pass dh and dc through
// (d_pre = 0, direct = dh). Every element is one chain in fixed order: bitwise the same for any
// thread count and batch composition.
#pragma once

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/rnn.h"
#include "sequence/direction_teams.h"
#include "sequence/layer_args.h"
#include "sequence/packed_layer.h"
#include "sequence/row_tiles.h"
#include "sequence/step_product.h"
#include "sequence/tape.h"

namespace pyrnn::PYRNN_ISA {

// What the backward recurrence writes for the products that follow it.
template <typename T>
struct BackwardWorkspace {
  AlignedBuffer<T> d_pre;    // (T*B, D*G*H): gradients of the input-side pre-activations
  AlignedBuffer<T> d_pre_h;  // (T*B, D*G*H): hidden-side, GRU only (otherwise d_pre is used)
  AlignedBuffer<T> dh_proj;  // (T*B, D*P): gradient w.r.t. each step's projected h
};

template <typename T>
struct BackStepContext {
  const PackedLayer<T>* layer;
  const LayerTape<T>* tape;
  index_t t, batch, direction;
  const T* dy;        // (B, D*Hout) at step t
  T* d_pre;           // workspace rows of step t (ld D*G*H)
  T* d_pre_h;         // likewise; == d_pre except for GRU
  T* dh;              // (B, hs) carried gradient w.r.t. h, hs = Hp or P
  T* dc;              // (B, Hp) LSTM
  T* direct;          // (B, hs): the part of the next carried dh that bypasses W_hh
  T* dh_total;        // (B, P): with projection, dh at this step
  T* dh_proj;         // workspace rows of step t (ld D*P), with projection
};

template <typename T>
inline bool back_row_valid(const BackStepContext<T>& s, index_t b) {
  return s.t < s.tape->lengths.data()[b];
}

// Phase A (A1 with projection) for one row and unit block; dh: the gradient w.r.t. the cell's
// output for these units (carried_dh, or dr with a projection).
template <typename T>
void cell_backward_block(const BackStepContext<T>& s, index_t b, index_t u0, Lanes<T> dh) {
  const PackedLayer<T>& L = *s.layer;
  const LayerSpec& spec = L.spec;
  const index_t H = spec.hidden_size, Hp = L.padded_hidden, P = spec.proj_size, D = spec.directions;
  const index_t G = spec.gates(), d = s.direction, U = kUnitBlock<T>;
  const index_t n = H - u0 < U ? H - u0 : U;
  const index_t row = s.t * s.batch + b;
  T* d_pre = s.d_pre + b * D * G * H + d * G * H + u0;
  T* d_pre_h = s.d_pre_h + b * D * G * H + d * G * H + u0;
  const bool valid = back_row_valid(s, b);
  if (!valid) {
    for (index_t g = 0; g < G; ++g) {
      store_first_lanes(d_pre + g * H, Lanes<T>{}, n);
      if (d_pre_h != d_pre) store_first_lanes(d_pre_h + g * H, Lanes<T>{}, n);
    }
    if (P == 0) store_lanes(s.direct + b * Hp + u0, dh);
    return;
  }
  const T* gate_row = s.tape->gates.data() + row * D * G * H + d * G * H + u0;
  Lanes<T> gates[4], grad[4], grad_h[3];
  for (index_t g = 0; g < G; ++g) gates[g] = load_first_lanes(gate_row + g * H, n);
  const index_t offset = row * D * H + d * H + u0;
  Lanes<T> direct{};
  switch (spec.cell) {
    case Cell::lstm: {
      T* dc = s.dc + b * Hp + u0;
      const Lanes<T> dc_prev = lstm_backward<T>(gates, load_first_lanes(s.tape->tanh_cell.data() + offset, n),
                                                load_first_lanes(s.tape->c_prev.data() + offset, n), dh,
                                                load_lanes(dc), grad);
      store_lanes(dc, dc_prev);
      break;
    }
    case Cell::gru:
      direct = gru_backward<T>(gates, load_first_lanes(s.tape->hidden_lin.data() + offset, n),
                               load_first_lanes(s.tape->h_prev.data() + offset, n), dh, grad, grad_h);
      for (index_t g = 0; g < 3; ++g) store_first_lanes(d_pre_h + g * H, grad_h[g], n);
      break;
    default:
      grad[0] = rnn_backward<T>(spec.cell == Cell::rnn_relu, gates[0], dh);
  }
  for (index_t g = 0; g < G; ++g) store_first_lanes(d_pre + g * H, grad[g], n);
  if (P == 0) store_lanes(s.direct + b * Hp + u0, direct);
}

// Without projection: the carried dh plus dy[t] for one row and unit block (past the row's
// length, the carried dh alone, which passes through).
template <typename T>
Lanes<T> carried_dh(const BackStepContext<T>& s, index_t b, index_t u0) {
  const LayerSpec& spec = s.layer->spec;
  const index_t H = spec.hidden_size, Hp = s.layer->padded_hidden, U = kUnitBlock<T>;
  const Lanes<T> dh = load_lanes(s.dh + b * Hp + u0);
  if (!back_row_valid(s, b)) return dh;
  return dh + load_first_lanes(s.dy + b * spec.directions * H + s.direction * H + u0, H - u0 < U ? H - u0 : U);
}

// Phase A (A1) for the unit blocks [block_begin, block_end), every row. With a projection, each
// block's dr = dh_total W_hr streams the block's panel of w_hr_backward (pack.h).
template <typename T>
void cell_backward_blocks(const BackStepContext<T>& s, index_t block_begin, index_t block_end) {
  const PackedLayer<T>& L = *s.layer;
  const index_t P = L.spec.proj_size, U = kUnitBlock<T>;
  for (index_t block = block_begin; block < block_end; ++block) {
    const index_t u0 = block * U;
    if (P == 0) {
      for (index_t b = 0; b < s.batch; ++b) cell_backward_block(s, b, u0, carried_dh(s, b, u0));
      continue;
    }
    const T* panel = L.w_hr_backward.data() + (s.direction * (L.padded_hidden / U) + block) * P * U;
    step_product(StepProductArgs<T>{s.batch, P, s.dh_total, P, panel, U}, 0, U,
                 [&](index_t b, index_t, Lanes<T> dr, index_t) { cell_backward_block(s, b, u0, dr); });
  }
}

// Phase B without projection: dh[b, block] = direct + d_pre_h[b] W_hh[:, block], kRows rows x
// kBlocks unit blocks per tile, streaming the blocks' panels of w_hh_backward (pack.h).
template <typename T, int kRows, int kBlocks>
void carry_tile(const BackStepContext<T>& s, index_t b0, index_t block0) {
  const PackedLayer<T>& L = *s.layer;
  const index_t Hp = L.padded_hidden, GH = L.spec.gate_rows(), ld = L.spec.directions * GH, U = kUnitBlock<T>;
  const T* w = L.w_hh_backward.data() + (s.direction * (Hp / U) + block0) * GH * U;
  const T* d_pre_h = s.d_pre_h + s.direction * GH;
  Lanes<T> acc[kRows][kBlocks];
  for (int r = 0; r < kRows; ++r)
    for (int jb = 0; jb < kBlocks; ++jb) acc[r][jb] = load_lanes(s.direct + (b0 + r) * Hp + (block0 + jb) * U);
  for (index_t j = 0; j < GH; ++j) {
    Lanes<T> wj[kBlocks];
    for (int jb = 0; jb < kBlocks; ++jb) wj[jb] = load_lanes(w + (jb * GH + j) * U);
    for (int r = 0; r < kRows; ++r) {
      const Lanes<T> g = broadcast(d_pre_h[(b0 + r) * ld + j]);
      for (int jb = 0; jb < kBlocks; ++jb) acc[r][jb] = fma(g, wj[jb], acc[r][jb]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int jb = 0; jb < kBlocks; ++jb) store_lanes(s.dh + (b0 + r) * Hp + (block0 + jb) * U, acc[r][jb]);
}

template <typename T, int kBlocks>
void carry_rows(const BackStepContext<T>& s, index_t block0) {
  constexpr int R = (kVectorBytes == 64 ? 24 : 12) / kBlocks;
  for_each_row_tile<R>(s.batch, [&](auto rows, index_t b0) { carry_tile<T, decltype(rows)::value, kBlocks>(s, b0, block0); });
}

template <typename T>
void carry_blocks(const BackStepContext<T>& s, index_t block_begin, index_t block_end) {
  index_t block = block_begin;
  for (; block + 4 <= block_end; block += 4) carry_rows<T, 4>(s, block);
  for (; block < block_end; ++block) carry_rows<T, 1>(s, block);
}

// With projection. A0: dh_total for outputs [p_begin, p_end) and the dh_proj workspace.
template <typename T>
void projected_dh(const BackStepContext<T>& s, index_t p_begin, index_t p_end) {
  const index_t P = s.layer->spec.proj_size, D = s.layer->spec.directions, d = s.direction;
  for (index_t b = 0; b < s.batch; ++b) {
    const bool valid = back_row_valid(s, b);
    for (index_t p = p_begin; p < p_end; ++p) {
      const T total = s.dh[b * P + p] + (valid ? s.dy[b * D * P + d * P + p] : T(0));
      s.dh_total[b * P + p] = total;
      s.dh_proj[b * D * P + d * P + p] = valid ? total : T(0);
    }
  }
}

// With projection. B: carried dh for outputs [p_begin, p_end) = d_pre W_hh (rows past their
// length keep dh_total, which is then the carried dh itself).
template <typename T>
void projected_carry(const BackStepContext<T>& s, index_t p_begin, index_t p_end) {
  const index_t P = s.layer->spec.proj_size, GH = s.layer->spec.gate_rows(), ld = s.layer->spec.directions * GH;
  const StepProductArgs<T> product{s.batch, GH, s.d_pre + s.direction * GH, ld,
                                   s.layer->w_hh.data() + s.direction * GH * P, P};
  step_product(product, p_begin, p_end, [&](index_t b, index_t p, Lanes<T> sum, index_t n) {
    store_first_lanes(s.dh + b * P + p, back_row_valid(s, b) ? sum : load_first_lanes(s.dh_total + b * P + p, n), n);
  });
}

template <typename T>
void recurrence_backward(const PackedLayer<T>& L, const LayerTape<T>& tape, const BackwardArgs<T>& a,
                         BackwardWorkspace<T>& ws) {
  const LayerSpec& spec = L.spec;
  const index_t D = spec.directions, H = spec.hidden_size, Hp = L.padded_hidden, P = spec.proj_size,
                Hout = spec.out_size(), GH = spec.gate_rows(), B = tape.batch, steps = tape.steps;
  const index_t U = L.unit_block, blocks = Hp / U, hs = P > 0 ? P : Hp;

  AlignedBuffer<T> dh(checked_mul(D * B, hs)), direct(checked_mul(D * B, hs)),
      dc(spec.has_cell_state() ? checked_mul(D * B, Hp) : 0), dh_total(P > 0 ? checked_mul(D * B, P) : 0);
  dh.fill_zero();
  direct.fill_zero();
  dc.fill_zero();
  for (index_t d = 0; d < D; ++d)
    for (index_t b = 0; b < B; ++b) {
      if (a.dh_n != nullptr)
        for (index_t k = 0; k < Hout; ++k) dh.data()[(d * B + b) * hs + k] = a.dh_n[(d * B + b) * Hout + k];
      if (a.dc_n != nullptr)
        for (index_t u = 0; u < H; ++u) dc.data()[(d * B + b) * Hp + u] = a.dc_n[(d * B + b) * H + u];
    }

  const double step_work = double(B) * double(GH) * double(Hout);
  T* d_pre_h_all = spec.cell == Cell::gru ? ws.d_pre_h.data() : ws.d_pre.data();
  for_each_direction_team(a.threads, D, blocks, steps, step_work, [&](index_t d, TeamSeat seat) {
    const index_t block_begin = seat.share_begin(blocks), block_end = seat.share_end(blocks);
    const index_t p_begin = seat.share_begin(P), p_end = seat.share_end(P);
    BackStepContext<T> s;
    s.layer = &L;
    s.tape = &tape;
    s.batch = B;
    s.direction = d;
    s.dh = dh.data() + d * B * hs;
    s.direct = direct.data() + d * B * hs;
    s.dc = spec.has_cell_state() ? dc.data() + d * B * Hp : nullptr;
    s.dh_total = P > 0 ? dh_total.data() + d * B * P : nullptr;
    for (index_t step = steps - 1; step >= 0; --step) {
      s.t = d == 0 ? step : steps - 1 - step;
      s.dy = a.dy + s.t * B * D * Hout;
      s.d_pre = ws.d_pre.data() + s.t * B * D * GH;
      s.d_pre_h = d_pre_h_all + s.t * B * D * GH;
      if (P > 0) {
        s.dh_proj = ws.dh_proj.data() + s.t * B * D * P;
        projected_dh(s, p_begin, p_end);
        seat.barrier->wait();
      }
      cell_backward_blocks(s, block_begin, block_end);
      seat.barrier->wait();
      if (P > 0) projected_carry(s, p_begin, p_end);
      else carry_blocks(s, block_begin, block_end);
    }
  });

  for (index_t d = 0; d < D; ++d)
    for (index_t b = 0; b < B; ++b) {
      for (index_t k = 0; k < Hout; ++k) a.dh0[(d * B + b) * Hout + k] = dh.data()[(d * B + b) * hs + k];
      if (spec.has_cell_state())
        for (index_t u = 0; u < H; ++u) a.dc0[(d * B + b) * H + u] = dc.data()[(d * B + b) * Hp + u];
    }
}

}  // namespace pyrnn::PYRNN_ISA
