// Forward pass of one layer, all directions, over the whole sequence (per ISA).
// 1. Input projection of every step and both directions at once: one product
//    (T*B, I) x (I, D*G*Hp) into the padded gate layout of the recurrence (biases are added there).
//    With few rows (a streaming step, a short sequence of a small batch), or a product too small
//    for gemm() to split while the recurrence has threads to split it (a long sequence of a
//    small batch with a small input, e.g. I = 1), the threads of the recurrence project their
//    own units' columns instead (recurrence.h): the product alone would run on one thread there,
//    and the columns land in the cache of the thread that reads them. Two threads, T = 100, B = 1,
//    Zen 4: LSTM(1 and 2, 128) 4-8% faster, GRU(1, 128) 6-9%, RNN(1, 256) 2-4%, and 8-18% when
//    the host places the two vCPUs far apart; but with I = 64, where gemm() splits the product,
//    3-5% slower.
// 2. The fused recurrence (recurrence.h), the only sequential part.
// With a tape, the recurrence also records what BPTT needs (sequence/tape.h).
#pragma once

#include "gemm/gemm.h"
#include "sequence/recurrence.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void layer_forward(const PackedLayer<T>& layer, const ForwardArgs<T>& a, LayerTape<T>* tape) {
  const LayerSpec& s = layer.spec;
  const index_t rows = a.steps * a.batch, columns = s.directions * s.gates() * layer.padded_hidden;
  ScratchBuffer<T> x_proj(checked_mul(rows, columns));
  const bool project_in_teams = rows <= GemmConfig<T>::stream_max_m ||
                                (a.threads > 1 && !gemm_runs_parallel(rows, columns, s.input_size, a.threads));
  if (!project_in_teams)
    gemm(false, rows, columns, s.input_size, a.x, s.input_size, layer.w_ih_panels.data(), columns, T(0),
         x_proj.data(), columns, a.threads);
  if (tape != nullptr)
    for (index_t b = 0; b < a.batch; ++b) tape->lengths.data()[b] = a.lengths != nullptr ? a.lengths[b] : a.steps;
  recurrence_forward(layer, a, x_proj.data(), project_in_teams, tape);
}

}  // namespace pyrnn::PYRNN_ISA
