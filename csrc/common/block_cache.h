// Where AlignedBuffer's memory comes from: 64-byte aligned blocks, with the large ones that are
// freed kept for the next call. A training loop allocates the same few workspaces and tapes
// call after call; from malloc, each of those (above glibc's mmap threshold, or at the top of
// the heap when it is trimmed) comes back as fresh pages, and first-touch page faults then cost
// as much as a fifth of an LSTM training step at H = 128 (measured: ~500 faults per forward).
// A block of at least kMinCachedBytes is cached when freed; one of exactly the same size is
// reused. The cache holds at most kCacheFloorBytes, or more while pyrnn has less in use than the
// most it ever had (peak - in use: a training loop at H = 1024 cycles ~200 MB of tapes and
// workspaces), and never more than kMaxCachedBytes; the oldest blocks go first. Blocks of
// kHugePageMinBytes or more sit on 2 MiB boundaries and are offered to transparent huge pages.
// Thread-safe (one mutex, taken per allocation, never per step). Compiled once (ISA-independent).
#pragma once

#include <cstddef>

namespace pyrnn {

inline constexpr std::size_t kBlockAlignment = 64;  // of every block, cached or not
inline constexpr std::size_t kMinCachedBytes = std::size_t(64) << 10;
inline constexpr std::size_t kCacheFloorBytes = std::size_t(64) << 20;
inline constexpr std::size_t kMaxCachedBytes = std::size_t(512) << 20;
inline constexpr std::size_t kHugePageMinBytes = std::size_t(4) << 20;

// A block of `bytes` (a multiple of 64), 64-byte aligned, uninitialised; nullptr when out of memory.
void* acquire_block(std::size_t bytes);
// Gives back a block from acquire_block(bytes), with the same `bytes`. nullptr is ignored.
void release_block(void* block, std::size_t bytes) noexcept;

}  // namespace pyrnn
