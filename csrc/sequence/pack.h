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
//   w_hh_backward, w_hr_backward: for each direction and unit block, for each row of W_hh
//                (G*H rows) or W_hr (P rows), the block's U columns: the backward recurrence
//                streams each block's panel. Read from the matrix with columns padded to Hp, a
//                block's rows lay 4*Hp bytes apart, one 4 KiB page each at H = 1024, which the
//                prefetchers did not follow: the panels made LSTM(1024, 1024)'s backward (B = 64)
//                8% faster on one thread, 16% on two.
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

  // (D*rows, H) row-major -> per direction and unit block, per row, the block's U columns.
  const auto column_panels = [&](const T* w, index_t rows) {
    AlignedBuffer<T> panels(checked_mul(checked_mul(D * blocks, rows), U));
    panels.fill_zero();
    for (index_t d = 0; d < D; ++d)
      for (index_t block = 0; block < blocks; ++block) {
        T* panel = panels.data() + (d * blocks + block) * rows * U;
        for (index_t row = 0; row < rows; ++row)
          for (index_t lane = 0; lane < U && block * U + lane < H; ++lane)
            panel[row * U + lane] = w[(d * rows + row) * H + block * U + lane];
      }
    return panels;
  };
  if (P == 0) {
    layer.w_hh_backward = column_panels(layer.w_hh.data(), GH);
  } else {
    layer.w_hr_backward = column_panels(layer.w_hr.data(), P);
    layer.w_hr_panels = AlignedBuffer<T>(checked_mul(D * P, H));
    for (index_t d = 0; d < D; ++d)
      transpose(P, H, layer.w_hr.data() + d * P * H, H, layer.w_hr_panels.data() + d * H * P, P);
  }
}

}  // namespace pyrnn::PYRNN_ISA
