// A run-time count as a compile-time constant (per ISA), so a kernel can keep that many rows of
// accumulators in registers: with_static_count<kMax>(n, fn) calls fn(StaticCount<n>{}) for
// 1 <= n <= kMax; fn reads the count as decltype(arg)::value.
#pragma once

#include "common/aligned_buffer.h"
#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

template <int N>
struct StaticCount {
  static constexpr int value = N;
};

template <int kMax, typename Fn>
void with_static_count(index_t n, Fn&& fn) {
  if constexpr (kMax > 1) {
    if (n < kMax) return with_static_count<kMax - 1>(n, fn);
  }
  fn(StaticCount<kMax>{});
}

}  // namespace pyrnn::PYRNN_ISA
