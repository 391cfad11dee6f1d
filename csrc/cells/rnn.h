// Elman RNN maths on one vector of hidden units (per ISA): h' = act(pre), act = tanh or relu.
// Both derivatives are functions of h', which is all BPTT needs.
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
inline Lanes<T> rnn_forward(bool use_relu, Lanes<T> pre) {
  return use_relu ? relu_lanes<T>(pre) : tanh_lanes<T>(pre);
}

// The gradient of the pre-activation from dh and h'.
template <typename T>
inline Lanes<T> rnn_backward(bool use_relu, Lanes<T> h_next, Lanes<T> dh) {
  if (use_relu) return select(h_next > Lanes<T>::zero(), dh, Lanes<T>::zero());
  return dh * (broadcast<T>(1) - h_next * h_next);
}

}  // namespace pyrnn::PYRNN_ISA
