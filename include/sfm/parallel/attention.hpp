// Attention policies: how a transformer layer's self-attention runs when the sequence may be
// spread over the ranks of a context-parallel (cp) group. The model calls one interface per layer:
//
//   SequenceBlocks blocks(L)     which rows of the L-token sequence this rank holds (rank r:
//                                tokens [start(r), start(r) + valid(r)), stored in rows() rows)
//   forward(out, lse, q, k, v, shape, scale)
//   backward(d_q, d_k, d_v, d_out, out, lse, q, k, v, shape, scale)
//   workspace_bytes<T>(shape)    scratch the policy holds for such a call (besides the model's
//                                views and the kernels' per-thread score tiles)
//
// `shape` is the global one (q_len = k_len = L, as for a single rank); the views and lse cover this
// rank's blocks(L).rows() rows (lse [batch, heads, rows]). Padded rows (rows past valid(r)) are
// never read as keys; their out and gradients are 0. backward overwrites d_q, d_k, d_v.
//
//   LocalAttention   cp = 1: the backend's attention kernels, the whole sequence on one rank
//   RingAttention    K/V blocks travel round the ring (parallel/attention_ring.hpp)
//   AllGatherKV      all ranks gather all K/V (parallel/attention_all_gather.hpp)
#pragma once

#include <cstddef>
#include <cstdint>

#include "sfm/core/sequence_blocks.hpp"
#include "sfm/kernels/cpu/attention.hpp"
#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/views.hpp"
#include "sfm/parallel/attention_all_gather.hpp"
#include "sfm/parallel/attention_ring.hpp"

namespace sfm {

template <class Backend = Cpu>
struct LocalAttention {
  SequenceBlocks blocks(int64_t length) const { return SequenceBlocks(length, 1); }

  template <class T>
  void forward(HeadsView<T> out, T* lse, InHeads<T> q, InHeads<T> k, InHeads<T> v, AttentionShape s, T scale) const {
    attention_forward(Backend{}, out, lse, q, k, v, s, scale);
  }

  template <class T>
  void backward(HeadsView<T> d_q, HeadsView<T> d_k, HeadsView<T> d_v, InHeads<T> d_out, InHeads<T> out, const T* lse,
                InHeads<T> q, InHeads<T> k, InHeads<T> v, AttentionShape s, T scale) const {
    attention_backward(Backend{}, d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
  }

  template <class T>
  size_t workspace_bytes(AttentionShape) const {
    return 0;
  }
};

}  // namespace sfm
