// GEMM blocking and micro-kernel choice for every ISA, in one place (per ISA: this header is
// compiled in each pyrnn::<isa> copy and picks that ISA's row). The registry record surfaces the
// same numbers (dispatch/isa_kernels.cpp).
//   MR x NR  register tile of the micro-kernel (rows of op(A) x columns of B; NR a multiple of the
//            vector width).
//   KC       depth of one packed block: the only blocking that changes arithmetic (each element of
//            C is summed in blocks of KC in increasing k), so it is a constant, never tuned per call
//            or per thread count.
//   MC       rows of op(A) per packed A block (multiple of MR; the block, MC x KC, stays in L2).
//   NC       columns of B per packed B block (multiple of NR; KC x NC, shared by the threads, in L3).
//   a_in_place  whether the MR x NR tile reads a row-major A in place, its rows lda apart, rather
//            than packed (a transposed A is always packed). Packing gathers one value at a time,
//            which weighs the more the fewer column panels reuse a packed block. Measured on Zen 4
//            (interleaved A/B, medians): AVX-512's 4-vector tiles read A in place at 1.01-1.15x
//            the packed rate on the layers' shapes (f32; f64 0.94-1.10), AVX2's and generic's
//            2-vector tiles at 0.72-1.0x once n >= 256. The narrow tile always reads A in place:
//            1.3-1.7x with AVX-512 and AVX2, 0.97-1.12x generic (n = 5..48).
//   narrow_mr x narrow_nr  the tile for narrow products (n well below NR, e.g. dx = d_pre W_ih
//            with a small input size), where NR-wide panels would be mostly padding: chosen when
//            its padded width, with a 25% allowance for the narrower tile's lower rate, is smaller.
//   stream_max_m, stream_rows, stream_cols  products with m <= stream_max_m pack no B (packing
//            costs k x n copies per call, too much when few rows of A reuse it): they stream B's
//            rows through a stream_rows x stream_cols accumulator block in L1 (gemm/stream.h).
// Chosen by measurement (bench/bench_gemm.py and interleaved A/B builds, medians) on an AMD
// family 1Ah (Zen 5) core: two 512-bit FMA pipes, 48 KB L1D, 1 MB L2, 32 MB shared L3. There
// 6x64 / KC 512 beat 14x32 / KC 384 by ~8% (f32), 6x32 / KC 512 beat 14x16 / KC 256 by ~10%
// (f64); MC and NC were flat within noise. Streaming beat packing B up to m = 64 on the layers'
// shapes (n = 1024..4096, k = 256..1024) and beat the micro-kernel on B in place at every m.
// Re-checked on a family 19h (Zen 4) core (512-bit FMAs at half rate, 32 KB L1D, 1 MB L2): f32
// KC 512 still beat 256 and 128 (input projection 100 / 98 / 91 GF/s, weight gradients 99.6 /
// 95 / 90), and the f32 6x64 tile runs at 104-108 GF/s, above NumPy's matmul (~103).
#pragma once

#include "common/aligned_buffer.h"
#include "simd/isa.h"

// PYRNN_ISA is a bare token (generic, avx2, avx512); map it to a number #if can compare.
#define PYRNN_GEMM_ISA_ID_generic 0
#define PYRNN_GEMM_ISA_ID_avx2 1
#define PYRNN_GEMM_ISA_ID_avx512 2
#define PYRNN_GEMM_CAT_(a, b) a##b
#define PYRNN_GEMM_CAT(a, b) PYRNN_GEMM_CAT_(a, b)
#define PYRNN_GEMM_ISA_ID PYRNN_GEMM_CAT(PYRNN_GEMM_ISA_ID_, PYRNN_ISA)

#if PYRNN_GEMM_ISA_ID == 2 && !defined(__AVX512F__)
#error "the avx512 copy must be compiled with AVX-512 flags"
#elif PYRNN_GEMM_ISA_ID == 1 && !(defined(__AVX2__) && defined(__FMA__))
#error "the avx2 copy must be compiled with AVX2 and FMA flags"
#endif

