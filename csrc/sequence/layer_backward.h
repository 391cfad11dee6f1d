// Backward pass through time of one layer, all directions (per ISA).
// 1. The backward recurrence (recurrence_backward.h) writes the gate pre-activation gradients
//    d_pre of every step.
// 2. The weight gradients and dx as single products over all steps and both directions:
//    dW_ih = d_pre^T X, dW_hh = d_pre_h^T H_prev, dW_hr = dH^T R, dx = d_pre W_ih,
//    bias gradients as column sums of d_pre (b_ih) and d_pre_h (b_hh).
// d_pre_h differs from d_pre only for GRU (its n block is scaled by r); otherwise it is d_pre.
// With padding, dW_ih reads a copy of X whose padded rows are zero (valid_rows_of_x).
#pragma once

#include "gemm/gemm.h"
#include "sequence/recurrence_backward.h"

namespace pyrnn::PYRNN_ISA {

// The layer input for dW_ih = d_pre^T X. Inputs at padded steps (t >= length) never enter the
// maths, but they may hold anything, NaN and inf included, and 0 * NaN is NaN even though d_pre
// is 0 there. So when a batch has padding, X is copied into `buffer` with those rows zeroed.
template <typename T>
const T* valid_rows_of_x(const LayerTape<T>& tape, const T* x, index_t I, AlignedBuffer<T>& buffer) {
  const index_t B = tape.batch, steps = tape.steps;
  const std::int64_t* lengths = tape.lengths.data();
  bool padded = false;
  for (index_t b = 0; b < B; ++b) padded = padded || lengths[b] < steps;
  if (!padded) return x;
  buffer = AlignedBuffer<T>(checked_mul(steps * B, I));
  for (index_t t = 0; t < steps; ++t)
    for (index_t b = 0; b < B; ++b) {
      T* dst = buffer.data() + (t * B + b) * I;
      const T* src = x + (t * B + b) * I;
      const bool valid = t < lengths[b];
      for (index_t i = 0; i < I; ++i) dst[i] = valid ? src[i] : T(0);
    }
  return buffer.data();
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
  recurrence_backward(layer, tape, a, ws);

  const T* d_pre = ws.d_pre.data();
  const T* d_pre_h = gru ? ws.d_pre_h.data() : d_pre;
  AlignedBuffer<T> x_valid;
  gemm(true, DGH, I, rows, d_pre, DGH, valid_rows_of_x(tape, a.x, I, x_valid), I, T(0), a.dw_ih, I, a.threads);
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
