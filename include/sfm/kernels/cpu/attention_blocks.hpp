// Blockwise attention kernels (CPU): attention of a query block against one key/value block of a
// longer sequence, the pieces that context-parallel policies (parallel/attention.hpp) assemble.
//
// A block is padded: only ValidRows of it hold tokens. Padded keys are never read (so the padding
// may hold anything) and padded queries get out = 0, lse = −∞ and no gradient. The forward returns
// each block's own softmax output and log-sum-exp; attention_merge combines two such partial
// results exactly: with m = max(lse_a, lse_b), w_a = exp(lse_a − m), w_b = exp(lse_b − m),
//   out = (w_a·out_a + w_b·out_b) / (w_a + w_b),   lse = m + log(w_a + w_b).
// A block with no valid key has lse = −∞ and weight 0; when both are −∞ the merge leaves (0, −∞),
// so no NaN arises. The backward of a block recomputes P = exp(scale·QKᵀ − lse) with the global lse
// and the global delta = rowsum(dO ∘ O), and accumulates into dQ, dK and dV. lse, delta and the
// scale are Accum<T> (kernels/attention_args.hpp).
//
// Work is split over (batch, head) pairs on OpenMP threads and, inside a pair, over query tiles, so
// the score matrix in memory is at most tile × keys (per thread, allocated once per call).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cpu_detail {
template <class T>
using Tile = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using StridedMap = Eigen::Map<Tile<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstStridedMap = Eigen::Map<const Tile<T>, 0, Eigen::OuterStride<>>;

template <class T>
ConstStridedMap<T> rows_of(HeadsView<const T> v, int64_t b, int64_t h, int64_t first, int64_t count,
                           int64_t dim) {
  return ConstStridedMap<T>(v.at(b, h) + first * v.token_stride, count, dim,
                            Eigen::OuterStride<>(v.token_stride));
}
template <class T>
StridedMap<T> rows_of(HeadsView<T> v, int64_t b, int64_t h, int64_t first, int64_t count, int64_t dim) {
  return StridedMap<T>(v.at(b, h) + first * v.token_stride, count, dim, Eigen::OuterStride<>(v.token_stride));
}

constexpr int64_t attention_query_tile = 128;

// The score tiles are per-thread scratch, allocated once per call as a Tile with the rows of the
// largest query tile and used through a TileMap of the rows each tile needs: no heap allocation (nor
// mmap and page faults, at 128 × 513 floats) per (batch, head) pair or per tile. The map starts
// where a Tile of exactly those rows would have its data, at the alignment Eigen gives a Tile, so
// Eigen splits rows into packets at the same places and the results are bitwise the same.
template <class T>
using TileMap = Eigen::Map<Tile<T>>;
inline int64_t largest_tile_rows(int64_t queries) { return std::min(attention_query_tile, queries); }
}  // namespace cpu_detail

// out, lse of the valid queries against the valid keys of this block (out = 0 and lse = −∞ where
// no key is valid); padded query rows get out = 0, lse = −∞. lse is [batch, heads, q_len].
template <class T>
void attention_forward_block(Cpu, AttentionOutputs<T> o, const AttentionInputs<T>& in, ValidRows valid) {
  using namespace cpu_detail;
  using S = Accum<T>;
  constexpr S empty_lse = -std::numeric_limits<S>::infinity();
  const AttentionShape& s = in.shape;
  const HeadsView<T> out = o.out;
  const T scale = T(in.scale);
  const int64_t computed = valid.keys > 0 ? valid.queries : 0;  // rows with a softmax to take
#pragma omp parallel
  {
    // This thread's score tile, allocated once and reused for every pair and tile (TileMap above).
    Tile<T> scores_storage(largest_tile_rows(computed), valid.keys);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h) {
        S* head_lse = o.lse + (b * s.heads + h) * s.q_len;
        rows_of(out, b, h, computed, s.q_len - computed, s.head_dim).setZero();
        std::fill(head_lse + computed, head_lse + s.q_len, empty_lse);
        const auto K = rows_of(in.k, b, h, 0, valid.keys, s.head_dim);
        const auto V = rows_of(in.v, b, h, 0, valid.keys, s.head_dim);
        for (int64_t q0 = 0; q0 < computed; q0 += attention_query_tile) {
          const int64_t rows = std::min(attention_query_tile, computed - q0);
          TileMap<T> scores(scores_storage.data(), rows, valid.keys);
          // the scale folds into the GEMM
          scores.noalias() = (scale * rows_of(in.q, b, h, q0, rows, s.head_dim)) * K.transpose();
          for (int64_t i = 0; i < rows; ++i) {
            auto row = scores.row(i);
            const T max = row.maxCoeff();
            row = (row.array() - max).exp();
            const T sum = row.sum();
            row /= sum;
            head_lse[q0 + i] = max + std::log(sum);
          }
          rows_of(out, b, h, q0, rows, s.head_dim).noalias() = scores * V;
        }
      }
  }
}

