// Read bandwidth per core for a working set of each size: the bound of the small-batch
// recurrences, which stream W_hh (G*H*Hout floats) once per step from the cache level that holds it.
// Each thread sums its own buffer with vector loads (512-bit with -mavx512f, else 256-bit) into 8
// independent accumulators, repeatedly.
//
//   g++ -O2 -mavx512f -fopenmp tools/read_bandwidth.cpp -o /tmp/read_bandwidth   # or -mavx2
//   OMP_NUM_THREADS=1 /tmp/read_bandwidth    # then OMP_NUM_THREADS=2: each core its own buffer
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr std::size_t kVectorBytes = 64;
#elif defined(__AVX2__)
constexpr std::size_t kVectorBytes = 32;
#else
#error "compile with -mavx512f or -mavx2"
#endif
// GCC's vector extension; may_alias: the loop reads the float buffer through it.
typedef float Vector __attribute__((vector_size(kVectorBytes), may_alias));
constexpr std::size_t kLanes = kVectorBytes / sizeof(float);

// GB/s of one thread reading `bytes` (a multiple of 512) over and over, ~0.3 s in all.
double read_rate(std::size_t bytes) {
  const std::size_t floats = bytes / sizeof(float);
  float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  for (std::size_t i = 0; i < floats; ++i) data[i] = 1e-6f * static_cast<float>(i % 7);
  const std::size_t sweeps = 1 + static_cast<std::size_t>(1e9 / static_cast<double>(bytes));
  Vector acc[8] = {};
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t sweep = 0; sweep < sweeps; ++sweep)
    for (std::size_t i = 0; i < floats; i += 8 * kLanes)
#pragma GCC unroll 8
      for (std::size_t j = 0; j < 8; ++j) acc[j] += *reinterpret_cast<const Vector*>(data + i + kLanes * j);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int j = 1; j < 8; ++j) acc[0] += acc[j];
  volatile float sink = acc[0][0];  // keeps the loop
  (void)sink;
  std::free(data);
  return static_cast<double>(sweeps * bytes) / seconds / 1e9;
}

}  // namespace

int main() {
  const std::size_t kib[] = {16, 64, 128, 256, 512, 768, 1024, 1536, 2048, 4096, 8192};
  const int threads = omp_get_max_threads();
  std::printf("working set per thread    GB/s per thread (%d thread%s at once)\n", threads, threads > 1 ? "s" : "");
  for (std::size_t size : kib) {
    std::vector<double> rates(threads);
#pragma omp parallel num_threads(threads)
    rates[omp_get_thread_num()] = read_rate(size * 1024);
    std::printf("%8zu KiB               ", size);
    for (double r : rates) std::printf(" %6.1f", r);
    std::printf("\n");
  }
}
