// Blockwise attention kernels (CUDA): attention of a query block against one key/value block of a
// longer sequence, the pieces that context-parallel policies (parallel/attention.hpp) assemble.
// The twin of kernels/cpu/attention_blocks.hpp, whose header states the semantics; in short:
//
// A block is padded: only ValidRows{queries, keys} of its q_len × k_len rows hold tokens. Padded
// keys are never read (the padding may hold anything) and padded queries get out = 0, lse = −∞ and
// no gradient. attention_merge combines two partial results exactly: with m = max(lse_a, lse_b),
// w_a = exp(lse_a − m), w_b = exp(lse_b − m),
//   out = (w_a·out_a + w_b·out_b) / (w_a + w_b),   lse = m + log(w_a + w_b),
// and leaves (0, −∞) where both are −∞ (no NaN). The block backward recomputes P with the global
// lse and delta and ACCUMULATES into dQ (valid queries) and dK, dV (valid keys).
//
// The forward and backward blocks are the flash kernels of kernels/cuda/attention.cuh (which take
// ValidRows; attention_forward / attention_backward there are the same kernels with every row
// valid), so this file adds only their block entry points and three small kernels: the merge, and
// copy / zero of heads. lse and delta are fp32 [batch, heads, q_len] (row stride q_len, also where
// only the valid rows are real). Everything runs on cuda_context().stream; pointers are device
// memory; nothing synchronises the host.
#pragma once

#include <cmath>
#include <cstdint>

#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cuda/attention.cuh"
#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cuda_detail {

// One warp per row (bh, i) of [batch·heads, q_len]: (out, lse) ← merge of (out, lse) and (part,
// part_lse). Every lane reads both lse values and computes the same weights; lane 0 writes the new
// lse after the warp has read the old one.
template <class T>
__global__ void attention_merge_kernel(HeadsView<T> out, float* lse, HeadsView<const T> part, const float* part_lse,
                                       AttentionShape s) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // bh·q_len + i
  if (row >= s.batch * s.heads * s.q_len) return;  // whole warps: row depends on the warp only
  const int64_t bh = row / s.q_len, i = row % s.q_len, b = bh / s.heads, h = bh % s.heads;
  const float lse_a = lse[row], lse_b = part_lse[row];
  const float m = fmaxf(lse_a, lse_b);
  if (m == -INFINITY) return;  // both empty: (0, −∞) stays
  const float w_a = expf(lse_a - m), w_b = expf(lse_b - m);  // one of them is 1
  const float sum = w_a + w_b;
  const float c_a = w_a / sum, c_b = w_b / sum;
  T* o = head_of(out, b, h) + i * out.token_stride;
  const T* p = head_of(part, b, h) + i * part.token_stride;
  for (int64_t c = lane; c < s.head_dim; c += 32) o[c] = from_f32<T>(c_a * to_f32(o[c]) + c_b * to_f32(p[c]));
  __syncwarp();
  if (lane == 0) lse[row] = m + logf(sum);
}

// dst[b, h, t, c] = src[b, h, t, c] (or 0 without src) for t < rows, c < dim; grid-stride over the
// batch·heads·rows·dim elements.
template <class T>
__global__ void heads_copy_kernel(HeadsView<T> dst, HeadsView<const T> src, bool zero, int64_t heads, int64_t rows,
                                  int64_t dim, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = e % dim, t = (e / dim) % rows, bh = e / (dim * rows), b = bh / heads, h = bh % heads;
    head_of(dst, b, h)[t * dst.token_stride + c] = zero ? T{} : head_of(src, b, h)[t * src.token_stride + c];  // T{}: +0
  }
}

// Shapes of the block forms: a padded block may have no valid row at all (then nothing is computed),
// but its rows must exist.
inline void check_block_shape(const AttentionShape& s, ValidRows valid, const char* what) {
  check_head_dim(s.head_dim, what);
  SFM_CHECK(s.batch >= 0 && s.heads >= 0 && s.q_len >= 0 && s.k_len >= 0, what, ": negative shape");
  SFM_CHECK(valid.queries >= 0 && valid.queries <= s.q_len && valid.keys >= 0 && valid.keys <= s.k_len, what,
            ": valid rows {", valid.queries, ", ", valid.keys, "} outside the block's {", s.q_len, ", ", s.k_len, "}");
  SFM_CHECK(s.batch * s.heads <= 65535, what, ": batch·heads = ", s.batch * s.heads, " exceeds the grid limit");
}

