// BufferPool: reusable, uninitialised byte buffers for the read path (stored chunks, decoded chunks).
//
// Reading a box fetches and decodes megabytes per chunk; a fresh std::vector<std::byte> for each
// costs a memset of every byte and, for large sizes, page faults on memory the allocator just got
// from the kernel. A pooled buffer is allocated once without initialisation and handed out again
// after its user drops it. get(n) returns a buffer of n bytes with unspecified contents (a new one
// holds an eighth more, for the next value of about the same size); the pool keeps at most
// `max_kept` idle buffers and `max_kept_bytes` in all, dropping the smaller ones first. Thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace sfm::io {

class BufferPool {
  struct Storage {
    std::unique_ptr<std::byte[]> data;
    size_t capacity = 0;
  };

 public:
  // A buffer on loan: its bytes go back to the pool when it is destroyed.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), storage_(std::move(other.storage_)), size_(std::exchange(other.size_, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        storage_ = std::move(other.storage_);
        size_ = std::exchange(other.size_, 0);
      }
      return *this;
    }
    ~Buffer() { release(); }

    std::span<std::byte> bytes() const { return {storage_.data.get(), size_}; }
    size_t size() const { return size_; }

   private:
    friend class BufferPool;
    Buffer(BufferPool* pool, Storage storage, size_t size) : pool_(pool), storage_(std::move(storage)), size_(size) {}
    void release() {
      if (pool_) pool_->put(std::move(storage_));
      pool_ = nullptr;
      size_ = 0;
    }
    BufferPool* pool_ = nullptr;
    Storage storage_;
    size_t size_ = 0;
  };

  explicit BufferPool(size_t max_kept = 32, size_t max_kept_bytes = size_t(256) << 20)
      : max_kept_(max_kept), max_kept_bytes_(max_kept_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // n bytes, contents unspecified: the smallest idle buffer that holds n, else a new one.
  Buffer get(size_t n) {
    {
      std::lock_guard lock(mutex_);
      auto best = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it)
        if (it->capacity >= n && (best == idle_.end() || it->capacity < best->capacity)) best = it;
      if (best != idle_.end()) {
        Storage storage = std::move(*best);
        idle_.erase(best);
        idle_bytes_ -= storage.capacity;
        return Buffer(this, std::move(storage), n);
      }
    }
    // An eighth more than asked, so that the next value of about the same size (chunks compress to
    // slightly different sizes) fits in it too.
    const size_t capacity = n + n / 8;
    return Buffer(this, Storage{std::make_unique_for_overwrite<std::byte[]>(capacity), capacity}, n);
  }

  size_t idle_count() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }
  size_t idle_bytes() const {
    std::lock_guard lock(mutex_);
    return idle_bytes_;
  }

  // The process-wide pool of the read path.
  static BufferPool& shared() {
    static BufferPool pool;
    return pool;
  }

 private:
  void put(Storage storage) {
    if (!storage.data || storage.capacity > max_kept_bytes_) return;
    std::lock_guard lock(mutex_);
    // Room for it by dropping smaller idle buffers first: large ones are the costly ones to remake.
    std::sort(idle_.begin(), idle_.end(), [](const Storage& a, const Storage& b) { return a.capacity > b.capacity; });
    while (!idle_.empty() && (idle_.size() >= max_kept_ || idle_bytes_ + storage.capacity > max_kept_bytes_) &&
           idle_.back().capacity <= storage.capacity) {
      idle_bytes_ -= idle_.back().capacity;
      idle_.pop_back();
    }
    if (idle_.size() >= max_kept_ || idle_bytes_ + storage.capacity > max_kept_bytes_) return;
    idle_bytes_ += storage.capacity;
    idle_.push_back(std::move(storage));
  }

  size_t max_kept_, max_kept_bytes_;
  std::vector<Storage> idle_;
  size_t idle_bytes_ = 0;
  mutable std::mutex mutex_;
};

}  // namespace sfm::io
