// The library-wide thread count: read once at the start of every native call and passed to
// each OpenMP region explicitly, so a change from one Python thread never alters another's
// running call. Starts at omp_get_max_threads(), which honours OMP_NUM_THREADS.
#pragma once

namespace pyrnn {

int num_threads();
void set_num_threads(int n);  // n >= 1, checked by the caller

}  // namespace pyrnn