// (out, lse) ← the exact merge of (out, lse) and (part, part_lse) (see the top of this file), for
// all q_len rows.
template <class T>
void attention_merge(Cpu, AttentionOutputs<T> into, SavedAttention<T> part, AttentionShape s) {
  using namespace cpu_detail;
  using S = Accum<T>;
  constexpr S empty_lse = -std::numeric_limits<S>::infinity();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      auto O = rows_of(into.out, b, h, 0, s.q_len, s.head_dim);
      const auto part_O = rows_of(part.out, b, h, 0, s.q_len, s.head_dim);
      S* row_lse = into.lse + (b * s.heads + h) * s.q_len;
      const S* row_part_lse = part.lse + (b * s.heads + h) * s.q_len;
      for (int64_t i = 0; i < s.q_len; ++i) {
        const S max = std::max(row_lse[i], row_part_lse[i]);
        if (max == empty_lse) continue;  // both empty: (0, −∞) stays
        const S w = std::exp(row_lse[i] - max), w_part = std::exp(row_part_lse[i] - max);
        const S sum = w + w_part;
        O.row(i) = (w / sum) * O.row(i) + (w_part / sum) * part_O.row(i);
        row_lse[i] = max + std::log(sum);
      }
    }
}

// delta[b, h, i] = Σ_c dO[b, h, i, c] · O[b, h, i, c] for the valid queries (in a fixed order);
// [batch, heads, q_len], padded rows left alone (d_out and out fix T).
template <class T>
void attention_backward_delta(Cpu, Accum<T>* delta, HeadsView<const T> d_out, HeadsView<const T> out,
                              AttentionShape s, int64_t queries) {
  using namespace cpu_detail;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const auto dO = rows_of(d_out, b, h, 0, queries, s.head_dim);
      const auto O = rows_of(out, b, h, 0, queries, s.head_dim);
      Accum<T>* row_delta = delta + (b * s.heads + h) * s.q_len;
      for (int64_t i = 0; i < queries; ++i) {
        Accum<T> sum = 0;
        for (int64_t c = 0; c < s.head_dim; ++c) sum += dO(i, c) * O(i, c);
        row_delta[i] = sum;
      }
    }
}

// Backward of one block with the global lse and delta: adds this block's share to d_q (valid
// queries) and to d_k, d_v (valid keys); padded rows are left alone.
//   dV += Pᵀ dO,  dS = P ∘ (dO Vᵀ − delta),  dQ += scale·dS K,  dK += scale·dSᵀ Q.
template <class T>
void attention_backward_block(Cpu, AttentionGrads<T> g, InHeads<T> d_out, const Accum<T>* lse,
                              const Accum<T>* delta, const AttentionInputs<T>& in, ValidRows valid) {
  using namespace cpu_detail;
  if (valid.queries == 0 || valid.keys == 0) return;
  const AttentionShape& s = in.shape;
  const T scale = T(in.scale);
#pragma omp parallel
  {
    // This thread's tiles, allocated once and reused for every pair and tile (TileMap above).
    Tile<T> probs_storage(largest_tile_rows(valid.queries), valid.keys),
        d_scores_storage(largest_tile_rows(valid.queries), valid.keys);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h) {
        const auto K = rows_of(in.k, b, h, 0, valid.keys, s.head_dim);
        const auto V = rows_of(in.v, b, h, 0, valid.keys, s.head_dim);
        auto dK = rows_of(g.d_k, b, h, 0, valid.keys, s.head_dim);
        auto dV = rows_of(g.d_v, b, h, 0, valid.keys, s.head_dim);
        const Accum<T>* row_lse = lse + (b * s.heads + h) * s.q_len;
        const Accum<T>* row_delta = delta + (b * s.heads + h) * s.q_len;
        for (int64_t q0 = 0; q0 < valid.queries; q0 += attention_query_tile) {
          const int64_t rows = std::min(attention_query_tile, valid.queries - q0);
          TileMap<T> probs(probs_storage.data(), rows, valid.keys), d_scores(d_scores_storage.data(), rows, valid.keys);
          const auto Q = rows_of(in.q, b, h, q0, rows, s.head_dim);
          const auto dO = rows_of(d_out, b, h, q0, rows, s.head_dim);
          probs.noalias() = (scale * Q) * K.transpose();
          for (int64_t i = 0; i < rows; ++i) probs.row(i) = (probs.row(i).array() - row_lse[q0 + i]).exp();
          dV.noalias() += probs.transpose() * dO;
          d_scores.noalias() = dO * V.transpose();
          for (int64_t i = 0; i < rows; ++i)
            d_scores.row(i) = probs.row(i).array() * (d_scores.row(i).array() - row_delta[q0 + i]);
          rows_of(g.d_q, b, h, q0, rows, s.head_dim).noalias() += (scale * d_scores) * K;
          dK.noalias() += (scale * d_scores.transpose()) * Q;
        }
      }
  }
}

// dst[b, h, i, :] = src[b, h, i, :] for i < rows.
template <class T>
void copy_heads(Cpu, HeadsView<T> dst, InHeads<T> src, int64_t batch, int64_t heads, int64_t rows, int64_t dim) {
  using namespace cpu_detail;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) rows_of(dst, b, h, 0, rows, dim) = rows_of(src, b, h, 0, rows, dim);
}

// dst[b, h, i, :] = 0 for i < rows.
template <class T>
void zero_heads(Cpu, HeadsView<T> dst, int64_t batch, int64_t heads, int64_t rows, int64_t dim) {
  using namespace cpu_detail;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) rows_of(dst, b, h, 0, rows, dim).setZero();
}

}  // namespace sfm
