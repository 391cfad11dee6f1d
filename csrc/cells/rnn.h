// Elman RNN maths for one batch row of one direction (per ISA): h' = act(x-projection + W_hh h),
// act = tanh or relu. Tape: h' itself (both derivatives are functions of it).
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void rnn_forward_row(bool use_relu, index_t H, const T* pre_x, const T* pre_h, T* h, T* gates_tape) {
  for (index_t j = 0; j < H; ++j) {
    const T pre = pre_x[j] + pre_h[j];
    h[j] = use_relu ? relu(pre) : tanh_(pre);
    if (gates_tape != nullptr) gates_tape[j] = h[j];
  }
}

// dh: gradient w.r.t. h'; d_pre: w.r.t. the pre-activation.
template <typename T>
void rnn_backward_row(bool use_relu, index_t H, const T* h_next, const T* dh, T* d_pre) {
  for (index_t j = 0; j < H; ++j)
    d_pre[j] = use_relu ? (h_next[j] > T(0) ? dh[j] : T(0)) : dh[j] * (T(1) - h_next[j] * h_next[j]);
}

}  // namespace pyrnn::PYRNN_ISA
