// Dense matrix product for the all-steps projections, the recurrence and the gradients (per ISA).
//   C (m x n) = op(A) * B + beta * C,  row-major, unit column stride;
//   op(A) = A stored (m x k, row stride lda), or A^T with A stored (k x m, row stride lda);
//   B stored (k x n, row stride ldb). beta == 0 never reads C (it may hold NaN).
//
// BLIS-style blocking (sizes and micro-kernel per ISA in gemm/config.h):
//   for jc in n by NC:  for pc in k by KC:  pack B[pc:+KC, jc:+NC] into NR-wide panels (shared)
//     for ic in this thread's rows by MC:  pack op(A)[ic:+MC, pc:+KC] into MR-high panels (private)
//       for each NR panel:  for each MR tile:  micro-kernel (gemm/ukernel.h) on a KC-deep tile.
// Products with m <= stream_max_m (the recurrence's batches) pack no B: gemm/stream.h streams
// B's rows through an accumulator block in L1, stream_rows rows of op(A) at a time. Narrow
// products (n well below NR) run the same blocking on the config's narrow tile.
//
// Threads (OpenMP, num_threads(threads), serial below kGemmParallelFlops) split C into a grid of
// row ranges (whole MR tiles) x column ranges (whole NR panels of each NC block); they never split
// k. Every element of C is summed by one thread in a fixed order: over each KC block in increasing
// k from zero, then added to C block after block; the blocking does not depend on the thread
// count, so neither does any bit of the result.
#pragma once

#include <omp.h>

#include "gemm/pack.h"
#include "gemm/stream.h"
#include "gemm/ukernel.h"

