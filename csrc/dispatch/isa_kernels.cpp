// The per-ISA translation unit. CMakeLists.txt compiles it once per ISA with -DPYRNN_ISA=<isa>
// and that ISA's flags; it exports the ISA's kernel tables to the registry (registry.cpp).
// Constant-initialised: no code runs here before the CPU check.
#include "dispatch/registry.h"
#include "gemm/gemm.h"
#include "math/vmath.h"
#include "sequence/layer_backward.h"
#include "sequence/layer_forward.h"
#include "sequence/pack.h"

namespace pyrnn::PYRNN_ISA {

extern const SequenceKernels<float> kernels_f32;
extern const SequenceKernels<double> kernels_f64;
extern const GemmKernels<float> gemm_f32;
extern const GemmKernels<double> gemm_f64;

const SequenceKernels<float> kernels_f32 = {pack_layer<float>, layer_forward<float>, layer_backward<float>};
const SequenceKernels<double> kernels_f64 = {pack_layer<double>, layer_forward<double>, layer_backward<double>};

template <typename T>
constexpr GemmKernels<T> gemm_kernels() {
  using C = GemmConfig<T>;
  return {gemm<T>,          C::kernel,       C::mr,          C::nr,         C::kc,          C::mc,
          C::nc,            C::a_in_place,   C::narrow_kernel, C::narrow_mr, C::narrow_nr,
          C::stream_kernel, C::stream_max_m, C::stream_rows,  C::stream_cols};
}
const GemmKernels<float> gemm_f32 = gemm_kernels<float>();
const GemmKernels<double> gemm_f64 = gemm_kernels<double>();

extern const MathKernels<float> math_f32;
extern const MathKernels<double> math_f64;

const MathKernels<float> math_f32 = {vexp<float>, vsigmoid<float>, vtanh<float>};
const MathKernels<double> math_f64 = {vexp<double>, vsigmoid<double>, vtanh<double>};

}  // namespace pyrnn::PYRNN_ISA
