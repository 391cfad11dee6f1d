// CPU feature detection from CPUID and XGETBV (the OS must save the vector registers).
// ISA-independent: compiled once with baseline x86-64 flags, read before any kernel runs.
#pragma once

namespace pyrnn {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512dq = false;
  bool avx512bw = false;
  bool avx512vl = false;
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

}  // namespace pyrnn
