// How far each member of a team has got through a sequence of steps: a member publishes that it
// has finished step s, and another waits until it has. A member can then start its next step on
// the part of the state it owns while the others finish theirs, where a barrier would hold it
// back. Waits as SpinBarrier does; the waiting loop is out of line (compiled once).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace pyrnn {

class StepProgress {
 public:
  StepProgress() = default;
  StepProgress(const StepProgress&) = delete;
  StepProgress& operator=(const StepProgress&) = delete;

  // Sets the team size, every member before step 0; call while no thread waits.
  void reset(int members);

  // Release: the member's writes before publish(member, s) are visible after wait_for(member, s).
  void publish(int member, std::int64_t step) { slots_[member].step.store(step, std::memory_order_release); }

  // Returns once `member` has published `step` or a later one.
  void wait_for(int member, std::int64_t step) const {
    if (slots_[member].step.load(std::memory_order_acquire) < step) wait_slow(member, step);
  }

 private:
  void wait_slow(int member, std::int64_t step) const;

  // A 128-byte pair of cache lines per member, not one line: the L2 prefetchers fetch a line's
  // neighbour, so with 64-byte slots a member's core would pull in the next member's line too.
  // Two threads on Zen 4, T = 100, B = 1: GRU(64, 128) 1-4% faster, LSTM(64, 128 and 256)
  // 1%, streaming steps 0-2%, and as much or more when the host places the vCPUs far apart.
  struct alignas(128) Slot {
    std::atomic<std::int64_t> step;  // set by reset()
  };
  // Teams up to this size take no allocation: a call sets up its StepProgress afresh.
  static constexpr int kInlineMembers = 4;
  Slot inline_slots_[kInlineMembers];
  std::unique_ptr<Slot[]> heap_slots_;
  Slot* slots_ = inline_slots_;
};

}  // namespace pyrnn
