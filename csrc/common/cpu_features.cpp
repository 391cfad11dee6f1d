// CPUID + XGETBV feature detection (x86-64; other architectures report no extensions).
#include "common/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <cstdint>
#endif

namespace pyrnn {
namespace {

#if defined(__x86_64__) || defined(__i386__)
std::uint64_t read_xcr0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & (1u << 27);
  if (!osxsave) return f;
  const std::uint64_t xcr0 = read_xcr0();
  const bool os_saves_ymm = (xcr0 & 0x6) == 0x6;           // SSE + AVX state
  const bool os_saves_zmm = (xcr0 & 0xe6) == 0xe6;         // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool avx = (ecx & (1u << 28)) && os_saves_ymm;
  f.fma = avx && (ecx & (1u << 12));
  f.f16c = avx && (ecx & (1u << 29));
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  f.avx2 = avx && (ebx & (1u << 5));
  f.avx512f = os_saves_zmm && (ebx & (1u << 16));
  f.avx512dq = f.avx512f && (ebx & (1u << 17));
  f.avx512bw = f.avx512f && (ebx & (1u << 30));
  f.avx512vl = f.avx512f && (ebx & (1u << 31));
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace pyrnn
