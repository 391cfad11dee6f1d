// The ISA registry (see registry.h). Compiled once with baseline flags: the feature checks must
// run on any x86-64 before any per-ISA code does.
#include "dispatch/registry.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#define PYRNN_DECLARE_ISA(isa)                        \
  namespace pyrnn::isa {                              \
  extern const SequenceKernels<float> kernels_f32;    \
  extern const SequenceKernels<double> kernels_f64;   \
  extern const GemmKernels<float> gemm_f32;           \
  extern const GemmKernels<double> gemm_f64;          \
  extern const MathKernels<float> math_f32;           \
  extern const MathKernels<double> math_f64;          \
  }
PYRNN_DECLARE_ISA(avx512)
PYRNN_DECLARE_ISA(avx2)
PYRNN_DECLARE_ISA(generic)
#undef PYRNN_DECLARE_ISA

namespace pyrnn {
namespace {

bool supports_avx512(const CpuFeatures& c) {
  return c.avx512f && c.avx512dq && c.avx512bw && c.avx512vl && c.avx2 && c.fma && c.f16c;
}
bool supports_avx2(const CpuFeatures& c) { return c.avx2 && c.fma && c.f16c; }
bool supports_generic(const CpuFeatures&) { return true; }

// Priority order: the first supported record wins.
const IsaRecord kRecords[] = {
    {"avx512", supports_avx512, avx512::kernels_f32, avx512::kernels_f64, avx512::gemm_f32, avx512::gemm_f64,
     avx512::math_f32, avx512::math_f64},
    {"avx2", supports_avx2, avx2::kernels_f32, avx2::kernels_f64, avx2::gemm_f32, avx2::gemm_f64,
     avx2::math_f32, avx2::math_f64},
    {"generic", supports_generic, generic::kernels_f32, generic::kernels_f64, generic::gemm_f32, generic::gemm_f64,
     generic::math_f32, generic::math_f64},
};

const IsaRecord* find_supported(const std::string& name) {
  for (const IsaRecord& record : kRecords) {
    if (name != record.name) continue;
    if (!record.supported(cpu_features())) {
      throw std::invalid_argument("ISA '" + name + "' is not supported by this CPU; available: " +
                                  [] {
                                    std::string list;
                                    for (const std::string& n : available_isas())
                                      list += (list.empty() ? "" : ", ") + n;
                                    return list;
                                  }());
    }
    return &record;
  }
  throw std::invalid_argument("unknown ISA '" + name + "'; expected one of: avx512, avx2, generic");
}

const IsaRecord* initial_isa() {
  if (const char* forced = std::getenv("PYRNN_ISA"); forced != nullptr && *forced != '\0')
    return find_supported(forced);
  for (const IsaRecord& record : kRecords)
    if (record.supported(cpu_features())) return &record;
  return &kRecords[std::size(kRecords) - 1];
}

std::atomic<const IsaRecord*>& active_slot() {
  static std::atomic<const IsaRecord*> slot{initial_isa()};
  return slot;
}

}  // namespace

const IsaRecord& find_isa(const std::string& name) { return *find_supported(name); }

const IsaRecord& active_isa() { return *active_slot().load(std::memory_order_acquire); }

void select_isa(const std::string& name) {
  active_slot().store(find_supported(name), std::memory_order_release);
}

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const IsaRecord& record : kRecords)
    if (record.supported(cpu_features())) names.emplace_back(record.name);
  return names;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const IsaRecord& record : kRecords) names.emplace_back(record.name);
  return names;
}

}  // namespace pyrnn
