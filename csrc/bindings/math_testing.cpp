// pyrnn._core._vmath(name, x, isa) -> y: runs one vectorised activation (math/vmath.h) of the
// named ISA over a float32 or float64 array, for tests and micro-benchmarks. Not public API.
#include "bindings/math_testing.h"

#include <pybind11/numpy.h>

#include <string>

#include "dispatch/registry.h"

namespace py = pybind11;

namespace pyrnn {
namespace {

template <typename T>
using ArrayOf = py::array_t<T, py::array::c_style>;

template <typename T>
py::array run(const std::string& name, const py::array& x_any, const IsaRecord& isa) {
  const MathKernels<T>& k = math_kernels_of<T>(isa);
  void (*fn)(index_t, const T*, T*) = name == "exp"       ? k.vexp
                                      : name == "sigmoid" ? k.vsigmoid
                                      : name == "tanh"    ? k.vtanh
                                                          : nullptr;
  if (fn == nullptr) throw py::value_error("_vmath: name must be 'exp', 'sigmoid' or 'tanh', got '" + name + "'");
  const auto x = ArrayOf<T>::ensure(x_any);  // C-contiguous (a copy only if x is not)
  ArrayOf<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const index_t n = x.size();
  const T* src = x.data();
  T* dst = y.mutable_data();
  {
    py::gil_scoped_release release;
    fn(n, src, dst);
  }
  return std::move(y);
}

}  // namespace

void bind_math_testing(py::module_& m) {
  m.def(
      "_vmath",
      [](const std::string& name, const py::array& x, const std::string& isa) -> py::array {
        const IsaRecord& record = find_isa(isa);  // std::invalid_argument -> ValueError
        if (x.dtype().is(py::dtype::of<float>())) return run<float>(name, x, record);
        if (x.dtype().is(py::dtype::of<double>())) return run<double>(name, x, record);
        throw py::type_error("_vmath: x must be float32 or float64, got " + std::string(py::str(x.dtype())));
      },
      py::arg("name"), py::arg("x"), py::arg("isa"),
      "Private test hook: y = name(x) elementwise (name: exp | sigmoid | tanh) with the kernels of `isa`;\n"
      "x float32 or float64, any shape; y has x's shape and dtype.");
}

}  // namespace pyrnn
