// ShardLayout: how ZeRO splits the flat parameter layout across the ranks of a data-parallel group.
//
// Each parameter group (a transformer block, the stem, ...) is one bucket. A bucket is padded with
// zeros to a multiple of P and cut into P equal chunks; rank r owns chunk r of every bucket. So a
// bucket's gradients reduce-scatter and its parameters all-gather as one contiguous buffer, and a
// rank's shard (its chunks, concatenated) is 1/P of the padded total. The padding is explicit and
// never silently changes the stage.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/model/params.hpp"

namespace sfm {

struct ShardBucket {
  int64_t begin = 0, end = 0;   // the group's flat range (unpadded)
  int64_t padded_offset = 0;    // where the bucket starts in the padded layout
  int64_t padded_size = 0;      // a multiple of P
  int64_t chunk = 0;            // padded_size / P
  int64_t shard_offset = 0;     // where this rank's chunk starts in its shard buffer

  // The flat (unpadded) range of rank r's chunk; empty when it is all padding.
  int64_t chunk_begin(int r) const { return std::min(end, begin + int64_t(r) * chunk); }
  int64_t chunk_end(int r) const { return std::min(end, begin + int64_t(r + 1) * chunk); }
};

class ShardLayout {
 public:
  ShardLayout(const ParamTable& table, int ranks, int rank) : ranks_(ranks), rank_(rank) {
    SFM_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "ShardLayout: rank ", rank, " of ", ranks);
    for (const ParamGroup& g : table.groups()) {
      ShardBucket b;
      b.begin = g.begin, b.end = g.end;
      b.padded_size = (g.size() + ranks - 1) / ranks * ranks;
      b.chunk = b.padded_size / ranks;
      b.padded_offset = padded_size_;
      b.shard_offset = shard_size_;
      padded_size_ += b.padded_size;
      shard_size_ += b.chunk;
      buckets_.push_back(b);
    }
  }

  int ranks() const { return ranks_; }
  int rank() const { return rank_; }
  const std::vector<ShardBucket>& buckets() const { return buckets_; }
  int64_t padded_size() const { return padded_size_; }  // Σ padded bucket sizes
  int64_t shard_size() const { return shard_size_; }    // this rank's share: padded_size / P

  // Copies between the unpadded flat layout and the padded one (padding left untouched).
  template <class T>
  void to_padded(const T* flat, T* padded) const {
    for (const ShardBucket& b : buckets_) std::copy(flat + b.begin, flat + b.end, padded + b.padded_offset);
  }
  template <class T>
  void from_padded(const T* padded, T* flat) const {
    for (const ShardBucket& b : buckets_)
      std::copy(padded + b.padded_offset, padded + b.padded_offset + (b.end - b.begin), flat + b.begin);
  }

 private:
  int ranks_, rank_;
  std::vector<ShardBucket> buckets_;
  int64_t padded_size_ = 0, shard_size_ = 0;
};

}  // namespace sfm