template <class T>
void launch_heads_copy(HeadsView<T> dst, HeadsView<const T> src, bool zero, int64_t batch, int64_t heads,
                       int64_t rows, int64_t dim) {
  SFM_CHECK(batch >= 0 && heads >= 0 && rows >= 0 && dim >= 0, zero ? "zero_heads" : "copy_heads",
            ": negative extent");
  const int64_t n = batch * heads * rows * dim;
  if (n == 0) return;
  heads_copy_kernel<T><<<grid_for(n, 256), 256, 0, cuda_context().stream>>>(dst, src, zero, heads, rows, dim, n);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda_detail

// o.out, o.lse of the valid queries against the valid keys of this block; padded query rows (all
// rows when valid.keys == 0) get out = 0, lse = −∞. o.lse is [batch, heads, in.shape.q_len].
template <class T>
void attention_forward_block(Cuda, AttentionOutputs<T> o, const AttentionInputs<T>& in, ValidRows valid) {
  using namespace cuda_detail;
  const AttentionShape& s = in.shape;
  check_block_shape(s, valid, "attention_forward_block");
  if (s.batch * s.heads * s.q_len == 0) return;
  with_head_dim(s.head_dim, [&](auto d) { launch_attention_forward<decltype(d)::value, T>(o, in, valid); });
}

// (into.out, into.lse) ← the exact merge of them with (part.out, part.lse), for all s.q_len rows.
template <class T>
void attention_merge(Cuda, AttentionOutputs<T> into, SavedAttention<T> part, AttentionShape s) {
  using namespace cuda_detail;
  SFM_CHECK(s.batch >= 0 && s.heads >= 0 && s.q_len >= 0 && s.head_dim >= 0, "attention_merge: negative shape");
  const int64_t rows = s.batch * s.heads * s.q_len;
  if (rows == 0) return;
  attention_merge_kernel<T><<<unsigned((rows + 7) / 8), 256, 0, cuda_context().stream>>>(into.out, into.lse,
                                                                                         part.out, part.lse, s);
  SFM_CUDA_CHECK_LAUNCH();
}

// delta[b, h, i] = Σ_c dO[b, h, i, c]·O[b, h, i, c] for i < queries (fp32, a fixed order);
// [batch, heads, s.q_len], rows ≥ queries left alone. The views are spelled HeadsView<const T>
// (the type InHeads<T> names) because no other parameter deduces T here.
template <class T>
void attention_backward_delta(Cuda, float* delta, HeadsView<const T> d_out, HeadsView<const T> out,
                              AttentionShape s, int64_t queries) {
  using namespace cuda_detail;
  check_block_shape(s, ValidRows{queries, 0}, "attention_backward_delta");
  with_head_dim(s.head_dim,
                [&](auto d) { launch_attention_delta<decltype(d)::value, T>(delta, d_out, out, s, queries); });
}

// Backward of one block with the global lse and delta: adds this block's share to g.d_q (valid
// queries) and to g.d_k, g.d_v (valid keys); padded rows are left alone.
//   dV += Pᵀ dO,  dS = P ∘ (dO Vᵀ − delta),  dQ += scale·dS K,  dK += scale·dSᵀ Q.
// Deterministic (no atomics). Returns at once if valid.queries == 0 or valid.keys == 0.
template <class T>
void attention_backward_block(Cuda, AttentionGrads<T> g, InHeads<T> d_out, const float* lse, const float* delta,
                              const AttentionInputs<T>& in, ValidRows valid) {
  using namespace cuda_detail;
  check_block_shape(in.shape, valid, "attention_backward_block");
  if (valid.queries == 0 || valid.keys == 0 || in.shape.batch * in.shape.heads == 0) return;
  with_head_dim(in.shape.head_dim, [&](auto d) {
    launch_attention_backward<decltype(d)::value, T, /*Accumulate=*/true>(g, d_out, lse, delta, in, valid);
  });
}

// dst[b, h, i, :] = src[b, h, i, :] for i < rows.
template <class T>
void copy_heads(Cuda, HeadsView<T> dst, InHeads<T> src, int64_t batch, int64_t heads, int64_t rows, int64_t dim) {
  cuda_detail::launch_heads_copy<T>(dst, src, false, batch, heads, rows, dim);
}

// dst[b, h, i, :] = 0 for i < rows.
template <class T>
void zero_heads(Cuda, HeadsView<T> dst, int64_t batch, int64_t heads, int64_t rows, int64_t dim) {
  cuda_detail::launch_heads_copy<T>(dst, HeadsView<const T>(dst), true, batch, heads, rows, dim);
}

}  // namespace sfm
