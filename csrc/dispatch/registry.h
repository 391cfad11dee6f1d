// The ISA registry: one record per instruction set, in priority order. The first record the CPU
// supports is chosen once, lazily; PYRNN_ISA=generic|avx2|avx512 forces one (an unknown or
// unsupported name is an error, never a silent fallback).
#pragma once

#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "sequence/layer_args.h"
#include "sequence/packed_layer.h"
#include "sequence/tape.h"

namespace pyrnn {

template <typename T>
struct SequenceKernels {
  // Fills layer.*_panels from the plain weights.
  void (*pack)(PackedLayer<T>& layer);
  // One layer, all directions, over the whole sequence; tape == nullptr for inference.
  void (*forward)(const PackedLayer<T>& layer, const ForwardArgs<T>& args, LayerTape<T>* tape);
  // BPTT through one layer from its tape; writes every gradient in args.
  void (*backward)(const PackedLayer<T>& layer, const LayerTape<T>& tape, const BackwardArgs<T>& args);
};

// The ISA's dense GEMM (gemm/gemm.h) and the blocking it was built with (gemm/config.h).
template <typename T>
struct GemmKernels {
  // C (m x n) = op(A) * B + beta * C, row-major; op(A) = A (m x k) or A^T (A stored k x m).
  void (*gemm)(bool transpose_a, index_t m, index_t n, index_t k, const T* a, index_t lda, const T* b,
               index_t ldb, T beta, T* c, index_t ldc, int threads);
  const char* microkernel;  // e.g. "f32_gemm_6x64__avx512"
  index_t mr, nr, kc, mc, nc;
  bool a_in_place;  // the MR x NR tile reads a row-major A unpacked
  const char* narrow_kernel;  // narrow products (small n), e.g. "f32_gemm_14x16__avx512"
  index_t narrow_mr, narrow_nr;
  const char* stream_kernel;  // small-m path, e.g. "f32_gemm_stream8x512__avx512"
  index_t stream_max_m, stream_rows, stream_cols;
};

// Vectorised activations over arrays (math/vmath.h): y[i] = f(x[i]), y may be x.
template <typename T>
struct MathKernels {
  void (*vexp)(index_t n, const T* x, T* y);
  void (*vsigmoid)(index_t n, const T* x, T* y);
  void (*vtanh)(index_t n, const T* x, T* y);
};

struct IsaRecord {
  const char* name;
  bool (*supported)(const CpuFeatures& cpu);
  SequenceKernels<float> f32;
  SequenceKernels<double> f64;
  GemmKernels<float> gemm_f32;
  GemmKernels<double> gemm_f64;
  MathKernels<float> math_f32;
  MathKernels<double> math_f64;
};

// Per-ISA kernel access for one dtype.
template <typename T>
const SequenceKernels<T>& kernels_of(const IsaRecord& isa);
template <>
inline const SequenceKernels<float>& kernels_of<float>(const IsaRecord& isa) { return isa.f32; }
template <>
inline const SequenceKernels<double>& kernels_of<double>(const IsaRecord& isa) { return isa.f64; }
template <typename T>
const GemmKernels<T>& gemm_kernels_of(const IsaRecord& isa);
template <>
inline const GemmKernels<float>& gemm_kernels_of<float>(const IsaRecord& isa) { return isa.gemm_f32; }
template <>
inline const GemmKernels<double>& gemm_kernels_of<double>(const IsaRecord& isa) { return isa.gemm_f64; }

template <typename T>
const MathKernels<T>& math_kernels_of(const IsaRecord& isa);
template <>
inline const MathKernels<float>& math_kernels_of<float>(const IsaRecord& isa) { return isa.math_f32; }
template <>
inline const MathKernels<double>& math_kernels_of<double>(const IsaRecord& isa) { return isa.math_f64; }

const IsaRecord& active_isa();                 // chosen on first call (PYRNN_ISA honoured)
const IsaRecord& find_isa(const std::string& name);  // a supported record; throws like select_isa
void select_isa(const std::string& name);      // throws std::invalid_argument if unknown/unsupported
std::vector<std::string> available_isas();     // supported by this CPU, priority order
std::vector<std::string> compiled_isas();      // all records, priority order

}  // namespace pyrnn
