// The native, immutable copy of one layer's weights (all its directions), built once when the
// weights are set. A model holds one per layer; a training tape keeps the one its forward used.
//
// Plain copies, row-major, both directions stacked along the rows (direction-major):
//   w_ih (D*G*H, I)   w_hh (D*G*H, Hout)   w_hr (D*P, H)
// Biases folded for the all-steps input projection:
//   input_bias  (D*G*H) = b_ih + b_hh, except GRU's n block, which gets b_in only;
//   hidden_bias (D*H)   = GRU's b_hn, added inside r * (W_hn h + b_hn); empty otherwise.
// The ISA that packed the layer fills the *_panels copies in the layout of its kernels.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "common/aligned_buffer.h"
#include "common/layer_spec.h"

namespace pyrnn {

struct IsaRecord;

template <typename T>
struct PackedLayer {
  LayerSpec spec;
  const IsaRecord* isa = nullptr;  // the kernels that packed this layer and must run it

  AlignedBuffer<T> w_ih;
  AlignedBuffer<T> w_hh;
  AlignedBuffer<T> w_hr;
  AlignedBuffer<T> input_bias;
  AlignedBuffer<T> hidden_bias;

  // Filled by the ISA's pack() (sequence/pack.h). U = hidden units per vector, Hp = H rounded
  // up to a multiple of U; padding holds zeros, so padded units stay 0 and are never read.
  index_t unit_block = 0;           // U
  index_t padded_hidden = 0;        // Hp
  AlignedBuffer<T> w_ih_panels;     // (I, D*G*Hp): W_ih^T, each gate block padded to Hp columns
  AlignedBuffer<T> x_bias;          // (D*G*Hp): input_bias, padded likewise
  AlignedBuffer<T> w_ih_unit_panels;  // D x (Hp/U) x I x G x U: as w_hh_panels, for W_ih
  AlignedBuffer<T> w_hh_panels;     // D x (Hp/U) x Hout x G x U: per unit block, per k, G gate vectors
  AlignedBuffer<T> hn_bias;         // (D*Hp): GRU's b_hn, padded (zeros without bias)
  AlignedBuffer<T> w_hr_panels;     // D x (H, P): W_hr^T
  AlignedBuffer<T> w_hh_backward;   // D x (Hp/U) x G*H x U: per unit block, per row of W_hh (no projection only)
  AlignedBuffer<T> w_hr_backward;   // D x (Hp/U) x P x U: per unit block, per row of W_hr (projection only)
  // Forward steps run so far: the recurrence sweeps its panels the other way on every other step,
  // counted over calls (sequence/recurrence.h). The one mutable member; it changes no result.
  mutable std::atomic<std::uint64_t> forward_steps{0};
};

// One direction's weights as given by the user (PyTorch's shapes, row-major). Biases and w_hr may
// be nullptr when the layer has none.
template <typename T>
struct DirectionWeights {
  const T* w_ih;  // (G*H, I)
  const T* w_hh;  // (G*H, Hout)
  const T* b_ih;  // (G*H)
  const T* b_hh;  // (G*H)
  const T* w_hr;  // (P, H)
};

// Copies the weights of every direction into a new PackedLayer and folds the biases; the
// caller then runs the ISA's pack() on it.
template <typename T>
void fill_plain_weights(PackedLayer<T>& layer, const DirectionWeights<T>* directions) {
  const LayerSpec& s = layer.spec;
  const index_t D = s.directions, GH = s.gate_rows(), H = s.hidden_size, Hout = s.out_size(),
                P = s.proj_size, I = s.input_size;
  layer.w_ih = AlignedBuffer<T>(checked_mul(D * GH, I));
  layer.w_hh = AlignedBuffer<T>(checked_mul(D * GH, Hout));
  if (P > 0) layer.w_hr = AlignedBuffer<T>(checked_mul(D * P, H));
  if (s.has_bias) {
    layer.input_bias = AlignedBuffer<T>(D * GH);
    if (s.cell == Cell::gru) layer.hidden_bias = AlignedBuffer<T>(D * H);
  }
  const auto copy = [](const T* src, index_t n, T* dst) {
    if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<std::size_t>(n));
  };
  for (index_t d = 0; d < D; ++d) {
    const DirectionWeights<T>& w = directions[d];
    copy(w.w_ih, GH * I, layer.w_ih.data() + d * GH * I);
    copy(w.w_hh, GH * Hout, layer.w_hh.data() + d * GH * Hout);
    if (P > 0) copy(w.w_hr, P * H, layer.w_hr.data() + d * P * H);
    if (!s.has_bias) continue;
    T* bias = layer.input_bias.data() + d * GH;
    // GRU's n block keeps b_hn apart: it is scaled by r (PyTorch's GRU).
    const index_t folded = s.cell == Cell::gru ? 2 * H : GH;
    for (index_t j = 0; j < GH; ++j) bias[j] = w.b_ih[j] + (j < folded ? w.b_hh[j] : T(0));
    if (s.cell == Cell::gru) copy(w.b_hh + 2 * H, H, layer.hidden_bias.data() + d * H);
  }
}

}  // namespace pyrnn
