// A move-only, 64-byte aligned, uninitialised array. Sizes are checked for overflow;
// a failed allocation throws std::bad_alloc (MemoryError in Python).
// Sanitizer builds (PYRNN_POISON_UNINITIALISED, set by CMake's PYRNN_SANITIZE) fill fresh memory
// with 0xFF bytes, a NaN in float and double (and -1 in integers): a kernel that reads workspace
// it never wrote then computes with NaN, which the tests against the oracle catch. ASan itself
// does not report reads of uninitialised heap memory, and a fresh page of zeros would hide them.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace pyrnn {

using index_t = std::ptrdiff_t;

inline constexpr std::size_t kBufferAlignment = 64;

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
    const index_t bytes = checked_mul(count, static_cast<index_t>(sizeof(T)));
    const std::size_t rounded =
        (static_cast<std::size_t>(bytes) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    data_ = static_cast<T*>(std::aligned_alloc(kBufferAlignment, rounded));
    if (data_ == nullptr) throw std::bad_alloc();
#ifdef PYRNN_POISON_UNINITIALISED
    std::memset(static_cast<void*>(data_), 0xFF, rounded);
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
      std::free(data_);
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  void fill_zero() {
    if (data_ != nullptr) std::memset(static_cast<void*>(data_), 0, sizeof(T) * static_cast<std::size_t>(size_));
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  T* data_ = nullptr;
  index_t size_ = 0;
};

}  // namespace pyrnn
