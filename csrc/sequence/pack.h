// Packs a layer's weights for this ISA's kernels (per ISA). Runs once when weights are set.
//   w_ih_panels: W_ih^T with every gate block padded to Hp columns, the B operand of the
//                all-steps input projection, whose output columns then line up with the unit
//                blocks of the recurrence.
//   w_hh_panels: for each direction and unit block of U hidden units, for each k < Hout, the G
//                gate vectors W_hh[g*H + u][k], u in the block: the fused step kernel streams one
//                block's panel and finishes that block's gate maths in registers.
//   w_ih_unit_panels: W_ih in w_hh_panels' layout (k < I), for the projection of few rows, which
//                each thread computes for its own unit blocks (recurrence.h). One more copy of
//                W_ih: through w_ih_panels, a thread's columns lie in 4 KiB-strided pieces that
//                the hardware prefetchers do not follow: a thread's projection for an LSTM
//                streaming step (H = 256, 2 threads) read them at 52 GB/s, and these at 82.
//   w_hr_panels: W_hr^T per direction.
//   w_hh_backward: for each direction and unit block, for each row j < G*H of W_hh, its U
//                columns of the block: the backward recurrence streams each block's panel. Read
//                from W_hh with columns padded to Hp, a block's rows lay 4*Hp bytes apart, one
//                4 KiB page each at H = 1024, which the prefetchers did not follow: the panels
//                made LSTM(1024, 1024)'s backward (B = 64) 8% faster on one thread, 16% on two.
//   w_hr_backward: W_hr with columns padded to Hp, read a unit block at a time likewise.
#pragma once

#include "gemm/gemm.h"
#include "sequence/packed_layer.h"
#include "sequence/recurrence.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void pack_layer(PackedLayer<T>& layer) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, G = s.gates(), H = s.hidden_size, Hout = s.out_size(), P = s.proj_size,
                I = s.input_size, GH = s.gate_rows();
  const index_t U = kUnitBlock<T>, Hp = (H + U - 1) / U * U, blocks = Hp / U;
  layer.unit_block = U;
  layer.padded_hidden = Hp;

  layer.w_ih_panels = AlignedBuffer<T>(checked_mul(I, D * G * Hp));
  layer.w_ih_panels.fill_zero();
  layer.x_bias = AlignedBuffer<T>(D * G * Hp);
  layer.x_bias.fill_zero();
  layer.hn_bias = AlignedBuffer<T>(D * Hp);
  layer.hn_bias.fill_zero();
  for (index_t d = 0; d < D; ++d) {
    for (index_t g = 0; g < G; ++g) {
      for (index_t u = 0; u < H; ++u) {
        const index_t src_row = d * GH + g * H + u, dst_col = (d * G + g) * Hp + u;
        for (index_t i = 0; i < I; ++i)
          layer.w_ih_panels.data()[i * D * G * Hp + dst_col] = layer.w_ih.data()[src_row * I + i];
        if (s.has_bias) layer.x_bias.data()[dst_col] = layer.input_bias.data()[src_row];
      }
    }
    if (s.has_bias && s.cell == Cell::gru)
      for (index_t u = 0; u < H; ++u) layer.hn_bias.data()[d * Hp + u] = layer.hidden_bias.data()[d * H + u];
  }

  // (D*G*H, K) row-major -> per direction and unit block, per k < K, G vectors of U lanes.
  const auto unit_panels = [&](const T* w, index_t K) {
    AlignedBuffer<T> panels(checked_mul(checked_mul(D * blocks, K), G * U));
    panels.fill_zero();
    for (index_t d = 0; d < D; ++d)
      for (index_t block = 0; block < blocks; ++block) {
        T* panel = panels.data() + (d * blocks + block) * K * G * U;
        for (index_t k = 0; k < K; ++k)
          for (index_t g = 0; g < G; ++g)
            for (index_t lane = 0; lane < U && block * U + lane < H; ++lane)
              panel[(k * G + g) * U + lane] = w[(d * GH + g * H + block * U + lane) * K + k];
      }
    return panels;
  };
  layer.w_hh_panels = unit_panels(layer.w_hh.data(), Hout);
  layer.w_ih_unit_panels = unit_panels(layer.w_ih.data(), I);

  if (P == 0) {
    layer.w_hh_backward = AlignedBuffer<T>(checked_mul(D * GH, Hp));
    layer.w_hh_backward.fill_zero();
    for (index_t d = 0; d < D; ++d)
      for (index_t block = 0; block < blocks; ++block) {
        T* panel = layer.w_hh_backward.data() + (d * blocks + block) * GH * U;
        for (index_t j = 0; j < GH; ++j)
          for (index_t lane = 0; lane < U && block * U + lane < H; ++lane)
            panel[j * U + lane] = layer.w_hh.data()[(d * GH + j) * H + block * U + lane];
      }
  } else {
    layer.w_hr_backward = AlignedBuffer<T>(checked_mul(D * P, Hp));
    layer.w_hr_backward.fill_zero();
    for (index_t row = 0; row < D * P; ++row)
      for (index_t u = 0; u < H; ++u) layer.w_hr_backward.data()[row * Hp + u] = layer.w_hr.data()[row * H + u];
  }
  if (P > 0) {
    layer.w_hr_panels = AlignedBuffer<T>(checked_mul(D * P, H));
    for (index_t d = 0; d < D; ++d)
      transpose(P, H, layer.w_hr.data() + d * P * H, H, layer.w_hr_panels.data() + d * H * P, P);
  }
}

}  // namespace pyrnn::PYRNN_ISA
