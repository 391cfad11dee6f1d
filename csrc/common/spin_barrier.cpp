// SpinBarrier (see spin_barrier.h).
#include "common/spin_barrier.h"

#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PYRNN_CPU_RELAX() _mm_pause()
#else
#define PYRNN_CPU_RELAX() ((void)0)
#endif

namespace pyrnn {

void SpinBarrier::wait() {
  if (threads_ <= 1) return;
  const unsigned round = round_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    round_.store(round + 1, std::memory_order_release);
    return;
  }
  constexpr int kSpinsBeforeYield = 4000;
  for (int spins = 0; round_.load(std::memory_order_acquire) == round; ++spins) {
    if (spins < kSpinsBeforeYield) PYRNN_CPU_RELAX();
    else std::this_thread::yield();
  }
}

}  // namespace pyrnn
