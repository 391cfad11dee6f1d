// GRU gate maths for one batch row of one direction (per ISA). Gate order r, z, n.
//   r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z)        (x_*: projection with folded biases)
//   hidden_lin = W_hn h + b_hn;  n = tanh(x_n + r * hidden_lin);  h' = (1 - z) * n + z * h
// (PyTorch's GRU; ONNX linear_before_reset=1.) Tape: r, z, n (3H) and hidden_lin (H).
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

// h: in, the previous state; out, the new one. b_hn may be nullptr (no bias).
template <typename T>
void gru_forward_row(index_t H, const T* pre_x, const T* pre_h, const T* b_hn, T* h, T* gates_tape,
                     T* hidden_lin_tape) {
  for (index_t j = 0; j < H; ++j) {
    const T r = sigmoid(pre_x[j] + pre_h[j]);
    const T z = sigmoid(pre_x[H + j] + pre_h[H + j]);
    const T hidden_lin = pre_h[2 * H + j] + (b_hn != nullptr ? b_hn[j] : T(0));
    const T n = tanh_(pre_x[2 * H + j] + r * hidden_lin);
    const T h_prev = h[j];
    h[j] = (T(1) - z) * n + z * h_prev;
    if (gates_tape != nullptr) {
      gates_tape[j] = r;
      gates_tape[H + j] = z;
      gates_tape[2 * H + j] = n;
      hidden_lin_tape[j] = hidden_lin;
    }
  }
}

// dh: in, gradient w.r.t. h'; out, the part of the gradient w.r.t. h that bypasses W_hh (z * dh).
// d_pre_x: gradient w.r.t. the input-side pre-activations (3H);
// d_pre_h: w.r.t. the hidden-side ones, W_hh h (3H): equal but for n, which is scaled by r.
template <typename T>
void gru_backward_row(index_t H, const T* gates, const T* hidden_lin, const T* h_prev, T* dh, T* d_pre_x,
                      T* d_pre_h) {
  for (index_t j = 0; j < H; ++j) {
    const T r = gates[j], z = gates[H + j], n = gates[2 * H + j];
    const T dn_pre = dh[j] * (T(1) - z) * (T(1) - n * n);
    const T dz_pre = dh[j] * (h_prev[j] - n) * z * (T(1) - z);
    const T dr_pre = dn_pre * hidden_lin[j] * r * (T(1) - r);
    d_pre_x[j] = dr_pre;
    d_pre_x[H + j] = dz_pre;
    d_pre_x[2 * H + j] = dn_pre;
    d_pre_h[j] = dr_pre;
    d_pre_h[H + j] = dz_pre;
    d_pre_h[2 * H + j] = dn_pre * r;
    dh[j] = dh[j] * z;
  }
}

}  // namespace pyrnn::PYRNN_ISA
