// Forward pass of one layer, all directions, over the whole sequence (per ISA).
// 1. Input projection of every step and both directions at once: one product
//    (T*B, I) x (I, D*G*H), biases folded in.
// 2. The recurrence, the only sequential part: per step h W_hh^T, then the cell maths row by row.
//    With lengths, a row at t >= length keeps its state and writes zeros to y; processing the
//    reverse direction from t = T-1 down therefore starts each sequence at its own last step.
// With a tape, each step also records what BPTT needs (sequence/tape.h).
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

inline bool step_is_valid(const std::int64_t* lengths, index_t b, index_t t) {
  return lengths == nullptr || t < lengths[b];
}

template <typename T>
void run_direction_forward(const PackedLayer<T>& layer, const ForwardArgs<T>& a, const T* x_proj, index_t d,
                           LayerTape<T>* tape) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, H = s.hidden_size, Hout = s.out_size(), P = s.proj_size, GH = s.gate_rows();
  const index_t DGH = D * GH, B = a.batch, steps = a.steps;
  const T* w_hh_t = layer.w_hh_panels.data() + d * Hout * GH;
  const T* b_hn = (s.cell == Cell::gru && s.has_bias) ? layer.hidden_bias.data() + d * H : nullptr;

  AlignedBuffer<T> h(B * Hout), c(s.has_cell_state() ? B * H : 0), pre_h(B * GH);
  AlignedBuffer<T> r(P > 0 ? B * H : 0), h_proj(P > 0 ? B * P : 0);
  copy_row(B * Hout, a.h0 + d * B * Hout, h.data());
  if (s.has_cell_state()) copy_row(B * H, a.c0 + d * B * H, c.data());

  for (index_t step = 0; step < steps; ++step) {
    const index_t t = d == 0 ? step : steps - 1 - step;
    gemm(false, B, GH, Hout, h.data(), Hout, w_hh_t, GH, T(0), pre_h.data(), GH, a.threads);
    for (index_t b = 0; b < B; ++b) {
      const index_t row = t * B + b;
      T* hb = h.data() + b * Hout;
      T* y_row = a.y + row * D * Hout + d * Hout;
      if (tape != nullptr) {
        copy_row(Hout, hb, tape->h_prev.data() + row * D * Hout + d * Hout);
        if (s.has_cell_state()) copy_row(H, c.data() + b * H, tape->c_prev.data() + row * D * H + d * H);
      }
      if (!step_is_valid(a.lengths, b, t)) {
        zero_row(Hout, y_row);
        if (P > 0) zero_row(H, r.data() + b * H);
        continue;
      }
      const T* px = x_proj + row * DGH + d * GH;
      const T* ph = pre_h.data() + b * GH;
      T* gates_tape = tape != nullptr ? tape->gates.data() + row * DGH + d * GH : nullptr;
      switch (s.cell) {
        case Cell::lstm: {
          T* r_out = P > 0 ? r.data() + b * H : hb;
          lstm_forward_row(H, px, ph, c.data() + b * H, r_out, gates_tape,
                           tape != nullptr ? tape->cell.data() + row * D * H + d * H : nullptr);
          if (tape != nullptr && P > 0) copy_row(H, r_out, tape->proj_in.data() + row * D * H + d * H);
          break;
        }
        case Cell::gru:
          gru_forward_row(H, px, ph, b_hn, hb, gates_tape,
                          tape != nullptr ? tape->hidden_lin.data() + row * D * H + d * H : nullptr);
          break;
        default:
          rnn_forward_row(s.cell == Cell::rnn_relu, H, px, ph, hb, gates_tape);
      }
    }
    if (P > 0) {
      gemm(false, B, P, H, r.data(), H, layer.w_hr_panels.data() + d * H * P, P, T(0), h_proj.data(), P,
           a.threads);
      for (index_t b = 0; b < B; ++b)
        if (step_is_valid(a.lengths, b, t)) copy_row(P, h_proj.data() + b * P, h.data() + b * Hout);
    }
    for (index_t b = 0; b < B; ++b)
      if (step_is_valid(a.lengths, b, t)) copy_row(Hout, h.data() + b * Hout, a.y + (t * B + b) * D * Hout + d * Hout);
  }
  copy_row(B * Hout, h.data(), a.h_n + d * B * Hout);
  if (s.has_cell_state()) copy_row(B * H, c.data(), a.c_n + d * B * H);
}

template <typename T>
void layer_forward(const PackedLayer<T>& layer, const ForwardArgs<T>& a, LayerTape<T>* tape) {
  const LayerSpec& s = layer.spec;
  const index_t rows = a.steps * a.batch, DGH = s.directions * s.gate_rows();
  AlignedBuffer<T> x_proj(checked_mul(rows, DGH));
  gemm(false, rows, DGH, s.input_size, a.x, s.input_size, layer.w_ih_panels.data(), DGH, T(0), x_proj.data(),
       DGH, a.threads);
  if (s.has_bias) {
    const T* bias = layer.input_bias.data();
    for (index_t row = 0; row < rows; ++row) {
      T* dst = x_proj.data() + row * DGH;
      for (index_t j = 0; j < DGH; ++j) dst[j] += bias[j];
    }
  }
  if (tape != nullptr) {
    for (index_t b = 0; b < a.batch; ++b) tape->lengths.data()[b] = a.lengths != nullptr ? a.lengths[b] : a.steps;
  }
  for (index_t d = 0; d < s.directions; ++d) run_direction_forward(layer, a, x_proj.data(), d, tape);
}

}  // namespace pyrnn::PYRNN_ISA
