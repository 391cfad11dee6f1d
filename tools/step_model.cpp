// A stand-alone model of one thread's part of a 2-thread streaming step (LSTM(64, 256), B = 1):
// each thread streams its own 655 KB of panels (8 blocks of 320 rows x 4 gates x 16 lanes) with
// 4 FMA chains, as the step kernel does, and nothing else. Timing it with and without what the
// threads of a real step share tells which shared piece costs (HACKING.md).
// Modes: 1 = one thread; 2 = two threads meeting at a spin barrier every call; 3 = two threads,
// no barrier; 4 = as 2, each reading the whole h that both wrote (a half each) the call before;
// 5 = as 4, the first thread touching 64 KiB of other memory between calls (the Python call's
// share of the cache); 6 = as 4, prefetching all of h before the step. Prints the median µs per
// call of each thread (after a tenth of the calls as warm-up).
//
//   g++ -O2 -mavx512f -pthread tools/step_model.cpp -o /tmp/step_model
//   /tmp/step_model 4 50000    # mode, calls
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "pin_to_cpu.h"

namespace {

constexpr int kRows = 320, kBlocks = 8, kBlockValues = kRows * 64;  // 64 = 4 gates x 16 lanes
constexpr int kJunkBytes = 1 << 20;

alignas(64) std::atomic<long> barrier_round{0};
alignas(64) std::atomic<int> barrier_arrived{0};
alignas(64) float shared_h[2][kRows];
alignas(64) char junk[kJunkBytes];

void wait_for_both(long& my_round) {
  if (barrier_arrived.fetch_add(1) == 1) {
    barrier_arrived.store(0);
    barrier_round.fetch_add(1);
  } else {
    while (barrier_round.load(std::memory_order_acquire) == my_round) _mm_pause();
  }
  ++my_round;
}

// One step over the thread's panels: per block, out = sum over k of h[k] * panel row k.
float stream_panels(const float* panels, const float* h, float* out) {
  __m512 sum = _mm512_setzero_ps();
  for (int b = 0; b < kBlocks; ++b) {
    const float* panel = panels + b * kBlockValues;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < kRows; ++k) {
      const __m512 hk = _mm512_set1_ps(h[k]);
      a0 = _mm512_fmadd_ps(hk, _mm512_load_ps(panel + k * 64), a0);
      a1 = _mm512_fmadd_ps(hk, _mm512_load_ps(panel + k * 64 + 16), a1);
      a2 = _mm512_fmadd_ps(hk, _mm512_load_ps(panel + k * 64 + 32), a2);
      a3 = _mm512_fmadd_ps(hk, _mm512_load_ps(panel + k * 64 + 48), a3);
    }
    const __m512 block = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    _mm512_store_ps(out + b * 16, block);
    sum = _mm512_add_ps(sum, block);
  }
  alignas(64) float lanes[16];  // one lane of the sum keeps every block's work observable
  _mm512_store_ps(lanes, sum);
  return lanes[0];
}

// The median µs per call of thread `tid` in `mode`.
double time_calls(int mode, int tid, int calls) {
  pin_to_cpu(tid, "step_model");
  const bool meet = mode == 2 || mode >= 4, share_h = mode >= 4;
  auto* panels = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kBlocks * kBlockValues));
  for (int i = 0; i < kBlocks * kBlockValues; ++i) panels[i] = 1e-3f * float(i % 7);
  alignas(64) float own_h[kRows], out[kBlocks * 16];
  std::fill(own_h, own_h + kRows, 0.5f);
  long my_round = 0;
  volatile float keep = 0;
  std::vector<double> times;
  for (int c = 0; c < calls; ++c) {
    if (mode == 5 && tid == 0)
      for (int i = 0; i < (64 << 10); i += 64) ++junk[(c * 4096 + i) % kJunkBytes];
    if (meet) wait_for_both(my_round);
    const auto start = std::chrono::steady_clock::now();
    const float* h = share_h ? shared_h[c % 2] : own_h;
    if (mode == 6)
      for (int k = 0; k < kRows; k += 16) _mm_prefetch(reinterpret_cast<const char*>(h + k), _MM_HINT_T0);
    keep = keep + stream_panels(panels, h, out);
    if (share_h)
      for (int j = 0; j < kRows / 2; ++j) shared_h[(c + 1) % 2][tid * (kRows / 2) + j] = 1e-3f * out[j % (kBlocks * 16)];
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::free(panels);
  std::sort(times.begin() + calls / 10, times.end());
  return times[calls / 10 + (calls - calls / 10) / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int mode = argc > 1 ? std::atoi(argv[1]) : 0, calls = argc > 2 ? std::atoi(argv[2]) : 50000;
  if (mode < 1 || mode > 6 || calls < 10) {
    std::fprintf(stderr, "usage: step_model MODE(1-6) [CALLS >= 10]\n");
    return 1;
  }
  std::fill(&shared_h[0][0], &shared_h[0][0] + 2 * kRows, 0.5f);
  const int threads = mode == 1 ? 1 : 2;
  std::vector<double> medians(threads);
  std::vector<std::thread> team;
  for (int t = 0; t < threads; ++t) team.emplace_back([&, t] { medians[t] = time_calls(mode, t, calls); });
  for (auto& thread : team) thread.join();
  const double bytes = double(sizeof(float)) * kBlocks * kBlockValues;
  for (int t = 0; t < threads; ++t)
    std::printf("mode %d thread %d: %.2f us a call, %.0f GB/s\n", mode, t, medians[t], bytes / medians[t] / 1e3);
}
