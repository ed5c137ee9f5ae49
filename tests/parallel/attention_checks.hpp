// Checks of the attention policies (parallel/attention.hpp), shared by the ThreadComm and MPI tests:
// a policy run on each rank's block of a sequence against LocalAttention over the whole sequence,
// in double precision, and a finite-difference gradient check through a policy.
//
// Each rank holds its block the way the model does: packed qkv [B, rows, 3, H, d] and output
// [B, rows, H, d]. Padding rows of the inputs hold NaN, so any read of them shows in the results.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kernels/kernel_test_util.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/kernels/views.hpp"
#include "sfm/parallel/attention.hpp"

namespace sfm::test {

// A whole-sequence problem, contiguous [B, H, L, d], and LocalAttention's answer to it.
struct AttentionProblem {
  AttentionShape s;
  double scale;
  std::vector<double> q, k, v, d_out;
  std::vector<double> out, lse, d_q, d_k, d_v;

  AttentionProblem(int64_t batch, int64_t heads, int64_t length, int64_t head_dim, uint64_t seed)
      : s{batch, heads, length, length, head_dim}, scale(1.0 / std::sqrt(double(head_dim))) {
    const size_t n = size_t(batch * heads * length * head_dim);
    q = random_values(n, seed), k = random_values(n, seed + 1), v = random_values(n, seed + 2);
    d_out = random_values(n, seed + 3);
    out.resize(n), lse.resize(size_t(batch * heads * length)), d_q.resize(n), d_k.resize(n), d_v.resize(n);
    LocalAttention<sfm::Cpu> local;
    const AttentionInputs<double> args{view(q), view(k), view(v), s, scale};
    local.forward(AttentionOutputs<double>{view(out), lse.data()}, args);
    local.backward(AttentionGrads<double>{view(d_q), view(d_k), view(d_v)}, view(d_out),
                   SavedAttention<double>{view(out), lse.data()}, args);
  }

  HeadsView<double> view(std::vector<double>& x) const {
    return {x.data(), s.heads * s.q_len * s.head_dim, s.q_len * s.head_dim, s.head_dim};
  }
  HeadsView<const double> view(const std::vector<double>& x) const {
    return {x.data(), s.heads * s.q_len * s.head_dim, s.q_len * s.head_dim, s.head_dim};
  }
  size_t at(int64_t b, int64_t h, int64_t t, int64_t c) const {
    return size_t(((b * s.heads + h) * s.q_len + t) * s.head_dim + c);
  }
};

// One rank's block of a problem in the model's layout.
struct LocalBlock {
  AttentionShape s;  // global
  SequenceBlocks seq;
  int rank;
  int64_t rows, first, valid, dim;  // dim = H·d
  std::vector<double> qkv, out, lse, d_out, d_qkv;

  LocalBlock(AttentionShape s, int parts, int rank)
      : s(s), seq(s.q_len, parts), rank(rank), rows(seq.rows()), first(seq.start(rank)), valid(seq.valid(rank)),
        dim(s.heads * s.head_dim) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    qkv.assign(size_t(s.batch * rows * 3 * dim), nan);
    d_out.assign(size_t(s.batch * rows * dim), nan);
    out.assign(d_out.size(), 7.0);  // every output is overwritten
    d_qkv.assign(qkv.size(), 7.0);
    lse.assign(size_t(s.batch * s.heads * rows), 7.0);
  }

  // Copies this rank's rows of the problem's q, k, v and d_out in.
  void load(const AttentionProblem& p) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < valid; ++i)
        for (int64_t h = 0; h < s.heads; ++h)
          for (int64_t c = 0; c < s.head_dim; ++c) {
            const size_t global = p.at(b, h, first + i, c), row = size_t((b * rows + i) * 3 * dim + h * s.head_dim + c);
            qkv[row] = p.q[global], qkv[row + size_t(dim)] = p.k[global], qkv[row + size_t(2 * dim)] = p.v[global];
            d_out[size_t((b * rows + i) * dim + h * s.head_dim + c)] = p.d_out[global];
          }
  }

  HeadsView<double> part(std::vector<double>& packed, int64_t which) {
    return {packed.data() + which * dim, rows * 3 * dim, s.head_dim, 3 * dim};
  }
  HeadsView<double> rows_view(std::vector<double>& x) { return {x.data(), rows * dim, s.head_dim, dim}; }

  AttentionInputs<double> inputs(double scale) { return {part(qkv, 0), part(qkv, 1), part(qkv, 2), s, scale}; }
  template <class Policy>
  void forward(Policy& policy, double scale) {
    policy.forward(AttentionOutputs<double>{rows_view(out), lse.data()}, inputs(scale));
  }
  template <class Policy>
  void backward(Policy& policy, double scale) {
    policy.backward(AttentionGrads<double>{part(d_qkv, 0), part(d_qkv, 1), part(d_qkv, 2)}, rows_view(d_out),
                    SavedAttention<double>{rows_view(out), lse.data()}, inputs(scale));
  }
  double out_at(int64_t b, int64_t h, int64_t i, int64_t c) const {
    return out[size_t((b * rows + i) * dim + h * s.head_dim + c)];
  }
  double grad_at(int64_t which, int64_t b, int64_t h, int64_t i, int64_t c) const {
    return d_qkv[size_t((b * rows + i) * 3 * dim + which * dim + h * s.head_dim + c)];
  }
};

