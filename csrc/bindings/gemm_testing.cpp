// pyrnn._core._gemm: a private hook to test and benchmark one ISA's GEMM (gemm/gemm.h) directly.
//   _gemm(a, b, transpose_a, isa, threads) -> c = op(a) @ b, float32 or float64 by dtype;
//   a is (m, k), or (k, m) with transpose_a; b is (k, n); both C-contiguous, same dtype.
// C is pre-filled with NaN and the product runs with beta = 0, so a kernel that reads C when it
// must not shows up as NaN in the result. _gemm_config(isa, dtype) -> the kernels' names and blocking.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>
#include <string>

#include "dispatch/registry.h"

namespace py = pybind11;

namespace pyrnn {
namespace {

template <typename T>
py::array_t<T> gemm_typed(const py::array& a_in, const py::array& b_in, bool transpose_a, const IsaRecord& isa,
                          int threads) {
  const auto a = py::array_t<T>::ensure(a_in);
  const auto b = py::array_t<T>::ensure(b_in);
  const index_t k = b.shape(0), n = b.shape(1);
  const index_t m = transpose_a ? a.shape(1) : a.shape(0);
  const index_t a_k = transpose_a ? a.shape(0) : a.shape(1);
  if (a_k != k)
    throw py::value_error("_gemm: op(a) is (" + std::to_string(m) + ", " + std::to_string(a_k) + ") but b is (" +
                          std::to_string(k) + ", " + std::to_string(n) + ")");
  py::array_t<T> c({m, n});
  T* out = c.mutable_data();
  for (index_t i = 0; i < m * n; ++i) out[i] = std::numeric_limits<T>::quiet_NaN();
  const GemmKernels<T>& kernels = gemm_kernels_of<T>(isa);
  const T* pa = a.data();
  const T* pb = b.data();
  const index_t lda = a.shape(1);
  {
    py::gil_scoped_release release;
    kernels.gemm(transpose_a, m, n, k, pa, lda, pb, n, T(0), out, n, threads);
  }
  return c;
}

py::array gemm_testing(const py::array& a, const py::array& b, bool transpose_a, const std::string& isa_name,
                       int threads) {
  if (a.ndim() != 2 || b.ndim() != 2)
    throw py::value_error("_gemm: expected 2-d a and b, got ndim " + std::to_string(a.ndim()) + " and " +
                          std::to_string(b.ndim()));
  if (!(a.flags() & py::array::c_style) || !(b.flags() & py::array::c_style))
    throw py::value_error("_gemm: expected C-contiguous a and b");
  if (threads < 1) throw py::value_error("_gemm: expected threads >= 1, got " + std::to_string(threads));
  const IsaRecord& isa = find_isa(isa_name);
  if (a.dtype().is(py::dtype::of<float>()) && b.dtype().is(py::dtype::of<float>()))
    return gemm_typed<float>(a, b, transpose_a, isa, threads);
  if (a.dtype().is(py::dtype::of<double>()) && b.dtype().is(py::dtype::of<double>()))
    return gemm_typed<double>(a, b, transpose_a, isa, threads);
  throw py::type_error("_gemm: expected a and b both float32 or both float64, got " +
                       std::string(py::str(a.dtype())) + " and " + std::string(py::str(b.dtype())));
}

template <typename T>
py::dict config_of(const GemmKernels<T>& k) {
  py::dict d;
  d["microkernel"] = k.microkernel;
  d["mr"] = k.mr;
  d["nr"] = k.nr;
  d["kc"] = k.kc;
  d["mc"] = k.mc;
  d["nc"] = k.nc;
  d["a_in_place"] = k.a_in_place;
  d["narrow_kernel"] = k.narrow_kernel;
  d["narrow_mr"] = k.narrow_mr;
  d["narrow_nr"] = k.narrow_nr;
  d["stream_kernel"] = k.stream_kernel;
  d["stream_max_m"] = k.stream_max_m;
  d["stream_rows"] = k.stream_rows;
  d["stream_cols"] = k.stream_cols;
  return d;
}

py::dict gemm_config(const std::string& isa_name, const std::string& dtype) {
  const IsaRecord& isa = find_isa(isa_name);
  if (dtype == "float32") return config_of(isa.gemm_f32);
  if (dtype == "float64") return config_of(isa.gemm_f64);
  throw py::value_error("_gemm_config: expected dtype 'float32' or 'float64', got '" + dtype + "'");
}

}  // namespace

void bind_gemm_testing(py::module_& m) {
  m.def("_gemm", &gemm_testing, py::arg("a"), py::arg("b"), py::arg("transpose_a"), py::arg("isa"),
        py::arg("threads"), "Private: c = op(a) @ b with one ISA's GEMM (tests and benchmarks only).");
  m.def("_gemm_config", &gemm_config, py::arg("isa"), py::arg("dtype"),
        "Private: the kernel names and blocking (mr, nr, kc, mc, nc, a_in_place, narrow_*, stream_*) of one ISA's "
        "GEMM.");
}

}  // namespace pyrnn
