// What the context-parallel attention policies (RingAttention, AllGatherKV) share: the packed K/V
// block they exchange, the workspace it lives in, and the steps common to both (pack the local
// K/V, fold a block into the running output, hand accumulated dK/dV back to the model's views).
//
// A packed block is [2, batch, heads, rows, head_dim]: K then V, contiguous, so one send_recv or
// all_gather moves it. Gradient accumulators for dK/dV use the same layout. Backend-neutral: the
// kernels are the contract's (kernels/backend.hpp), the workspace is the backend's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "sfm/core/error.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm::context_detail {

// A contiguous [batch, heads, rows, head_dim] buffer for the block shape `s` (rows = q_len).
template <class T>
HeadsView<T> contiguous_heads(T* data, AttentionShape s) {
  return {data, s.heads * s.q_len * s.head_dim, s.q_len * s.head_dim, s.head_dim};
}

// Views of one packed K/V block at `data` for the block shape `s` (q_len = k_len = rows).
template <class T>
struct KvBlock {
  T* data;
  AttentionShape s;

  static int64_t size(AttentionShape s) { return 2 * s.batch * s.heads * s.k_len * s.head_dim; }
  int64_t size() const { return size(s); }
  HeadsView<T> k() const { return contiguous_heads(data, s); }
  HeadsView<T> v() const { return contiguous_heads(data + size() / 2, s); }
  std::span<T> span() const { return {data, size_t(size())}; }
};

// Bytes that `count` elements of T take in a workspace (rounded up to 64, the alignment).
template <class T>
size_t aligned_bytes(int64_t count) {
  return (size_t(count) * sizeof(T) + 63) / 64 * 64;
}

// A byte buffer in the backend's memory, grown on demand, from which a call carves its arrays.
template <class Backend>
class Workspace {
 public:
  // Makes room for `bytes` (the contents are not kept) and starts carving at the beginning.
  void reset(size_t bytes) {
    if (bytes > buffer_.size()) buffer_.assign(bytes, 0);
    used_ = 0;
  }
  // The next `count` elements of T.
  template <class T>
  T* carve(int64_t count) {
    T* p = reinterpret_cast<T*>(buffer_.data() + used_);
    used_ += aligned_bytes<T>(count);
    SFM_CHECK(used_ <= buffer_.size(), "attention workspace: carved ", used_, " bytes of ", buffer_.size());
    return p;
  }

 private:
  typename Backend::template Array<unsigned char> buffer_;
  size_t used_ = 0;
};

// The partition of a policy call's global sequence over `parts` ranks, checked against the shape:
// self-attention (q_len = k_len = the global length).
inline SequenceBlocks sequence_of(AttentionShape s, int parts) {
  SFM_CHECK(s.q_len == s.k_len, "context-parallel attention is self-attention, but q_len ", s.q_len, " != k_len ",
            s.k_len);
  return SequenceBlocks(s.k_len, parts);
}

// The shape of one rank's padded block.
inline AttentionShape block_shape(AttentionShape s, const SequenceBlocks& seq) {
  return {s.batch, s.heads, seq.rows(), seq.rows(), s.head_dim};
}

// What every forward and backward of a policy starts from: the group (P ranks, this one r), how the
// global sequence splits over it, this rank's padded block shape and sizes, and the policy's
// workspace, reset to `bytes`, to carve the pass's arrays from.
template <class Backend, class T>
struct BlockPass {
  int P, r;
  SequenceBlocks seq;
  AttentionShape local;
  int64_t kv_size, stats;  // elements of one packed K/V block; row statistics (one per query row)
  Workspace<Backend>& workspace;

  BlockPass(int parts, int rank, AttentionShape s, Workspace<Backend>& ws, size_t bytes)
      : P(parts), r(rank), seq(sequence_of(s, parts)), local(block_shape(s, seq)), kv_size(KvBlock<T>::size(local)),
        stats(local.batch * local.heads * local.q_len), workspace(ws) {
    workspace.reset(bytes);
  }
  T* carve(int64_t count) { return workspace.template carve<T>(count); }
  KvBlock<T> carve_block() { return {carve(kv_size), local}; }
  Accum<T>* carve_stats() { return workspace.template carve<Accum<T>>(stats); }  // lse or delta, one per query row
};

// Copies the `valid` rows of the local K and V into a packed block (its padding is never read).
template <class Backend, class T>
void pack_kv(Backend be, const KvBlock<T>& kv, InHeads<T> k, InHeads<T> v, int64_t valid) {
  const AttentionShape& s = kv.s;
  copy_heads(be, kv.k(), k, s.batch, s.heads, valid, s.head_dim);
  copy_heads(be, kv.v(), v, s.batch, s.heads, valid, s.head_dim);
}

// Folds the attention of the local queries against one K/V block into `out`: the first block
// writes it, later ones go through `part` and are merged.
template <class Backend, class T>
void forward_block(Backend be, bool first, AttentionOutputs<T> out, AttentionOutputs<T> part, InHeads<T> q,
                   const KvBlock<T>& kv, Accum<T> scale, ValidRows valid) {
  const AttentionInputs<T> block{q, kv.k(), kv.v(), kv.s, scale};
  if (first) {
    attention_forward_block(be, out, block, valid);
  } else {
    attention_forward_block(be, part, block, valid);
    attention_merge(be, out, part.saved(), kv.s);
  }
}

// The model's d_k, d_v ← the accumulated gradients of this rank's keys; padding rows get 0.
template <class Backend, class T>
void unpack_grads(Backend be, HeadsView<T> d_k, HeadsView<T> d_v, const KvBlock<T>& grads, int64_t valid) {
  const AttentionShape& s = grads.s;
  copy_heads(be, d_k, grads.k(), s.batch, s.heads, valid, s.head_dim);
  copy_heads(be, d_v, grads.v(), s.batch, s.heads, valid, s.head_dim);
  const int64_t pad = s.k_len - valid;
  zero_heads(be, HeadsView<T>{d_k.data + valid * d_k.token_stride, d_k.batch_stride, d_k.head_stride, d_k.token_stride},
             s.batch, s.heads, pad, s.head_dim);
  zero_heads(be, HeadsView<T>{d_v.data + valid * d_v.token_stride, d_v.batch_stride, d_v.head_stride, d_v.token_stride},
             s.batch, s.heads, pad, s.head_dim);
}

}  // namespace sfm::context_detail
