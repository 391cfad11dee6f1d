// The library-wide thread count (see threads.h).
#include "common/threads.h"

#include <omp.h>

#include <atomic>

namespace pyrnn {
namespace {

std::atomic<int>& thread_count() {
  static std::atomic<int> count{omp_get_max_threads()};
  return count;
}

}  // namespace

int num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_count().store(n, std::memory_order_relaxed); }

}  // namespace pyrnn
