// LSTM gate maths for one batch row of one direction (per ISA). Gate order i, f, g, o.
//   pre = x-projection (biases folded) + W_hh h, (4H)
//   i, f, o = sigmoid(pre), g = tanh(pre); c' = f*c + i*g; r = o*tanh(c')
// r is h' without projection, the input of W_hr with it.
// Tape (training only): the activated gates (4H) and c' (H).
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void lstm_forward_row(index_t H, const T* pre_x, const T* pre_h, T* c, T* r, T* gates_tape, T* cell_tape) {
  for (index_t j = 0; j < H; ++j) {
    const T i = sigmoid(pre_x[j] + pre_h[j]);
    const T f = sigmoid(pre_x[H + j] + pre_h[H + j]);
    const T g = tanh_(pre_x[2 * H + j] + pre_h[2 * H + j]);
    const T o = sigmoid(pre_x[3 * H + j] + pre_h[3 * H + j]);
    c[j] = f * c[j] + i * g;
    r[j] = o * tanh_(c[j]);
    if (gates_tape != nullptr) {
      gates_tape[j] = i;
      gates_tape[H + j] = f;
      gates_tape[2 * H + j] = g;
      gates_tape[3 * H + j] = o;
      cell_tape[j] = c[j];
    }
  }
}

// dr: gradient w.r.t. r; dc: in, gradient w.r.t. c' from the later step; out, w.r.t. c.
// d_pre: gradient w.r.t. the pre-activations (4H).
template <typename T>
void lstm_backward_row(index_t H, const T* gates, const T* cell, const T* c_prev, const T* dr, T* dc, T* d_pre) {
  for (index_t j = 0; j < H; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T tc = tanh_(cell[j]);
    const T dc_total = dc[j] + dr[j] * o * (T(1) - tc * tc);
    d_pre[j] = dc_total * g * i * (T(1) - i);
    d_pre[H + j] = dc_total * c_prev[j] * f * (T(1) - f);
    d_pre[2 * H + j] = dc_total * i * (T(1) - g * g);
    d_pre[3 * H + j] = dr[j] * tc * o * (T(1) - o);
    dc[j] = dc_total * f;
  }
}

}  // namespace pyrnn::PYRNN_ISA
