// SequenceBlocks: how a sequence of tokens splits into contiguous blocks, one per context-parallel
// rank. Attention policies, the MAE mask layout and the model all use this one partition, so they
// agree on which rank holds which token.
//
// Block r holds tokens [start(r), start(r) + valid(r)); sizes differ by at most one (the first
// length % parts blocks hold one more), and every block is stored padded to rows() = ⌈length/parts⌉
// rows, so all ranks exchange buffers of one size. A block is empty only when length < parts.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sfm/core/error.hpp"

namespace sfm {

struct SequenceBlocks {
  int64_t length = 0;  // tokens in the whole sequence
  int parts = 1;       // blocks (context-parallel ranks)

  SequenceBlocks(int64_t length, int parts) : length(length), parts(parts) {
    SFM_CHECK(length >= 0 && parts >= 1, "SequenceBlocks: ", length, " tokens in ", parts, " blocks");
  }

  // Rows of every block's buffer: the largest block.
  int64_t rows() const { return (length + parts - 1) / parts; }
  int64_t start(int r) const { return r * (length / parts) + std::min<int64_t>(r, length % parts); }
  int64_t valid(int r) const { return length / parts + (r < length % parts ? 1 : 0); }
  // Padding rows at the end of block r's buffer.
  int64_t padding(int r) const { return rows() - valid(r); }
  // The block holding token t.
  int owner(int64_t t) const {
    const int64_t small = length / parts, big_blocks = length % parts;
    return t < big_blocks * (small + 1) ? int(t / (small + 1)) : int(big_blocks + (t - big_blocks * (small + 1)) / small);
  }
};

}  // namespace sfm
