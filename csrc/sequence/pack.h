// Packs a layer's weights for this ISA's kernels (per ISA): the transposed copies the products
// x W_ih^T, h W_hh^T and r W_hr^T read with unit stride. Runs once when weights are set.
#pragma once

#include "gemm/gemm.h"
#include "sequence/packed_layer.h"

namespace pyrnn::PYRNN_ISA {

template <typename T>
void pack_layer(PackedLayer<T>& layer) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, GH = s.gate_rows(), H = s.hidden_size, Hout = s.out_size(),
                P = s.proj_size, I = s.input_size;
  layer.w_ih_panels = AlignedBuffer<T>(checked_mul(D * GH, I));
  transpose(D * GH, I, layer.w_ih.data(), I, layer.w_ih_panels.data(), D * GH);
  layer.w_hh_panels = AlignedBuffer<T>(checked_mul(D * GH, Hout));
  for (index_t d = 0; d < D; ++d)
    transpose(GH, Hout, layer.w_hh.data() + d * GH * Hout, Hout, layer.w_hh_panels.data() + d * Hout * GH, GH);
  if (P > 0) {
    layer.w_hr_panels = AlignedBuffer<T>(checked_mul(D * P, H));
    for (index_t d = 0; d < D; ++d)
      transpose(P, H, layer.w_hr.data() + d * P * H, H, layer.w_hr_panels.data() + d * H * P, P);
  }
}

}  // namespace pyrnn::PYRNN_ISA
