// StepProgress (see step_progress.h).
#include "common/step_progress.h"

#include "common/spin_wait.h"

namespace pyrnn {

void StepProgress::reset(int members) {
  if (members > kInlineMembers) {
    heap_slots_.reset(new Slot[members]);
    slots_ = heap_slots_.get();
  }
  for (int m = 0; m < members; ++m) slots_[m].step.store(-1, std::memory_order_relaxed);
}

void StepProgress::wait_slow(int member, std::int64_t step) const {
  spin_until([&] { return slots_[member].step.load(std::memory_order_acquire) >= step; });
}

}  // namespace pyrnn
