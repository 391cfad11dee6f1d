// Waiting on another thread's write: spin with the CPU's pause hint, then yield, so that an
// oversubscribed machine still progresses. For SpinBarrier and StepProgress (compiled once).
#pragma once

#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pyrnn {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Returns once done() is true.
template <typename Done>
void spin_until(Done done) {
  constexpr int kSpinsBeforeYield = 4000;
  for (int spins = 0; !done(); ++spins) {
    if (spins < kSpinsBeforeYield) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace pyrnn
