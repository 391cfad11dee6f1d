// pyrnn._core._vmath: private test hook for the vectorised activations of any supported ISA.
#pragma once

#include <pybind11/pybind11.h>

namespace pyrnn {

void bind_math_testing(pybind11::module_& m);

}  // namespace pyrnn
