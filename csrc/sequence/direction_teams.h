// The threading of both recurrences (per ISA). Each thread owns a fixed share of the work of one
// direction for the whole sequence and meets the other threads of its direction at a barrier
// once or twice per step, or follows their progress (StepProgress, for a group that has several
// members and a call of several steps). With two directions and at least two threads, they run
// concurrently on two groups; otherwise one group runs them one after the other.
// Steps with less work per thread than kMinStepWorkPerThread multiply-adds get fewer threads:
// there a barrier costs more than the work it splits; so do calls with less than
// kMinCallWorkPerThread in all, where waking the team costs more (a streaming call of one step).
// With one thread no parallel region opens.
#pragma once

#include <omp.h>

#include "common/aligned_buffer.h"
#include "common/spin_barrier.h"
#include "common/step_progress.h"
#include "simd/isa.h"

namespace pyrnn::PYRNN_ISA {

// Measured on a Zen 4 pair (B = 1), benchmark runs: a GRU with H = 128 (24 Ki per thread) ran
// 1.1-1.9x faster on two threads; an RNN with H = 128 (8 Ki) 0.5-1.1x, an RNN with H = 64 (2 Ki)
// 0.6x.
inline constexpr double kMinStepWorkPerThread = 16.0 * 1024;
// Streaming steps (T = 1, B = 1, I = 64) on two threads against one: an LSTM with H = 128
// (32 Ki per thread) ran 15% faster, an RNN with H = 256 (32 Ki) 9%, a GRU with H = 128 (24 Ki)
// 4%; an RNN with H = 192 (18 Ki) 16% slower.
inline constexpr double kMinCallWorkPerThread = 24.0 * 1024;

// A thread's place: member `member` of `size` threads working on one direction.
struct TeamSeat {
  int member;
  int size;
  SpinBarrier* barrier;
  StepProgress* progress;  // the group's, when it has several members and the call several steps

  // This member's share [begin, end) of `count` items; share_end_of: member m's end.
  index_t share_begin(index_t count) const { return count * member / size; }
  index_t share_end(index_t count) const { return share_end_of(member, count); }
  index_t share_end_of(int m, index_t count) const { return count * (m + 1) / size; }
};

// Calls body(direction, seat) for every direction, on up to `threads` threads; `work_items` (unit
// blocks) bounds the useful threads per direction, `step_work` is one direction's multiply-adds
// per step, of `steps` steps.
template <typename Body>
void for_each_direction_team(int threads, index_t directions, index_t work_items, index_t steps, double step_work,
                             Body body) {
  const double work = step_work * double(directions);
  while (threads > 1 && (work / threads < kMinStepWorkPerThread || work * double(steps) / threads < kMinCallWorkPerThread))
    --threads;
  if (threads > work_items * directions) threads = static_cast<int>(work_items * directions);
  if (threads <= 1) {
    SpinBarrier alone;
    for (index_t d = 0; d < directions; ++d) body(d, TeamSeat{0, 1, &alone, nullptr});
    return;
  }
  // The barriers are set up for the team asked for before it starts: a `single` inside the
  // region would cost every call one more meeting of the threads (~0.5 us, a tenth of a step of
  // streaming).
  const int group_count = directions == 2 ? 2 : 1, group_size = threads / group_count;
  SpinBarrier barriers[2];
  // StepProgress serves groups that chain steps; set up only then (a streaming call has one).
  // It counts the steps of one direction: each group runs one.
  const bool chain_steps = steps > 1 && group_size > 1;
  StepProgress progress[2];
  for (int g = 0; g < group_count; ++g) {
    barriers[g].reset(group_size);
    if (chain_steps) progress[g].reset(group_size);
  }
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    if (omp_get_num_threads() != threads) {  // OpenMP may give a smaller team: its first thread does all
      if (tid == 0) {
        SpinBarrier alone;
        for (index_t d = 0; d < directions; ++d) body(d, TeamSeat{0, 1, &alone, nullptr});
      }
    } else {
      const int group = tid % group_count, member = tid / group_count;
      if (member < group_size)  // a thread left over from an odd split sits out
        for (index_t d = group; d < directions; d += group_count)
          body(d, TeamSeat{member, group_size, &barriers[group], chain_steps ? &progress[group] : nullptr});
    }
  }
}

}  // namespace pyrnn::PYRNN_ISA
