// Multi-head softmax attention kernels (CPU), non-causal, returning the log-sum-exp.
//
// Q, K, V and the output are addressed through HeadsView, so the model can run attention straight
// on the packed qkv projection ([B, L, 3, H, d]) and write [B, L, H, d] for the output projection,
// without split/merge copies. Forward returns lse[b, h, i] = log Σ_j exp(s_ij), the statistic that
// lets partial results over key blocks be merged exactly (ring attention) and lets the backward
// recompute the probabilities instead of storing them: P = exp(S − lse).
//
// The whole-sequence forms are the block forms of attention_blocks.hpp with every row valid, so the
// single-rank model and the context-parallel policies run the same arithmetic.
#pragma once

#include <cstdint>
#include <memory>

#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cpu/attention_blocks.hpp"
#include "sfm/kernels/cpu/backend.hpp"

namespace sfm {

// out = softmax(scale · Q Kᵀ) V per (batch, head); lse [batch, heads, q_len] (contiguous).
template <class T>
void attention_forward(Cpu, AttentionOutputs<T> o, const AttentionInputs<T>& in) {
  attention_forward_block(Cpu{}, o, in, ValidRows{in.shape.q_len, in.shape.k_len});
}

// Backward, recomputing P = exp(scale·QKᵀ − lse):
//   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
// d_q, d_k, d_v are overwritten (they may be parts of one packed d_qkv buffer, as in the model).
template <class T>
void attention_backward(Cpu, AttentionGrads<T> g, InHeads<T> d_out, SavedAttention<T> fwd, const AttentionInputs<T>& in) {
  const AttentionShape& s = in.shape;
  // Left uninitialised: attention_backward_delta writes every row (all q_len queries are valid).
  const auto delta = std::make_unique_for_overwrite<Accum<T>[]>(size_t(s.batch * s.heads * s.q_len));
  attention_backward_delta(Cpu{}, delta.get(), d_out, fwd.out, s, s.q_len);
  zero_heads(Cpu{}, g.d_q, s.batch, s.heads, s.q_len, s.head_dim);
  zero_heads(Cpu{}, g.d_k, s.batch, s.heads, s.k_len, s.head_dim);
  zero_heads(Cpu{}, g.d_v, s.batch, s.heads, s.k_len, s.head_dim);
  attention_backward_block(Cpu{}, g, d_out, fwd.lse, delta.get(), in, ValidRows{s.q_len, s.k_len});
}

}  // namespace sfm
