// Backward pass through time of one layer, all directions (per ISA).
// 1. The reverse recurrence, per direction in the reverse of its processing order: add dy to the
//    carried dh, run the cell's backward row by row into d_pre (the gradient of the gate
//    pre-activations, kept for every step), then dh <- direct term + d_pre_h W_hh.
//    Rows at t >= length pass dh and dc through untouched and get d_pre = 0.
// 2. The weight gradients and dx as single products over all steps and both directions:
//    dW_ih = d_pre^T X, dW_hh = d_pre_h^T H_prev, dW_hr = dH^T R, dx = d_pre W_ih,
//    bias gradients as column sums of d_pre (b_ih) and d_pre_h (b_hh).
// d_pre_h differs from d_pre only for GRU (its n block is scaled by r); otherwise it is d_pre.
#pragma once

#include <cstring>

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/rnn.h"
#include "gemm/gemm.h"
#include "sequence/layer_args.h"
#include "sequence/packed_layer.h"
#include "sequence/tape.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void copy_row(index_t n, const T* src, T* dst) {
  if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<std::size_t>(n));
}

template <typename T>
void zero_row(index_t n, T* dst) {
  if (n > 0) std::memset(static_cast<void*>(dst), 0, sizeof(T) * static_cast<std::size_t>(n));
}

template <typename T>
struct BackwardWorkspace {
  AlignedBuffer<T> d_pre;    // (T*B, D*G*H)
  AlignedBuffer<T> d_pre_h;  // (T*B, D*G*H), GRU only
  AlignedBuffer<T> dh_proj;  // (T*B, D*P), the gradient w.r.t. each step's projected h
};

template <typename T>
void run_direction_backward(const PackedLayer<T>& layer, const LayerTape<T>& tape, const BackwardArgs<T>& a,
                            index_t d, BackwardWorkspace<T>& ws) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, H = s.hidden_size, Hout = s.out_size(), P = s.proj_size, GH = s.gate_rows();
  const index_t DGH = D * GH, B = tape.batch, steps = tape.steps;
  const std::int64_t* lengths = tape.lengths.data();
  const bool gru = s.cell == Cell::gru;
  T* d_pre_h_all = gru ? ws.d_pre_h.data() : ws.d_pre.data();

  AlignedBuffer<T> dh(B * Hout), dc(s.has_cell_state() ? B * H : 0), dr(P > 0 ? B * H : 0);
  if (a.dh_n != nullptr) copy_row(B * Hout, a.dh_n + d * B * Hout, dh.data());
  else dh.fill_zero();
  if (s.has_cell_state()) {
    if (a.dc_n != nullptr) copy_row(B * H, a.dc_n + d * B * H, dc.data());
    else dc.fill_zero();
  }

  for (index_t step = steps - 1; step >= 0; --step) {
    const index_t t = d == 0 ? step : steps - 1 - step;
    for (index_t b = 0; b < B; ++b) {
      if (!(t < lengths[b])) continue;
      const T* dy_row = a.dy + (t * B + b) * D * Hout + d * Hout;
      T* dh_row = dh.data() + b * Hout;
      for (index_t j = 0; j < Hout; ++j) dh_row[j] += dy_row[j];
    }
    if (P > 0) {
      for (index_t b = 0; b < B; ++b) {
        T* dst = ws.dh_proj.data() + (t * B + b) * D * P + d * P;
        if (t < lengths[b]) copy_row(P, dh.data() + b * P, dst);
        else zero_row(P, dst);
      }
      gemm(false, B, H, P, dh.data(), P, layer.w_hr.data() + d * P * H, H, T(0), dr.data(), H, a.threads);
    }
    for (index_t b = 0; b < B; ++b) {
      const index_t row = t * B + b;
      T* d_pre = ws.d_pre.data() + row * DGH + d * GH;
      T* d_pre_h = d_pre_h_all + row * DGH + d * GH;
      if (!(t < lengths[b])) {
        zero_row(GH, d_pre);
        if (gru) zero_row(GH, d_pre_h);
        continue;
      }
      const T* gates = tape.gates.data() + row * DGH + d * GH;
      T* dh_row = dh.data() + b * Hout;
      switch (s.cell) {
        case Cell::lstm: {
          const index_t offset = row * D * H + d * H;
          const T* dr_row = P > 0 ? dr.data() + b * H : dh_row;
          lstm_backward_row(H, gates, tape.cell.data() + offset, tape.c_prev.data() + offset, dr_row,
                            dc.data() + b * H, d_pre);
          zero_row(Hout, dh_row);
          break;
        }
        case Cell::gru:
          gru_backward_row(H, gates, tape.hidden_lin.data() + row * D * H + d * H,
                           tape.h_prev.data() + row * D * Hout + d * Hout, dh_row, d_pre, d_pre_h);
          break;
        default:
          rnn_backward_row(s.cell == Cell::rnn_relu, H, gates, dh_row, d_pre);
          zero_row(Hout, dh_row);
      }
    }
    // Rows past their length have d_pre_h = 0, so this leaves their dh as it was.
    gemm(false, B, Hout, GH, d_pre_h_all + t * B * DGH + d * GH, DGH, layer.w_hh.data() + d * GH * Hout, Hout,
         T(1), dh.data(), Hout, a.threads);
  }
  copy_row(B * Hout, dh.data(), a.dh0 + d * B * Hout);
  if (s.has_cell_state()) copy_row(B * H, dc.data(), a.dc0 + d * B * H);
}

template <typename T>
void layer_backward(const PackedLayer<T>& layer, const LayerTape<T>& tape, const BackwardArgs<T>& a) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, H = s.hidden_size, Hout = s.out_size(), P = s.proj_size, GH = s.gate_rows();
  const index_t I = s.input_size, DGH = D * GH, rows = tape.steps * tape.batch;
  const bool gru = s.cell == Cell::gru;

  BackwardWorkspace<T> ws;
  ws.d_pre = AlignedBuffer<T>(checked_mul(rows, DGH));
  if (gru) ws.d_pre_h = AlignedBuffer<T>(checked_mul(rows, DGH));
  if (P > 0) ws.dh_proj = AlignedBuffer<T>(checked_mul(rows, D * P));
  for (index_t d = 0; d < D; ++d) run_direction_backward(layer, tape, a, d, ws);

  const T* d_pre = ws.d_pre.data();
  const T* d_pre_h = gru ? ws.d_pre_h.data() : d_pre;
  gemm(true, DGH, I, rows, d_pre, DGH, a.x, I, T(0), a.dw_ih, I, a.threads);
  for (index_t d = 0; d < D; ++d) {
    gemm(true, GH, Hout, rows, d_pre_h + d * GH, DGH, tape.h_prev.data() + d * Hout, D * Hout, T(0),
         a.dw_hh + d * GH * Hout, Hout, a.threads);
    if (P > 0)
      gemm(true, P, H, rows, ws.dh_proj.data() + d * P, D * P, tape.proj_in.data() + d * H, D * H, T(0),
           a.dw_hr + d * P * H, H, a.threads);
  }
  if (s.has_bias) {
    column_sums(rows, DGH, d_pre, DGH, a.db_ih);
    column_sums(rows, DGH, d_pre_h, DGH, a.db_hh);
  }
  gemm(false, rows, I, DGH, d_pre, DGH, layer.w_ih.data(), I, T(0), a.dx, I, a.threads);
}

}  // namespace pyrnn::PYRNN_ISA