namespace pyrnn::PYRNN_ISA {

// Values of T in one 64-byte cache line (the alignment of every buffer): the unit the packed
// blocks are padded to and the packing prefetches by.
template <typename T>
inline constexpr index_t kLineValues = index_t(kBlockAlignment / sizeof(T));

template <typename T>
struct GemmConfig;

#if PYRNN_GEMM_ISA_ID == 2
template <>
struct GemmConfig<float> {
  static constexpr const char* kernel = "f32_gemm_6x64__avx512";
  static constexpr index_t mr = 6, nr = 64, kc = 512, mc = 192, nc = 4096;
  static constexpr bool a_in_place = true;
  static constexpr const char* narrow_kernel = "f32_gemm_14x16__avx512";
  static constexpr index_t narrow_mr = 14, narrow_nr = 16;
  static constexpr const char* stream_kernel = "f32_gemm_stream8x512__avx512";
  static constexpr index_t stream_max_m = 64, stream_rows = 8, stream_cols = 512;
};
template <>
struct GemmConfig<double> {
  static constexpr const char* kernel = "f64_gemm_6x32__avx512";
  static constexpr index_t mr = 6, nr = 32, kc = 512, mc = 96, nc = 2048;
  static constexpr bool a_in_place = true;
  static constexpr const char* narrow_kernel = "f64_gemm_14x8__avx512";
  static constexpr index_t narrow_mr = 14, narrow_nr = 8;
  static constexpr const char* stream_kernel = "f64_gemm_stream8x256__avx512";
  static constexpr index_t stream_max_m = 64, stream_rows = 8, stream_cols = 256;
};
#elif PYRNN_GEMM_ISA_ID == 1
template <>
struct GemmConfig<float> {
  static constexpr const char* kernel = "f32_gemm_6x16__avx2";
  static constexpr index_t mr = 6, nr = 16, kc = 384, mc = 192, nc = 4096;
  static constexpr bool a_in_place = false;
  static constexpr const char* narrow_kernel = "f32_gemm_12x8__avx2";
  static constexpr index_t narrow_mr = 12, narrow_nr = 8;
  static constexpr const char* stream_kernel = "f32_gemm_stream6x512__avx2";
  static constexpr index_t stream_max_m = 64, stream_rows = 6, stream_cols = 512;
};
template <>
struct GemmConfig<double> {
  static constexpr const char* kernel = "f64_gemm_6x8__avx2";
  static constexpr index_t mr = 6, nr = 8, kc = 256, mc = 144, nc = 2048;
  static constexpr bool a_in_place = false;
  static constexpr const char* narrow_kernel = "f64_gemm_12x4__avx2";
  static constexpr index_t narrow_mr = 12, narrow_nr = 4;
  static constexpr const char* stream_kernel = "f64_gemm_stream6x256__avx2";
  static constexpr index_t stream_max_m = 64, stream_rows = 6, stream_cols = 256;
};
#else
template <>
struct GemmConfig<float> {
  static constexpr const char* kernel = "f32_gemm_6x8__generic";
  static constexpr index_t mr = 6, nr = 8, kc = 256, mc = 144, nc = 2048;
  static constexpr bool a_in_place = false;
  static constexpr const char* narrow_kernel = "f32_gemm_12x4__generic";
  static constexpr index_t narrow_mr = 12, narrow_nr = 4;
  static constexpr const char* stream_kernel = "f32_gemm_stream6x512__generic";
  static constexpr index_t stream_max_m = 64, stream_rows = 6, stream_cols = 512;
};
template <>
struct GemmConfig<double> {
  static constexpr const char* kernel = "f64_gemm_6x4__generic";
  static constexpr index_t mr = 6, nr = 4, kc = 256, mc = 144, nc = 2048;
  static constexpr bool a_in_place = false;
  static constexpr const char* narrow_kernel = "f64_gemm_12x2__generic";
  static constexpr index_t narrow_mr = 12, narrow_nr = 2;
  static constexpr const char* stream_kernel = "f64_gemm_stream6x256__generic";
  static constexpr index_t stream_max_m = 64, stream_rows = 6, stream_cols = 256;
};
#endif

}  // namespace pyrnn::PYRNN_ISA
