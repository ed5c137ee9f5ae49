// Multi-head softmax attention kernels (CPU), non-causal, returning the log-sum-exp.
//
// Q, K, V and the output are addressed through HeadsView, so the model can run attention straight
// on the packed qkv projection ([B, L, 3, H, d]) and write [B, L, H, d] for the output projection,
// without split/merge copies. Forward returns lse[b, h, i] = log Σ_j exp(s_ij), the statistic that
// lets partial results over key blocks be merged exactly (ring attention) and lets the backward
// recompute the probabilities instead of storing them: P = exp(S − lse).
//
// Work is split over (batch, head) pairs on OpenMP threads and, inside a pair, over query tiles, so
// the score matrix in memory is at most tile × Lk.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>

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
}  // namespace cpu_detail

// out = softmax(scale · Q Kᵀ) V per (batch, head); lse [batch, heads, q_len] (contiguous).
template <class T>
void attention_forward(Cpu, HeadsView<T> out, T* lse, InHeads<T> q, InHeads<T> k, InHeads<T> v, AttentionShape s, T scale) {
  using namespace cpu_detail;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const auto K = rows_of(k, b, h, 0, s.k_len, s.head_dim);
      const auto V = rows_of(v, b, h, 0, s.k_len, s.head_dim);
      Tile<T> scores;
      for (int64_t q0 = 0; q0 < s.q_len; q0 += attention_query_tile) {
        const int64_t rows = std::min(attention_query_tile, s.q_len - q0);
        scores.noalias() = (scale * rows_of(q, b, h, q0, rows, s.head_dim)) * K.transpose();  // scale folds into the GEMM
        T* row_lse = lse + (b * s.heads + h) * s.q_len + q0;
        for (int64_t i = 0; i < rows; ++i) {
          auto row = scores.row(i);
          const T max = row.maxCoeff();
          row = (row.array() - max).exp();
          const T sum = row.sum();
          row /= sum;
          row_lse[i] = max + std::log(sum);
        }
        rows_of(out, b, h, q0, rows, s.head_dim).noalias() = scores * V;
      }
    }
}

// Backward, recomputing P = exp(scale·QKᵀ − lse):
//   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
// d_q, d_k, d_v are overwritten.
template <class T>
void attention_backward(Cpu, HeadsView<T> d_q, HeadsView<T> d_k, HeadsView<T> d_v, InHeads<T> d_out,
                        InHeads<T> out, const T* lse, InHeads<T> q, InHeads<T> k, InHeads<T> v, AttentionShape s, T scale) {
  using namespace cpu_detail;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const auto K = rows_of(k, b, h, 0, s.k_len, s.head_dim);
      const auto V = rows_of(v, b, h, 0, s.k_len, s.head_dim);
      Tile<T> dK = Tile<T>::Zero(s.k_len, s.head_dim);
      Tile<T> dV = Tile<T>::Zero(s.k_len, s.head_dim);
      Tile<T> probs, d_scores;
      Eigen::Matrix<T, Eigen::Dynamic, 1> delta(attention_query_tile);
      for (int64_t q0 = 0; q0 < s.q_len; q0 += attention_query_tile) {
        const int64_t rows = std::min(attention_query_tile, s.q_len - q0);
        const auto Q = rows_of(q, b, h, q0, rows, s.head_dim);
        const auto dO = rows_of(d_out, b, h, q0, rows, s.head_dim);
        const T* row_lse = lse + (b * s.heads + h) * s.q_len + q0;
        probs.noalias() = (scale * Q) * K.transpose();
        for (int64_t i = 0; i < rows; ++i) probs.row(i) = (probs.row(i).array() - row_lse[i]).exp();
        dV.noalias() += probs.transpose() * dO;
        const auto O = rows_of(out, b, h, q0, rows, s.head_dim);
        for (int64_t i = 0; i < rows; ++i) {  // rowsum(dO ∘ O), in a fixed order (see linear.hpp)
          T sum = 0;
          for (int64_t c = 0; c < s.head_dim; ++c) sum += dO(i, c) * O(i, c);
          delta(i) = sum;
        }
        d_scores.noalias() = dO * V.transpose();
        d_scores = probs.array() * (d_scores.colwise() - delta.head(rows)).array();
        rows_of(d_q, b, h, q0, rows, s.head_dim).noalias() = (scale * d_scores) * K;
        dK.noalias() += (scale * d_scores.transpose()) * Q;
      }
      rows_of(d_k, b, h, 0, s.k_len, s.head_dim) = dK;
      rows_of(d_v, b, h, 0, s.k_len, s.head_dim) = dV;
    }
}

}  // namespace sfm
