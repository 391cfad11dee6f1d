// What a training forward keeps for BPTT, one layer, all directions. Every array is indexed
// by time step t (not by processing order) and direction-interleaved on the last axis, so the
// weight gradients are single matrix products over all steps:
//   gates       (T, B, D*G*H)  post-activation gates: LSTM i,f,g,o; GRU r,z,n; RNN h'
//   h_prev      (T, B, D*Hout) the state each step read (h0 or the neighbouring step's)
//   c_prev      (T, B, D*H)    LSTM: cell state each step read
//   tanh_cell   (T, B, D*H)    LSTM: tanh of the cell state each step wrote
//   proj_in     (T, B, D*H)    LSTM with projection: o*tanh(c), the input of W_hr
//   hidden_lin  (T, B, D*H)    GRU: W_hn h + b_hn
//   lengths     (B)            the sequence lengths the forward used (T for all if none given)
// At padded steps (t >= length) h_prev and proj_in hold zeros and BPTT reads nothing else: it
// reads those rows only in the weight-gradient products, where d_pre is 0, and 0 * NaN is NaN,
// so a state no valid step used (h0 of an empty sequence, which may be anything) must not enter.
// Bytes: sizeof(T) * T*B*D * (G*H + Hout + [LSTM] 2H + [proj] H + [GRU] H) + 8*B.
#pragma once

#include <cstdint>

#include "common/aligned_buffer.h"
#include "common/layer_spec.h"

namespace pyrnn {

template <typename T>
struct LayerTape {
  LayerTape(const LayerSpec& spec, index_t steps_, index_t batch_)
      : steps(steps_), batch(batch_), lengths(batch_) {
    const index_t rows = checked_mul(checked_mul(steps, batch), spec.directions);
    gates = AlignedBuffer<T>(checked_mul(rows, spec.gate_rows()));
    h_prev = AlignedBuffer<T>(checked_mul(rows, spec.out_size()));
    if (spec.cell == Cell::lstm) {
      c_prev = AlignedBuffer<T>(checked_mul(rows, spec.hidden_size));
      tanh_cell = AlignedBuffer<T>(checked_mul(rows, spec.hidden_size));
      if (spec.proj_size > 0) proj_in = AlignedBuffer<T>(checked_mul(rows, spec.hidden_size));
    }
    if (spec.cell == Cell::gru) hidden_lin = AlignedBuffer<T>(checked_mul(rows, spec.hidden_size));
  }

  index_t nbytes() const {
    return static_cast<index_t>(sizeof(T)) *
               (gates.size() + h_prev.size() + c_prev.size() + tanh_cell.size() + proj_in.size() +
                hidden_lin.size()) +
           static_cast<index_t>(sizeof(std::int64_t)) * lengths.size();
  }

  index_t steps;
  index_t batch;
  AlignedBuffer<T> gates;
  AlignedBuffer<T> h_prev;
  AlignedBuffer<T> c_prev;
  AlignedBuffer<T> tanh_cell;
  AlignedBuffer<T> proj_in;
  AlignedBuffer<T> hidden_lin;
  AlignedBuffer<std::int64_t> lengths;
};

}  // namespace pyrnn
