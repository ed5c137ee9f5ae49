// Store: the key → bytes interface under every Zarr array (local files, HTTP(S), S3).
//
// Keys are '/'-separated paths relative to the store root ("data/chunked_012/.zarray",
// "amplitude/c/0/1/2"). A store must refuse keys that could escape its root. Reads of many keys
// go through get_many so that network stores can keep many requests in flight, or through get_each,
// which hands each value to the caller as soon as it is read (the Zarr reader decodes one chunk
// while the next ones are still on the way) from buffers the store may reuse, or through
// get_chained, where the receiver of a value may ask for more reads (a blosc chunk's header says
// which byte ranges of it a box needs), which network stores start at once beside those in flight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/thread_pool.hpp"

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

// Receives value `index` of a get_each: its bytes, valid only during the call, or std::nullopt
// when the key does not exist.
using ValueSink = std::function<void(size_t index, std::optional<std::span<const std::byte>> value)>;

// Asks a get_chained for one more read; `tag` comes back with its value.
using ReadMore = std::function<void(StoreRequest request, size_t tag)>;
// Receives a value of get_chained: the tag of its read (the request's index for the first ones), the
// value as in ValueSink, and `more` to ask for further reads.
using ChainedSink =
    std::function<void(size_t tag, std::optional<std::span<const std::byte>> value, const ReadMore& more)>;

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

  // Many reads at once, each value handed to `sink` as soon as it is read rather than all returned
  // together. Sink calls may run at the same time on `pool`'s threads and the caller's, once per
  // request; get_each returns when all have returned and rethrows the first exception a read or a
  // sink raised. This default reads everything with get_many, then runs the sinks on `pool`.
  virtual void get_each(std::span<const StoreRequest> requests, ThreadPool& pool, const ValueSink& sink) {
    std::vector<std::optional<Bytes>> values = get_many(requests);
    SFM_CHECK(values.size() == requests.size(), describe(), ": get_many returned ", values.size(), " results for ",
              requests.size(), " requests");
    pool.parallel_for(values.size(), [&](size_t i) {
      sink(i, values[i] ? std::optional<std::span<const std::byte>>(*values[i]) : std::nullopt);
    });
  }

  // get_each, where a sink may ask for more reads once it has seen a value. Sinks run as in get_each,
  // once per read, those asked for later included; returns when every read and sink has finished and
  // rethrows the first exception. This default reads in rounds of get_each (the reads asked for during
  // one round make the next); stores that can start a read while others run override it.
  virtual void get_chained(std::span<const StoreRequest> requests, ThreadPool& pool, const ChainedSink& sink) {
    std::vector<StoreRequest> round(requests.begin(), requests.end());
    std::vector<size_t> tags(round.size());
    for (size_t i = 0; i < tags.size(); ++i) tags[i] = i;
    while (!round.empty()) {
      std::vector<StoreRequest> next;
      std::vector<size_t> next_tags;
      std::mutex mutex;
      const ReadMore more = [&](StoreRequest request, size_t tag) {
        std::lock_guard lock(mutex);
        next.push_back(std::move(request));
        next_tags.push_back(tag);
      };
      get_each(round, pool, [&](size_t i, std::optional<std::span<const std::byte>> value) { sink(tags[i], value, more); });
      round = std::move(next);
      tags = std::move(next_tags);
    }
  }

  // Writes (local stores; network stores may throw "read-only store").
  virtual void set(const std::string& key, std::span<const std::byte> value) = 0;

  // Human-readable root, used in error messages ("file:///data/x.zarr", "s3://bucket/prefix").
  virtual std::string describe() const = 0;
};

}  // namespace sfm::io
