// Backward pass through time of one layer, all directions (per ISA).
// 1. The backward recurrence (recurrence_backward.h) writes the gate pre-activation gradients
//    d_pre of every step.
// 2. The weight gradients and dx as single products over all steps and both directions:
//    dW_ih = d_pre^T X, dW_hh = d_pre_h^T H_prev, dW_hr = dH^T R, dx = d_pre W_ih,
//    bias gradients as column sums of d_pre (b_ih) and d_pre_h (b_hh).
// d_pre_h differs from d_pre only for GRU (its n block is scaled by r); otherwise it is d_pre.
#pragma once

#include "gemm/gemm.h"
#include "sequence/recurrence_backward.h"

namespace pyrnn::PYRNN_ISA {

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