// Relative differences (max |policy − local| / max |local| over this rank's rows) and whether every
// padding row came out as specified (out 0, lse −∞, gradients 0).
struct PolicyResult {
  double out = 0, lse = 0, d_q = 0, d_k = 0, d_v = 0;
  bool padding_ok = true;
  double worst() const { return std::max({out, lse, d_q, d_k, d_v}); }
};

template <class Policy>
PolicyResult check_policy(Policy& policy, int parts, int rank, const AttentionProblem& p) {
  LocalBlock block(p.s, parts, rank);
  block.load(p);
  block.forward(policy, p.scale);
  block.backward(policy, p.scale);
  const AttentionShape& s = p.s;
  struct Diff {
    double diff = 0, scale = 0;
    void add(double got, double want) {
      diff = std::max(diff, std::abs(got - want));
      scale = std::max(scale, std::abs(want));
    }
    double relative() const { return scale > 0 ? diff / scale : diff; }
  } out, lse, dq, dk, dv;
  PolicyResult result;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < block.rows; ++i) {
        const double row_lse = block.lse[size_t((b * s.heads + h) * block.rows + i)];
        if (i < block.valid) {
          lse.add(row_lse, p.lse[size_t((b * s.heads + h) * s.q_len + block.first + i)]);
        } else {
          result.padding_ok &= row_lse == -std::numeric_limits<double>::infinity();
        }
        for (int64_t c = 0; c < s.head_dim; ++c) {
          if (i < block.valid) {
            const size_t g = p.at(b, h, block.first + i, c);
            out.add(block.out_at(b, h, i, c), p.out[g]);
            dq.add(block.grad_at(0, b, h, i, c), p.d_q[g]);
            dk.add(block.grad_at(1, b, h, i, c), p.d_k[g]);
            dv.add(block.grad_at(2, b, h, i, c), p.d_v[g]);
          } else {
            result.padding_ok &= block.out_at(b, h, i, c) == 0 && block.grad_at(0, b, h, i, c) == 0 &&
                                 block.grad_at(1, b, h, i, c) == 0 && block.grad_at(2, b, h, i, c) == 0;
          }
        }
      }
  result.out = out.relative(), result.lse = lse.relative();
  result.d_q = dq.relative(), result.d_k = dk.relative(), result.d_v = dv.relative();
  return result;
}

// Central finite differences of loss = Σ weight ∘ out (summed over the ranks) against the policy's
// gradients, at every `stride`-th element of q, k and v; returns the largest absolute difference.
// Every rank of `comm` calls it; `policy` runs on `comm`.
template <class Policy, class Comm>
double finite_difference_error(Policy& policy, Comm& comm, AttentionProblem p, size_t stride) {
  const int parts = comm.size(), rank = comm.rank();
  const std::vector<double> weight = p.d_out;  // dLoss/dout
  LocalBlock block(p.s, parts, rank);
  auto loss = [&] {
    block.load(p);
    block.forward(policy, p.scale);
    double sum = 0;
    for (int64_t b = 0; b < p.s.batch; ++b)
      for (int64_t h = 0; h < p.s.heads; ++h)
        for (int64_t i = 0; i < block.valid; ++i)
          for (int64_t c = 0; c < p.s.head_dim; ++c)
            sum += block.out_at(b, h, i, c) * weight[p.at(b, h, block.first + i, c)];
    comm.all_reduce(std::span<double>(&sum, 1));
    return sum;
  };
  loss();
  block.backward(policy, p.scale);
  // The policy's gradients as whole [B, H, L, d] arrays (each rank fills its rows, then a sum).
  std::vector<double> grads(3 * p.q.size(), 0.0);
  for (int64_t which = 0; which < 3; ++which)
    for (int64_t b = 0; b < p.s.batch; ++b)
      for (int64_t h = 0; h < p.s.heads; ++h)
        for (int64_t i = 0; i < block.valid; ++i)
          for (int64_t c = 0; c < p.s.head_dim; ++c)
            grads[size_t(which) * p.q.size() + p.at(b, h, block.first + i, c)] = block.grad_at(which, b, h, i, c);
  comm.all_reduce(std::span<double>(grads));
  double worst = 0;
  std::vector<double>* inputs[3] = {&p.q, &p.k, &p.v};
  for (int64_t which = 0; which < 3; ++which)
    for (size_t i = 0; i < p.q.size(); i += stride)
      worst = std::max(worst, std::abs(grads[size_t(which) * p.q.size() + i] - numeric_derivative(*inputs[which], i, loss)));
  return worst;
}

}  // namespace sfm::test
