// The arguments of an attention call, shared by every backend's kernels and every attention policy
// (parallel/attention.hpp), so that the contract is written once instead of as 7–11 loose arguments:
//
//   AttentionInputs<T>   Q, K, V views (into the packed qkv [B, L, 3, H, d]), the shape, the scale
//   AttentionOutputs<T>  what a forward writes: out [B, L, H, d] and lse [batch, heads, q_len]
//   SavedAttention<T>    the same, read-only: what a backward reads of its forward
//   AttentionGrads<T>    what a backward writes: dQ, dK, dV (views into the packed d_qkv)
//
// Element type T (float, or bf16 storage) is the activations'; the log-sum-exp, the backward's
// delta and the softmax scale are Accum<T> (kernels/element.hpp): fp32 for fp32 and bf16 elements,
// double only for double (the CPU kernels' finite-difference tests). Non-owning; the memory is the
// backend's.
#pragma once

#include "sfm/kernels/element.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

template <class T>
struct AttentionInputs {
  InHeads<T> q, k, v;
  AttentionShape shape;
  Accum<T> scale;  // softmax(scale · Q Kᵀ)
};

template <class T>
struct SavedAttention {
  InHeads<T> out;
  const Accum<T>* lse;  // [batch, heads, shape.q_len]
};

template <class T>
struct AttentionOutputs {
  HeadsView<T> out;
  Accum<T>* lse;  // [batch, heads, shape.q_len]

  SavedAttention<T> saved() const { return {out, lse}; }
};

template <class T>
struct AttentionGrads {
  HeadsView<T> d_q, d_k, d_v;
};

}  // namespace sfm
