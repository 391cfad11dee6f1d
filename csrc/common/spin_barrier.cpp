// SpinBarrier (see spin_barrier.h).
#include "common/spin_barrier.h"

#include "common/spin_wait.h"

namespace pyrnn {

void SpinBarrier::wait() {
  if (threads_ <= 1) return;
  const unsigned round = round_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    round_.store(round + 1, std::memory_order_release);
    return;
  }
  spin_until([&] { return round_.load(std::memory_order_acquire) != round; });
}

}  // namespace pyrnn
