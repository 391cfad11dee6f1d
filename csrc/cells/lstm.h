// LSTM gate maths on one vector of hidden units (per ISA). Gate order i, f, g, o.
//   forward:  i, f, o = sigmoid(pre), g = tanh(pre); c' = f*c + i*g; r = o*tanh(c')
//             (r is h' without projection, the input of W_hr with it)
//   backward: from dr (w.r.t. r) and dc (w.r.t. c', from the later step), the gradients of the
//             four pre-activations and of c. Needs i, f, g, o, tanh(c') and c: the tape keeps
//             tanh(c') rather than c', so BPTT evaluates no transcendental function.
#pragma once

#include "math/activations.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
struct LstmStep {
  Lanes<T> i, f, g, o, c, tanh_c, r;
};

// The forward in two stages, so that a step's tile can take all its vectors through each stage
// before the next (sequence/recurrence.h): the gates (lstm_gates), then the state (lstm_state).
// One vector's tanh(c') waits for its gates' activations, two activation latencies in a row;
// the vectors of a tile are independent, and their chains overlap.
template <typename T>
inline void lstm_gates(const Lanes<T>* pre, LstmStep<T>& s) {
  s.i = sigmoid_lanes<T>(pre[0]);
  s.f = sigmoid_lanes<T>(pre[1]);
  s.g = tanh_lanes<T>(pre[2]);
  s.o = sigmoid_lanes<T>(pre[3]);
}

template <typename T>
inline void lstm_state(Lanes<T> c_prev, LstmStep<T>& s) {
  s.c = fma(s.f, c_prev, s.i * s.g);
  s.tanh_c = tanh_lanes<T>(s.c);
  s.r = s.o * s.tanh_c;
}

// d_pre[0..3]: gradients of the pre-activations; returns the gradient w.r.t. c (the previous
// step's cell state).
template <typename T>
inline Lanes<T> lstm_backward(const Lanes<T>* gates, Lanes<T> tanh_c, Lanes<T> c_prev, Lanes<T> dr, Lanes<T> dc,
                              Lanes<T>* d_pre) {
  const Lanes<T> one = broadcast<T>(1);
  const Lanes<T> i = gates[0], f = gates[1], g = gates[2], o = gates[3];
  const Lanes<T> dc_total = dc + dr * o * (one - tanh_c * tanh_c);
  d_pre[0] = dc_total * g * i * (one - i);
  d_pre[1] = dc_total * c_prev * f * (one - f);
  d_pre[2] = dc_total * i * (one - g * g);
  d_pre[3] = dr * tanh_c * o * (one - o);
  return dc_total * f;
}

}  // namespace pyrnn::PYRNN_ISA
