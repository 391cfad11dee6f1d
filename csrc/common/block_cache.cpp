// The cache behind acquire_block / release_block (see block_cache.h). Under AddressSanitizer a
// cached block is poisoned until it is handed out again, so a use after free still reports.
#include "common/block_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define PYRNN_POISON_BLOCK(block, bytes) ASAN_POISON_MEMORY_REGION(block, bytes)
#define PYRNN_UNPOISON_BLOCK(block, bytes) ASAN_UNPOISON_MEMORY_REGION(block, bytes)
#else
#define PYRNN_POISON_BLOCK(block, bytes) ((void)(block), (void)(bytes))
#define PYRNN_UNPOISON_BLOCK(block, bytes) ((void)(block), (void)(bytes))
#endif

namespace pyrnn {
namespace {

constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

struct CachedBlock {
  void* data;
  std::size_t bytes;
};

// Byte counts cover blocks of kMinCachedBytes or more only; smaller ones go straight to malloc.
struct BlockCache {
  std::mutex mutex;
  std::vector<CachedBlock> blocks;  // oldest first
  std::size_t cached_bytes = 0;
  std::size_t live_bytes = 0;  // handed out, not yet released
  std::size_t peak_bytes = 0;  // the most live_bytes has been

  void hand_out(std::size_t bytes) {
    live_bytes += bytes;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  }

  // Frees the oldest blocks until the cache fits its bounds (block_cache.h).
  void evict_to_bounds() {
    const std::size_t room = std::min(std::max(peak_bytes - live_bytes, kCacheFloorBytes), kMaxCachedBytes);
    std::size_t evicted = 0;
    for (; cached_bytes > room; ++evicted) {
      CachedBlock& old = blocks[evicted];
      cached_bytes -= old.bytes;
      PYRNN_UNPOISON_BLOCK(old.data, old.bytes);
      std::free(old.data);
    }
    blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(evicted));
  }
};

// Never destroyed: a buffer may be freed during interpreter shutdown, after static destructors.
BlockCache& cache() {
  static BlockCache* instance = new BlockCache;
  return *instance;
}

// A block from the system. Large ones start on a 2 MiB boundary and are offered to transparent
// huge pages (a hint: where it fails the block is still good), as NumPy does for its large
// arrays. An LSTM training step at H = 1024, B = 64 (1 thread, Zen 4) ran 6% faster, both its
// forward and backward with no fresh block in either: fewer TLB misses over the tapes are the
// likely cause (the VM gives no counters to confirm it).
void* fresh_block(std::size_t bytes) {
  const bool huge = bytes >= kHugePageMinBytes;
  void* block = nullptr;
  if (posix_memalign(&block, huge ? kHugePageBytes : kBlockAlignment, bytes) != 0) return nullptr;
#if defined(MADV_HUGEPAGE)
  if (huge) madvise(block, bytes / kHugePageBytes * kHugePageBytes, MADV_HUGEPAGE);
#endif
  return block;
}

}  // namespace

void* acquire_block(std::size_t bytes) {
  if (bytes < kMinCachedBytes) return fresh_block(bytes);
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    for (std::size_t i = c.blocks.size(); i-- > 0;) {  // newest first: likeliest still in cache
      if (c.blocks[i].bytes != bytes) continue;
      void* block = c.blocks[i].data;
      c.blocks.erase(c.blocks.begin() + static_cast<std::ptrdiff_t>(i));
      c.cached_bytes -= bytes;
      c.hand_out(bytes);
      PYRNN_UNPOISON_BLOCK(block, bytes);
      return block;
    }
  }
  void* block = fresh_block(bytes);
  if (block == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(c.mutex);
  c.hand_out(bytes);
  c.evict_to_bounds();
  return block;
}

void release_block(void* block, std::size_t bytes) noexcept {
  if (block == nullptr) return;
  if (bytes < kMinCachedBytes) {
    std::free(block);
    return;
  }
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.live_bytes -= bytes;
  if (bytes > kMaxCachedBytes) {
    std::free(block);
    return;
  }
  try {
    c.blocks.push_back({block, bytes});
  } catch (...) {  // no room for the entry: the block goes back to the system instead
    std::free(block);
    return;
  }
  c.cached_bytes += bytes;
  PYRNN_POISON_BLOCK(block, bytes);
  c.evict_to_bounds();
}

}  // namespace pyrnn
