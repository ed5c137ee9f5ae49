// A byte-bounded LRU cache of decoded chunks (float32, C order), shared by the reads of one array
// and safe to use from many threads. A null entry records a chunk that does not exist in the store
// (it reads as the fill value). Entries larger than the whole budget are not kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sfm::io::zarr {

using ChunkPtr = std::shared_ptr<const std::vector<float>>;

class ChunkCache {
 public:
  explicit ChunkCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  // The cached chunk (possibly null = missing chunk), or nullopt when not cached.
  std::optional<ChunkPtr> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  void put(const std::string& key, ChunkPtr value) {
    const size_t bytes = cost(key, value);
    std::lock_guard lock(mutex_);
    if (auto it = map_.find(key); it != map_.end()) {
      used_ -= it->second->bytes;
      lru_.erase(it->second);
      map_.erase(it);
    }
    if (bytes > capacity_) return;
    lru_.push_front(Entry{key, std::move(value), bytes});
    map_[key] = lru_.begin();
    used_ += bytes;
    while (used_ > capacity_ && !lru_.empty()) {
      used_ -= lru_.back().bytes;
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }

  void clear() {
    std::lock_guard lock(mutex_);
    lru_.clear();
    map_.clear();
    used_ = 0;
  }
  void set_capacity(size_t bytes) {
    std::lock_guard lock(mutex_);
    capacity_ = bytes;
    while (used_ > capacity_ && !lru_.empty()) {
      used_ -= lru_.back().bytes;
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }
  size_t used_bytes() const {
    std::lock_guard lock(mutex_);
    return used_;
  }
  size_t capacity_bytes() const {
    std::lock_guard lock(mutex_);
    return capacity_;
  }

 private:
  struct Entry {
    std::string key;
    ChunkPtr value;
    size_t bytes;
  };
  static size_t cost(const std::string& key, const ChunkPtr& value) {
    return 96 + key.size() + (value ? value->size() * sizeof(float) : 0);
  }
  size_t capacity_;
  size_t used_ = 0;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
  mutable std::mutex mutex_;
};

}  // namespace sfm::io::zarr
