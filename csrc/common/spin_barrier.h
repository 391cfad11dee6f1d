// A barrier for a fixed group of threads that meet once per time step: a sense-reversing
// counter, spinning briefly and then yielding so that an oversubscribed machine still progresses.
// ISA-independent and out of line (compiled once), so per-ISA code shares one definition.
#pragma once

#include <atomic>

namespace pyrnn {

class SpinBarrier {
 public:
  SpinBarrier() = default;
  SpinBarrier(const SpinBarrier&) = delete;
  SpinBarrier& operator=(const SpinBarrier&) = delete;

  // Sets the group size; call while no thread waits (e.g. before the threads start).
  void reset(int threads) { threads_ = threads; }

  // Returns when all `threads` threads have called wait() for this round. Release/acquire:
  // writes before wait() in one thread are visible after wait() in the others.
  void wait();

 private:
  // 128 bytes apart, not 64: the L2 prefetchers fetch a line's neighbour, so two counters in one
  // 128-byte pair would move between the cores together (as StepProgress's slots).
  int threads_ = 1;
  alignas(128) std::atomic<int> arrived_{0};
  alignas(128) std::atomic<unsigned> round_{0};
};

}  // namespace pyrnn