namespace pyrnn::PYRNN_ISA {

// Below this many flops a product runs on one thread (the fork/join costs more than it saves).
inline constexpr double kGemmParallelFlops = 1 << 18;

// Whether gemm() splits an m x n x k product between `threads` threads.
inline bool gemm_runs_parallel(index_t m, index_t n, index_t k, int threads) {
  return threads > 1 && 2.0 * double(m) * double(n) * double(k) >= kGemmParallelFlops;
}

namespace gemm_detail {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline index_t min_of(index_t a, index_t b) { return a < b ? a : b; }

// The part [lo, hi) of [0, count) that member idx of parts gets (contiguous, sizes differ by <= 1).
inline void split_range(index_t count, index_t parts, index_t idx, index_t& lo, index_t& hi) {
  lo = count * idx / parts;
  hi = count * (idx + 1) / parts;
}

// Values from one packed A panel (MR x kc) to the next on the blocked path: whole cache lines and
// one more, so that the same k step of consecutive panels falls in different L1 sets. Unpadded,
// 6 x 512 floats is 12 KiB, a multiple of 4 KiB: the transposed packing's stores to the 32
// panels of an A block (gemm/pack.h) all went to one 8-way set, and packing took ~10% of the
// weight-gradient products.
template <typename T>
index_t a_panel_stride(index_t kc, index_t mr) {
  return (ceil_div(kc * mr, kLineValues<T>) + 1) * kLineValues<T>;
}

template <typename T>
struct GemmArgs {
  bool transpose_a;
  index_t m, n, k;
  const T* a;
  index_t lda;
  const T* b;
  index_t ldb;
  T beta;
  T* c;
  index_t ldc;
};

// One thread's share of a product with m > stream_max_m, on MR x NR tiles (the main or the
// narrow tile). Every thread of the team runs the same jc/pc loops (so all reach the barriers);
// b_block is shared, a_block is the thread's own.
template <typename T, int MR, int NR, bool kAInPlace>
void gemm_thread(const GemmArgs<T>& g, int nth, int tid, T* b_block, T* a_block) {
  using Cfg = GemmConfig<T>;
  constexpr index_t KC = Cfg::kc, MC = Cfg::mc / MR * MR, NC = Cfg::nc;
  static_assert(MC > 0 && NC % NR == 0, "MC must hold a tile, NC whole panels");

  // Thread grid. Split columns when C is no taller than wide and has at least two panels per
  // thread: each thread then packs and reads only its own panels of B, in its own part of
  // b_block, with no barrier, and the A block that every thread packs is small. Otherwise split
  // rows when there are enough MR tiles to balance (the threads share the B panels they pack),
  // else columns. Measured with 2 threads on Zen 4: the input projection of a 100-step sequence
  // with B = 1, (100 x 64) x (64 x 512), ran at 155 GF/s with rows and 197 with columns; taller
  // products (the weight gradients, the large-batch projections) are faster with rows.
  const index_t row_tiles = ceil_div(g.m, MR), block_panels = ceil_div(min_of(g.n, NC), NR);
  const bool split_columns = g.m <= g.n && block_panels >= 2 * index_t(nth);
  const int tm = !split_columns && row_tiles >= 4 * index_t(nth) ? nth : 1, tn = nth / tm;
  const int ti = tid / tn, tj = tid % tn;
  index_t t0, t1;
  split_range(row_tiles, tm, ti, t0, t1);
  const index_t r0 = t0 * MR, r1 = min_of(t1 * MR, g.m);
  // Where this thread's panels go: with tm > 1 panel jp sits at jp in the shared b_block; with
  // tm == 1 the thread's first panel sits at the start of its own part (gemm() sizes b_block for
  // tn parts of ceil(block_panels / tn) panels of the deepest kc).
  const bool private_panels = tm == 1 && tn > 1;
  T* const panels_base = private_panels ? b_block + tj * ceil_div(block_panels, tn) * min_of(g.k, KC) * NR : b_block;

  for (index_t jc = 0; jc < g.n; jc += NC) {
    const index_t nc = min_of(NC, g.n - jc), panels = ceil_div(nc, NR);
    index_t pj0, pj1;
    split_range(panels, tn, tj, pj0, pj1);
    const index_t origin = private_panels ? pj0 : 0;  // the panel at panels_base
    for (index_t pc = 0; pc < g.k; pc += KC) {
      const index_t kc = min_of(KC, g.k - pc), a_panel = a_panel_stride<T>(kc, MR);
      const T beta = pc == 0 ? g.beta : T(1);
      // Each column group's panels are packed by the tm threads that will read them.
      index_t q0, q1;
      split_range(pj1 - pj0, tm, ti, q0, q1);
      if (tm > 1) {  // the panels of the previous block are still read by other threads
#pragma omp barrier
      }
      pack_b<T, NR>(pj0 + q0 - origin, pj0 + q1 - origin, jc + origin * NR, nc - origin * NR, pc, kc, g.b, g.ldb,
                    panels_base);
      if (tm > 1) {
#pragma omp barrier
      }
      for (index_t ic = r0; ic < r1; ic += MC) {
        const index_t mc = min_of(MC, r1 - ic);
        const bool a_in_place = kAInPlace && !g.transpose_a;  // see gemm/config.h
        if (!a_in_place) pack_a<T, MR>(g.transpose_a, ic, mc, MR, pc, kc, g.a, g.lda, a_panel, a_block);
        for (index_t jp = pj0; jp < pj1; ++jp) {
          const index_t cols = min_of(NR, nc - jp * NR);
          const T* panel = panels_base + (jp - origin) * kc * NR;
          T* c_panel = g.c + ic * g.ldc + jc + jp * NR;
          for (index_t ir = 0; ir < mc; ir += MR) {
            const int rows = int(min_of(MR, mc - ir));
            if (a_in_place)
              gemm_ukernel_rows<T, MR, NR, true>(rows, kc, g.a + (ic + ir) * g.lda + pc, g.lda, panel, beta,
                                                 c_panel + ir * g.ldc, g.ldc, cols);
            else
              gemm_ukernel_rows<T, MR, NR, false>(rows, kc, a_block + ir / MR * a_panel, 0, panel, beta,
                                                  c_panel + ir * g.ldc, g.ldc, cols);
          }
        }
      }
    }
  }
}

// One thread's columns of a product with m <= stream_max_m (gemm/stream.h).
template <typename T>
void gemm_stream_thread(const GemmArgs<T>& g, int nth, int tid, T* a_block) {
  using Cfg = GemmConfig<T>;
  constexpr index_t SC = Cfg::stream_cols;
  constexpr int SR = int(Cfg::stream_rows);
  index_t q0, q1;
  split_range(ceil_div(g.n, Cfg::nr), nth, tid, q0, q1);
  const index_t n0 = q0 * Cfg::nr, n1 = min_of(q1 * Cfg::nr, g.n);
  if (n0 >= n1) return;
  alignas(64) T t[SR * SC];  // the accumulator block (16 KiB): on the stack, no allocation per call
  const index_t blocks = ceil_div(g.m, SR), block_h = ceil_div(g.m, blocks);
  for (index_t pc = 0; pc < g.k; pc += Cfg::kc) {
    const index_t kc = min_of(Cfg::kc, g.k - pc);
    const T beta = pc == 0 ? g.beta : T(1);
    pack_a<T, SR>(g.transpose_a, 0, g.m, block_h, pc, kc, g.a, g.lda, SR * kc, a_block);
    for (index_t j0 = n0; j0 < n1; j0 += SC) {
      const index_t w = min_of(SC, n1 - j0);
      for (index_t i0 = 0, blk = 0; i0 < g.m; i0 += block_h, ++blk)
        with_static_count<SR>(min_of(block_h, g.m - i0), [&](auto rows) {
          gemm_stream_block<T, SR, decltype(rows)::value, SC>(kc, a_block + blk * SR * kc, g.b + pc * g.ldb + j0,
                                                              g.ldb, beta, g.c + i0 * g.ldc + j0, g.ldc, w, t);
        });
    }
  }
}

}  // namespace gemm_detail

template <typename T>
void gemm(bool transpose_a, index_t m, index_t n, index_t k, const T* a, index_t lda, const T* b, index_t ldb,
          T beta, T* c, index_t ldc, int threads) {
  using Cfg = GemmConfig<T>;
  using gemm_detail::min_of;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  const bool stream = m <= Cfg::stream_max_m;
  const bool narrow = !stream && 5 * gemm_detail::ceil_div(n, Cfg::narrow_nr) * Cfg::narrow_nr <
                                     4 * gemm_detail::ceil_div(n, Cfg::nr) * Cfg::nr;
  const index_t mr = narrow ? Cfg::narrow_mr : Cfg::mr, nr = narrow ? Cfg::narrow_nr : Cfg::nr;
  const bool parallel = gemm_runs_parallel(m, n, k, threads);
  const int team = parallel ? threads : 1;

  // Buffers sized for the largest block this product has; per-thread ones on 64-byte boundaries.
  const index_t kc = min_of(k, Cfg::kc);
  // A block rows: whole panels of MR rows, or of stream_rows rows on the streaming path.
  const index_t mc = stream ? gemm_detail::ceil_div(m, Cfg::stream_rows) * Cfg::stream_rows
                            : min_of(gemm_detail::ceil_div(m, mr) * mr, Cfg::mc / mr * mr);
  const index_t nc = min_of(gemm_detail::ceil_div(n, nr) * nr, Cfg::nc);
  const index_t a_values = stream ? mc * kc : mc / mr * gemm_detail::a_panel_stride<T>(kc, mr);
  const index_t a_stride = gemm_detail::ceil_div(a_values, kLineValues<T>) * kLineValues<T>;
  // B panels: nc columns of one NC block, and room for the rounding when threads split them
  // into private parts (gemm_thread).
  AlignedBuffer<T> b_block(stream ? 0 : checked_mul(kc, nc + (team - 1) * nr));
  AlignedBuffer<T> a_blocks(checked_mul(team, a_stride));

  const gemm_detail::GemmArgs<T> g{transpose_a, m, n, k, a, lda, b, ldb, beta, c, ldc};
  const auto thread_share = [&](int nth, int tid) {
    if (stream)
      gemm_detail::gemm_stream_thread(g, nth, tid, a_blocks.data() + tid * a_stride);
    else if (narrow)
      gemm_detail::gemm_thread<T, int(Cfg::narrow_mr), int(Cfg::narrow_nr), true>(g, nth, tid, b_block.data(),
                                                                                a_blocks.data() + tid * a_stride);
    else
      gemm_detail::gemm_thread<T, int(Cfg::mr), int(Cfg::nr), Cfg::a_in_place>(g, nth, tid, b_block.data(),
                                                                               a_blocks.data() + tid * a_stride);
  };
  if (!parallel) {  // no OpenMP construct at all: even an if(false) region made a futex call
    thread_share(1, 0);
    return;
  }
#pragma omp parallel num_threads(team)
  thread_share(omp_get_num_threads(), omp_get_thread_num());
}

// dst[j] = sum over rows r of src[r * ld + j], summed in row order (thread-count independent).
template <typename T>
void column_sums(index_t rows, index_t cols, const T* src, index_t ld, T* dst) {
  for (index_t j = 0; j < cols; ++j) dst[j] = T(0);
  for (index_t r = 0; r < rows; ++r) {
    const T* row = src + r * ld;
    for (index_t j = 0; j < cols; ++j) dst[j] += row[j];
  }
}

// dst (cols x rows, row stride ldd) = src^T, src (rows x cols, row stride lds).
template <typename T>
void transpose(index_t rows, index_t cols, const T* src, index_t lds, T* dst, index_t ldd) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) dst[j * ldd + r] = src[r * lds + j];
}

}  // namespace pyrnn::PYRNN_ISA
