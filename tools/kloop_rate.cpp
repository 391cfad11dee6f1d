// The rate of a B = 1 step's k-loop (sequence/recurrence.h, accumulate_h) for W_hh panels of each
// size: per k, one broadcast of h[k] and C FMAs with operands from memory, on C chains (G gates x
// J blocks: 4 for one LSTM block, 6 for two GRU blocks, 8 for two LSTM blocks), a k's C vectors
// adjacent, the panels read one after the other as a step's tiles read them. Beside it, for each
// size: the loop with h[k] fixed (no broadcast), and with adds from memory in place of the FMAs
// (the read rate); and FMAs on registers alone, the FMA peak. Vectors a ns, medians of repeats.
//
//   g++ -O2 -mavx2 -mfma tools/kloop_rate.cpp -o /tmp/kloop_rate   # or -mavx512f
//   /tmp/kloop_rate
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

#if defined(__AVX512F__)
using Vector = __m512;
#define KLOOP_PS(operation) _mm512_##operation##_ps
#elif defined(__AVX2__) && defined(__FMA__)
using Vector = __m256;
#define KLOOP_PS(operation) _mm256_##operation##_ps
#else
#error "compile with -mavx512f or with -mavx2 -mfma"
#endif
constexpr int kLanes = sizeof(Vector) / sizeof(float);

inline Vector broadcast(float x) { return KLOOP_PS(set1)(x); }
inline Vector load(const float* p) { return KLOOP_PS(load)(p); }
inline Vector fma(Vector a, Vector b, Vector c) { return KLOOP_PS(fmadd)(a, b, c); }
inline Vector add(Vector a, Vector b) { return KLOOP_PS(add)(a, b); }
inline float first(Vector a) {
  alignas(64) float lanes[kLanes];
  KLOOP_PS(store)(lanes, a);
  return lanes[0];
}

enum class Loop { fma_broadcast, fma_fixed_h, add };

// One pass over `blocks` panels of K rows x C vectors, C chains per block.
template <int C, Loop kLoop>
__attribute__((noinline)) float step(const float* panels, int blocks, int K, const float* h) {
  Vector total = broadcast(0);
  for (int b = 0; b < blocks; ++b) {
    const float* panel = panels + static_cast<long>(b) * K * C * kLanes;
    Vector acc[C];
    for (int c = 0; c < C; ++c) acc[c] = broadcast(0);
    const Vector fixed = broadcast(h[0]);
    for (int k = 0; k < K; ++k) {
      const Vector hk = kLoop == Loop::fma_broadcast ? broadcast(h[k]) : fixed;
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const Vector w = load(panel + (k * C + c) * kLanes);
        acc[c] = kLoop == Loop::add ? add(w, acc[c]) : fma(hk, w, acc[c]);
      }
    }
    for (int c = 0; c < C; ++c) total = add(total, acc[c]);
  }
  return first(total);
}

// The median of `repeats` timings of run(), which returns the vectors it processed: vectors a ns.
template <typename Run>
double median_rate(int repeats, Run run) {
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const double vectors = run();
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(vectors / ns);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// Vectors a ns (one FMA or add per vector) of `calls` steps over `bytes` of panels; the median of 15.
template <int C, Loop kLoop>
double rate(std::size_t bytes) {
  const int K = static_cast<int>(std::min<std::size_t>(256, bytes / (2 * sizeof(Vector) * C)));
  const int blocks = static_cast<int>(bytes / (sizeof(Vector) * K * C));
  const std::size_t floats = static_cast<std::size_t>(blocks) * K * C * kLanes;
  float* panels = static_cast<float*>(std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64));
  for (std::size_t i = 0; i < floats; ++i) panels[i] = 1e-3f * static_cast<float>(i % 7);
  std::vector<float> h(K, 0.5f);
  const int calls = std::max(1, static_cast<int>((std::size_t(64) << 20) / bytes));
  volatile float sink = 0;
  const double result = median_rate(15, [&] {
    for (int i = 0; i < calls; ++i) sink = sink + step<C, kLoop>(panels, blocks, K, h.data());
    return static_cast<double>(calls) * blocks * K * C;
  });
  std::free(panels);
  return result;
}

// n rounds of FMAs on 10 independent register chains, no loads. Named variables, not an array:
// GCC kept an array of chains in memory across the loop.
__attribute__((noinline)) float fma_chains(long n) {
  Vector a0 = broadcast(1.0f), a1 = broadcast(1.1f), a2 = broadcast(1.2f), a3 = broadcast(1.3f), a4 = broadcast(1.4f),
         a5 = broadcast(1.5f), a6 = broadcast(1.6f), a7 = broadcast(1.7f), a8 = broadcast(1.8f), a9 = broadcast(1.9f);
  const Vector m = broadcast(0.9999999f), c = broadcast(1e-7f);
  for (long i = 0; i < n; ++i) {
    a0 = fma(a0, m, c), a1 = fma(a1, m, c), a2 = fma(a2, m, c), a3 = fma(a3, m, c), a4 = fma(a4, m, c);
    a5 = fma(a5, m, c), a6 = fma(a6, m, c), a7 = fma(a7, m, c), a8 = fma(a8, m, c), a9 = fma(a9, m, c);
  }
  return first(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(add(a6, a7), add(a8, a9)))));
}

// FMAs a ns on registers alone: the FMA peak, the median of 7.
double register_peak() {
  const long n = 20000000;
  volatile float sink = 0;
  return median_rate(7, [&] {
    sink = sink + fma_chains(n);
    return 10.0 * n;
  });
}

}  // namespace

int main() {
  const double peak = register_peak();
  std::printf("%d-lane vectors; FMA peak on registers: %.2f a ns\n", kLanes, peak);
  std::printf("vectors a ns (%% of the peak) for each size of the panels:\n");
  std::printf("panels     4 chains    6 chains    8 chains    8, fixed h  adds (8)\n");
  for (std::size_t kib : {16, 64, 256, 1024}) {
    const std::size_t bytes = kib << 10;
    const double r4 = rate<4, Loop::fma_broadcast>(bytes), r6 = rate<6, Loop::fma_broadcast>(bytes),
                 r8 = rate<8, Loop::fma_broadcast>(bytes), f8 = rate<8, Loop::fma_fixed_h>(bytes),
                 a8 = rate<8, Loop::add>(bytes);
    std::printf("%5zu KiB", kib);
    for (double r : {r4, r6, r8, f8, a8}) std::printf("  %4.2f (%3.0f%%)", r, 100 * r / peak);
    std::printf("\n");
  }
}
