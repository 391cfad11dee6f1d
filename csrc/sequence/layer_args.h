// Arguments of the per-ISA layer kernels: raw pointers to caller-owned, C-contiguous arrays
// whose shapes the bindings have checked. All arrays of one call share the dtype T.
#pragma once

#include <cstdint>

#include "common/aligned_buffer.h"

namespace pyrnn {

template <typename T>
struct ForwardArgs {
  index_t steps = 0;                        // T
  index_t batch = 0;                        // B
  const T* x = nullptr;                     // (T, B, I)
  const T* h0 = nullptr;                    // (D, B, Hout)
  const T* c0 = nullptr;                    // (D, B, H), LSTM only
  const std::int64_t* lengths = nullptr;    // (B), each in [0, T]; nullptr = all T
  T* y = nullptr;                           // (T, B, D*Hout)
  T* h_n = nullptr;                         // (D, B, Hout)
  T* c_n = nullptr;                         // (D, B, H), LSTM only
  int threads = 1;
};

template <typename T>
struct BackwardArgs {
  const T* x = nullptr;      // (T, B, I), the layer input the forward saw
  const T* dy = nullptr;     // (T, B, D*Hout)
  const T* dh_n = nullptr;   // (D, B, Hout) or nullptr (zeros)
  const T* dc_n = nullptr;   // (D, B, H) or nullptr (zeros), LSTM only
  T* dx = nullptr;           // (T, B, I)
  T* dh0 = nullptr;          // (D, B, Hout)
  T* dc0 = nullptr;          // (D, B, H), LSTM only
  T* dw_ih = nullptr;        // (D*G*H, I)
  T* dw_hh = nullptr;        // (D*G*H, Hout)
  T* db_ih = nullptr;        // (D*G*H), only with bias
  T* db_hh = nullptr;        // (D*G*H), only with bias
  T* dw_hr = nullptr;        // (D*P, H), only with projection
  int threads = 1;
};

}  // namespace pyrnn
