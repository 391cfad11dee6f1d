// GRU gate maths on one vector of hidden units (per ISA). Gate order r, z, n.
//   r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z)         (x_*: projection with folded biases)
//   hidden_lin = W_hn h + b_hn;  n = tanh(x_n + r * hidden_lin);  h' = (1 - z) * n + z * h
// (PyTorch's GRU; ONNX linear_before_reset=1.) BPTT needs r, z, n, hidden_lin and h.
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct GruStep {
  Lanes<T> r, z, n, h;
};

// The forward in two stages, as lstm.h's: the r and z gates (gru_gates), then n and h'
// (gru_state). pre: r and z pre-activations and hidden_lin; x_n: the n gate's input side.
template <typename T>
inline void gru_gates(const Lanes<T>* pre, GruStep<T>& s) {
  s.r = sigmoid_lanes<T>(pre[0]);
  s.z = sigmoid_lanes<T>(pre[1]);
}

template <typename T>
inline void gru_state(const Lanes<T>* pre, Lanes<T> x_n, Lanes<T> h_prev, GruStep<T>& s) {
  s.n = tanh_lanes<T>(fma(s.r, pre[2], x_n));
  s.h = fma(s.z, h_prev, (broadcast<T>(1) - s.z) * s.n);
}

// d_pre_x: gradients of the input-side pre-activations; d_pre_h: of the hidden-side ones
// (W_hh h + b_hh): equal but for n, scaled by r. Returns the part of the gradient w.r.t. h that
// bypasses W_hh (z * dh).
template <typename T>
inline Lanes<T> gru_backward(const Lanes<T>* gates, Lanes<T> hidden_lin, Lanes<T> h_prev, Lanes<T> dh,
                             Lanes<T>* d_pre_x, Lanes<T>* d_pre_h) {
  const Lanes<T> one = broadcast<T>(1);
  const Lanes<T> r = gates[0], z = gates[1], n = gates[2];
  const Lanes<T> dn_pre = dh * (one - z) * (one - n * n);
  const Lanes<T> dz_pre = dh * (h_prev - n) * z * (one - z);
  const Lanes<T> dr_pre = dn_pre * hidden_lin * r * (one - r);
  d_pre_x[0] = d_pre_h[0] = dr_pre;
  d_pre_x[1] = d_pre_h[1] = dz_pre;
  d_pre_x[2] = dn_pre;
  d_pre_h[2] = dn_pre * r;
  return dh * z;
}

}  // namespace pyrnn::PYRNN_ISA
