// The attention policies (parallel/attention.hpp) on ThreadComm, in double precision: RingAttention
// and AllGatherKV equal LocalAttention over the whole sequence (output, lse, dQ, dK, dV to 1e-12
// relative) for cp = 1..4, lengths not divisible by cp, head dims 32 and 64, ranks whose block is
// all padding; finite differences through the ring; the ring's traffic; and the block kernels'
// guards for empty blocks (kernels/cpu/attention_blocks.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_checks.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/parallel/attention.hpp"
#include "sfm_test.hpp"

using sfm::AllGatherKV;
using sfm::RingAttention;
using sfm::ThreadComm;
using sfm::test::AttentionProblem;
using sfm::test::PolicyResult;

namespace {

// Runs `Policy` on cp threads; one result per rank.
template <template <class, class> class Policy>
std::vector<PolicyResult> run_policy(int cp, const AttentionProblem& p) {
  std::vector<PolicyResult> results(static_cast<size_t>(cp));
  sfm::run_ranks(cp, [&](ThreadComm& comm) {
    Policy<ThreadComm, sfm::Cpu> policy(comm);
    results[size_t(comm.rank())] = sfm::test::check_policy(policy, cp, comm.rank(), p);
  });
  return results;
}

void check_results(const std::vector<PolicyResult>& results) {
  for (size_t r = 0; r < results.size(); ++r) {
    INFO("rank " << r << ": out " << results[r].out << ", lse " << results[r].lse << ", dq " << results[r].d_q
                 << ", dk " << results[r].d_k << ", dv " << results[r].d_v);
    CHECK(results[r].worst() <= 1e-12);
    CHECK(results[r].padding_ok);
  }
}

}  // namespace

TEST_CASE("RingAttention and AllGatherKV equal LocalAttention in double (ThreadComm)") {
  uint64_t seed = 10;
  for (int64_t head_dim : {32, 64})
    for (int64_t length : {129, 130, 7}) {
      const AttentionProblem p(2, 3, length, head_dim, seed += 4);
      for (int cp : {1, 2, 3, 4}) {
        INFO("head_dim " << head_dim << ", L " << length << ", cp " << cp);
        check_results(run_policy<RingAttention>(cp, p));
        check_results(run_policy<AllGatherKV>(cp, p));
      }
    }
}

TEST_CASE("ranks whose block is all padding take part in the ring") {
  for (auto [length, cp] : {std::pair{3, 4}, std::pair{2, 3}, std::pair{1, 2}, std::pair{5, 8}}) {
    INFO("L " << length << ", cp " << cp);
    const sfm::SequenceBlocks blocks(length, cp);
    CHECK(blocks.valid(cp - 1) == 0);
    const AttentionProblem p(2, 2, length, 32, 90);
    check_results(run_policy<RingAttention>(cp, p));
    check_results(run_policy<AllGatherKV>(cp, p));
  }
}

TEST_CASE("RingAttention gradients match finite differences through the ring") {
  for (auto [length, cp] : {std::pair{7, 3}, std::pair{3, 4}}) {
    INFO("L " << length << ", cp " << cp);
    const AttentionProblem p(1, 2, length, 8, 120);
    std::vector<double> error(static_cast<size_t>(cp));
    sfm::run_ranks(cp, [&](ThreadComm& comm) {
      RingAttention<ThreadComm, sfm::Cpu> policy(comm);
      error[size_t(comm.rank())] = sfm::test::finite_difference_error(policy, comm, p, 5);
    });
    for (double e : error) CHECK(e <= 1e-7);
  }
}

TEST_CASE("RingAttention sends P - 1 K/V blocks forward, P - 1 K/V and P dK/dV blocks backward") {
  const AttentionProblem p(2, 2, 10, 16, 130);
  const int cp = 3;
  sfm::run_ranks(cp, [&](ThreadComm& comm) {
    RingAttention<ThreadComm, sfm::Cpu> policy(comm);
    sfm::test::LocalBlock block(p.s, cp, comm.rank());
    block.load(p);
    const uint64_t kv_bytes = 2 * 2 * 2 * 4 * 16 * sizeof(double);  // K and V, [B=2, H=2, rows=4, d=16]
    comm.reset_stats();
    block.forward(policy, p.scale);
    if (comm.stats().bytes_sent != (cp - 1) * kv_bytes) throw sfm::Error("forward traffic");
    comm.reset_stats();
    block.backward(policy, p.scale);
    if (comm.stats().bytes_sent != (2 * cp - 1) * kv_bytes) throw sfm::Error("backward traffic");
  });
}

TEST_CASE("attention blocks: padded queries get 0 and −∞, empty blocks merge without NaN") {
  const AttentionProblem p(2, 2, 150, 16, 140);  // two query tiles
  const sfm::AttentionInputs<double> args{p.view(p.q), p.view(p.k), p.view(p.v), p.s, p.scale};
  // Queries 100.. are padding: the valid rows are the whole-sequence result, the padded ones 0 / −∞.
  const double minus_inf = -std::numeric_limits<double>::infinity();
  std::vector<double> padded_out(p.q.size(), 3.0), padded_lse(p.lse.size(), 3.0);
  sfm::attention_forward_block(sfm::Cpu{}, sfm::AttentionOutputs<double>{p.view(padded_out), padded_lse.data()}, args,
                               sfm::ValidRows{100, 150});
  double worst = 0;
  for (int64_t b = 0; b < p.s.batch; ++b)
    for (int64_t h = 0; h < p.s.heads; ++h)
      for (int64_t t = 0; t < p.s.q_len; ++t) {
        const size_t row = size_t((b * p.s.heads + h) * p.s.q_len + t);
        if (t < 100) {
          worst = std::max(worst, std::abs(padded_lse[row] - p.lse[row]));
          for (int64_t c = 0; c < p.s.head_dim; ++c)
            worst = std::max(worst, std::abs(padded_out[p.at(b, h, t, c)] - p.out[p.at(b, h, t, c)]));
        } else {
          CHECK(padded_lse[row] == minus_inf);
          for (int64_t c = 0; c < p.s.head_dim; ++c) CHECK(padded_out[p.at(b, h, t, c)] == 0.0);
        }
      }
  CHECK(worst <= 1e-12);

  std::vector<double> out = p.out, lse = p.lse;

  // A block without valid keys: out 0, lse −∞; merged into a result it changes nothing, and two
  // empty results merge into an empty one.
  std::vector<double> empty_out(p.q.size(), 3.0), empty_lse(p.lse.size(), 3.0);
  sfm::attention_forward_block(sfm::Cpu{}, sfm::AttentionOutputs<double>{p.view(empty_out), empty_lse.data()}, args,
                               sfm::ValidRows{150, 0});
  CHECK(std::all_of(empty_out.begin(), empty_out.end(), [](double x) { return x == 0; }));
  CHECK(std::all_of(empty_lse.begin(), empty_lse.end(), [&](double x) { return x == minus_inf; }));
  sfm::attention_merge(sfm::Cpu{}, sfm::AttentionOutputs<double>{p.view(out), lse.data()},
                       sfm::SavedAttention<double>{p.view(empty_out), empty_lse.data()}, p.s);
  CHECK(out == p.out);
  CHECK(lse == p.lse);
  std::vector<double> both_out = empty_out, both_lse = empty_lse;
  sfm::attention_merge(sfm::Cpu{}, sfm::AttentionOutputs<double>{p.view(both_out), both_lse.data()},
                       sfm::SavedAttention<double>{p.view(empty_out), empty_lse.data()}, p.s);
  CHECK(both_out == empty_out);
  CHECK(both_lse == empty_lse);
}
