// One-way latency of handing a cache line between two cores, sampled over time: what a 2-thread
// small-batch step pays each time h or a progress flag crosses between its threads. On a virtual
// machine it tells which placement of the vCPUs the host has chosen at the moment (HACKING.md).
// Two threads pinned to CPUs 0 and 1 take turns incrementing one counter; each sample prints the
// time and the nanoseconds per hand-over.
//
//   g++ -O2 -pthread tools/core_to_core.cpp -o /tmp/core_to_core
//   /tmp/core_to_core 60 1    # 60 samples, one a second
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "pin_to_cpu.h"

namespace {

constexpr long kHandOvers = 200000;

alignas(64) std::atomic<long> counter{0};

// Waits for the counter to reach each value of `first`, `first` + 2, ... and increments it.
void take_turns(long first) {
  for (long turn = first; turn < kHandOvers; turn += 2) {
    while (counter.load(std::memory_order_acquire) != turn) {
    }
    counter.store(turn + 1, std::memory_order_release);
  }
}

double nanoseconds_per_hand_over() {
  counter.store(0);
  std::thread partner([] {
    pin_to_cpu(1, "core_to_core");
    take_turns(1);
  });
  pin_to_cpu(0, "core_to_core");
  const auto start = std::chrono::steady_clock::now();
  take_turns(0);
  partner.join();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kHandOvers;
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::atoi(argv[1]) : 10;
  const double interval = argc > 2 ? std::atof(argv[2]) : 1.0;
  for (int i = 0; i < samples; ++i) {
    const double ns = nanoseconds_per_hand_over();
    const std::time_t now = std::time(nullptr);
    char clock[16];
    std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&now));
    std::printf("%s %6.0f ns\n", clock, ns);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  }
}
