// The cache behind acquire_block / release_block (see block_cache.h). Under AddressSanitizer a
// cached block is poisoned until it is handed out again, so a use after free still reports.
#include "common/block_cache.h"

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

struct CachedBlock {
  void* data;
  std::size_t bytes;
};

// Every cached block has at least kMinCachedBytes, so this many entries always suffice.
constexpr std::size_t kMaxBlocks = kMaxCachedBytes / kMinCachedBytes;

struct BlockCache {
  BlockCache() { blocks.reserve(kMaxBlocks); }
  std::mutex mutex;
  std::vector<CachedBlock> blocks;  // oldest first
  std::size_t cached_bytes = 0;
};

// Never destroyed: a buffer may be freed during interpreter shutdown, after static destructors.
BlockCache& cache() {
  static BlockCache* instance = new BlockCache;
  return *instance;
}

}  // namespace

void* acquire_block(std::size_t bytes) {
  if (bytes >= kMinCachedBytes) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (std::size_t i = c.blocks.size(); i-- > 0;) {  // newest first: likeliest still in cache
      if (c.blocks[i].bytes != bytes) continue;
      void* block = c.blocks[i].data;
      c.blocks.erase(c.blocks.begin() + static_cast<std::ptrdiff_t>(i));
      c.cached_bytes -= bytes;
      PYRNN_UNPOISON_BLOCK(block, bytes);
      return block;
    }
  }
  return std::aligned_alloc(kBlockAlignment, bytes);
}

void release_block(void* block, std::size_t bytes) noexcept {
  if (block == nullptr) return;
  if (bytes < kMinCachedBytes || bytes > kMaxCachedBytes) {
    std::free(block);
    return;
  }
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::size_t evicted = 0;
  for (; c.cached_bytes + bytes > kMaxCachedBytes; ++evicted) {
    CachedBlock& old = c.blocks[evicted];
    c.cached_bytes -= old.bytes;
    PYRNN_UNPOISON_BLOCK(old.data, old.bytes);
    std::free(old.data);
  }
  c.blocks.erase(c.blocks.begin(), c.blocks.begin() + static_cast<std::ptrdiff_t>(evicted));
  c.blocks.push_back({block, bytes});  // never reallocates: see kMaxBlocks
  c.cached_bytes += bytes;
  PYRNN_POISON_BLOCK(block, bytes);
}

}  // namespace pyrnn
