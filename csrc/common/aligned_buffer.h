// A move-only, 64-byte aligned, uninitialised array. Sizes are checked for overflow;
// a failed allocation throws std::bad_alloc (MemoryError in Python). The memory comes from
// common/block_cache.h, which keeps large freed blocks for the next call.
// Sanitizer builds (PYRNN_POISON_UNINITIALISED, set by CMake's PYRNN_SANITIZE) fill fresh memory
// with 0xFF bytes, a NaN in float and double (and -1 in integers): a kernel that reads workspace
// it never wrote then computes with NaN, which the tests against the oracle catch. ASan itself
// does not report reads of uninitialised heap memory, and a fresh page of zeros would hide them.
#pragma once

#include <cstddef>
#include <cstring>
#include <limits>
#include <new>

#include "common/block_cache.h"

namespace pyrnn {

using index_t = std::ptrdiff_t;

// a * b for non-negative sizes, throwing std::bad_alloc instead of wrapping around.
inline index_t checked_mul(index_t a, index_t b) {
  if (a != 0 && b > std::numeric_limits<index_t>::max() / a) throw std::bad_alloc();
  return a * b;
}

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(index_t count) : size_(count) {
    if (count <= 0) return;
    checked_mul(count, static_cast<index_t>(sizeof(T)));  // throws if the byte count overflows
    data_ = static_cast<T*>(acquire_block(block_bytes()));
    if (data_ == nullptr) {
      size_ = 0;
      throw std::bad_alloc();
    }
#ifdef PYRNN_POISON_UNINITIALISED
    std::memset(static_cast<void*>(data_), 0xFF, block_bytes());
#endif
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      release_block(data_, block_bytes());
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~AlignedBuffer() { release_block(data_, block_bytes()); }

  void fill_zero() {
    if (data_ != nullptr) std::memset(static_cast<void*>(data_), 0, sizeof(T) * static_cast<std::size_t>(size_));
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  // The allocated size: whole 64-byte lines.
  std::size_t block_bytes() const {
    return (sizeof(T) * static_cast<std::size_t>(size_) + kBlockAlignment - 1) / kBlockAlignment * kBlockAlignment;
  }

  T* data_ = nullptr;
  index_t size_ = 0;
};

// An AlignedBuffer that holds up to kInlineBytes in itself (on the stack, for a local) and takes
// a block only for more: the workspaces of a streaming step are this small (LSTM(64, 256): x_proj
// 4 KiB, h 2 KiB, c 1 KiB), and their posix_memalign/free pairs cost a streaming step of
// RNN(64, 256) 5% of its time. A forward keeps three, 12 KiB of the calling thread's stack.
template <typename T>
class ScratchBuffer {
 public:
  static constexpr std::size_t kInlineBytes = 4096;

  explicit ScratchBuffer(index_t count)
      : size_(count), heap_(count > kInline ? count : 0), data_(count > kInline ? heap_.data() : inline_) {
#ifdef PYRNN_POISON_UNINITIALISED
    if (count <= kInline) std::memset(static_cast<void*>(inline_), 0xFF, sizeof(inline_));
#endif
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;

  void fill_zero() {
    if (size_ > 0) std::memset(static_cast<void*>(data_), 0, sizeof(T) * static_cast<std::size_t>(size_));
  }
  T* data() { return data_; }

 private:
  static constexpr index_t kInline = kInlineBytes / sizeof(T);
  alignas(64) T inline_[kInline];
  index_t size_;
  AlignedBuffer<T> heap_;
  T* data_;
};

}  // namespace pyrnn
