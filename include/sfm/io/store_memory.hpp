// MemoryStore: a Store held in a map in memory, for tests and for building a dataset before
// copying it elsewhere. Thread-safe; supports byte ranges (including suffix reads) and listing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/zarr/listable.hpp"

namespace sfm::io {

// The bytes of `value` selected by `range` (a suffix when offset < 0); the part that exists.
inline Bytes slice_range(std::span<const std::byte> value, const std::optional<ByteRange>& range) {
  if (!range) return Bytes(value.begin(), value.end());
  const int64_t size = int64_t(value.size());
  int64_t begin = range->offset < 0 ? std::max<int64_t>(0, size + range->offset) : std::min(range->offset, size);
  int64_t end = range->offset < 0 || range->length < 0 ? size : std::min(size, begin + range->length);
  return Bytes(value.begin() + begin, value.begin() + std::max(begin, end));
}

class MemoryStore : public Store, public zarr::ListableStore {
 public:
  explicit MemoryStore(std::string name = "memory") : name_(std::move(name)) {}

  std::optional<Bytes> get(const StoreRequest& request) override {
    std::lock_guard lock(mutex_);
    auto it = values_.find(request.key);
    if (it == values_.end()) return std::nullopt;
    return slice_range(it->second, request.range);
  }
  void set(const std::string& key, std::span<const std::byte> value) override {
    SFM_CHECK(!key.empty() && key.find("..") == std::string::npos && key.front() != '/', describe(), ": refused key '", key, "'");
    std::lock_guard lock(mutex_);
    values_[key] = Bytes(value.begin(), value.end());
  }
  std::string describe() const override { return "memory://" + name_; }

  std::vector<std::string> list_prefix(const std::string& prefix) const override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (auto it = values_.lower_bound(prefix); it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      out.push_back(it->first);
    return out;
  }
  bool erase(const std::string& key) {
    std::lock_guard lock(mutex_);
    return values_.erase(key) > 0;
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return values_.size();
  }

 private:
  std::string name_;
  std::map<std::string, Bytes> values_;
  mutable std::mutex mutex_;
};

}  // namespace sfm::io
