// Store: the key → bytes interface under every Zarr array (local files, HTTP(S), S3).
//
// Keys are '/'-separated paths relative to the store root ("data/chunked_012/.zarray",
// "amplitude/c/0/1/2"). A store must refuse keys that could escape its root. Reads of many keys
// go through get_many so that network stores can keep many requests in flight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sfm::io {

using Bytes = std::vector<std::byte>;

// A byte range of one key: [offset, offset + length). length == -1 means "to the end";
// offset < 0 means "the last -offset bytes" (a suffix read, used for shard indexes at the end).
struct ByteRange {
  int64_t offset = 0;
  int64_t length = -1;
};

struct StoreRequest {
  std::string key;
  std::optional<ByteRange> range = std::nullopt;  // whole value when empty
};

class Store {
 public:
  virtual ~Store() = default;

  // The value of `key` (or the requested range of it); std::nullopt when the key does not exist.
  // Any other failure (I/O error, HTTP error after retries, refused key) throws sfm::Error
  // naming the store and key.
  virtual std::optional<Bytes> get(const StoreRequest& request) = 0;

  // Many reads at once, results in request order. Network stores run them concurrently.
  virtual std::vector<std::optional<Bytes>> get_many(std::span<const StoreRequest> requests) {
    std::vector<std::optional<Bytes>> results;
    results.reserve(requests.size());
    for (const StoreRequest& request : requests) results.push_back(get(request));
    return results;
  }

  // Writes (local stores; network stores may throw "read-only store").
  virtual void set(const std::string& key, std::span<const std::byte> value) = 0;

  // Human-readable root, used in error messages ("file:///data/x.zarr", "s3://bucket/prefix").
  virtual std::string describe() const = 0;
};

}  // namespace sfm::io
