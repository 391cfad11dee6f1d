// Guard for per-ISA code. Headers under simd/, math/, gemm/, cells/ and sequence/*.h kernels are
// compiled once per ISA (CMakeLists.txt builds dispatch/isa_kernels.cpp with -DPYRNN_ISA=<isa>
// and that ISA's flags) and put everything in namespace pyrnn::PYRNN_ISA. They define no globals
// and no statics, and use no std:: templates that could be instantiated with one ISA's flags and
// then shared with another's.
#pragma once

#ifndef PYRNN_ISA
#error "per-ISA header included from a translation unit that is not compiled per ISA"
#endif
