// Times one attention layer (forward and backward, fp32, CPU backend) under the attention policies
// with cp = 1, 2, 4 ranks on ThreadComm, and prints one JSON object: per run the times, the bytes
// each rank sends, the attention memory per rank, and the longest sequence whose attention fits a
// memory budget per rank.
//
//   bench_ring_attention [--length 2048] [--batch 1] [--heads 12] [--head-dim 64] [--layers 12]
//                        [--budget-gib 16] [--repeats 2] [--threads T]
//
// Attention memory per rank (bytes, fp32; rows = the rank's block, ⌈L/cp⌉):
//   kept            what each layer keeps for the backward (packed qkv, output, lse), × layers
//   gradients       d_out and d_qkv of one block (scratch shared by the layers)
//   workspace       the policy's own buffers (K/V blocks in flight, dK/dV accumulators), shared
//   kernel_scratch  the CPU kernels' per-thread score tiles (128 query rows × the keys of a block)
//                   and, for LocalAttention, its per-thread dK/dV tiles
// The longest sequence that fits counts only attention; the model's MLP and norms come on top.
// The T threads are shared by the ranks: each rank runs max(1, T / cp) OpenMP threads.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/comm/thread.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/parallel/attention.hpp"

namespace {

using sfm::AttentionShape;
using sfm::HeadsView;
using sfm::ThreadComm;

struct Memory {
  int64_t kept = 0, gradients = 0, workspace = 0, kernel_scratch = 0;
  int64_t total() const { return kept + gradients + workspace + kernel_scratch; }
};

// Attention memory per rank for the global shape `s` (see the top of this file).
template <class Policy>
Memory attention_memory(const Policy& policy, bool local, AttentionShape s, int64_t layers, int threads) {
  const int64_t rows = policy.blocks(s.q_len).rows(), D = s.heads * s.head_dim, f = sizeof(float);
  const int64_t key_rows = local ? s.k_len : rows;
  Memory m;
  m.kept = layers * (s.batch * rows * 4 * D * f + s.batch * s.heads * rows * f);
  m.gradients = s.batch * rows * 4 * D * f;
  m.workspace = int64_t(policy.template workspace_bytes<float>(s));
  m.kernel_scratch = threads * (2 * 128 * key_rows * f + (local ? 2 * s.k_len * s.head_dim * f : 0));
  return m;
}

// The longest sequence whose attention memory per rank fits `budget` (memory grows with L).
template <class Policy>
int64_t max_length(const Policy& policy, bool local, AttentionShape s, int64_t layers, int threads, int64_t budget) {
  int64_t lo = 0, hi = 1;
  auto fits = [&](int64_t L) {
    return attention_memory(policy, local, {s.batch, s.heads, L, L, s.head_dim}, layers, threads).total() <= budget;
  };
  while (fits(hi)) lo = hi, hi *= 2;
  while (hi - lo > 1) (fits((lo + hi) / 2) ? lo : hi) = (lo + hi) / 2;
  return lo;
}

// One rank's block in the model's layout: packed qkv [B, rows, 3, H, d], output [B, rows, H, d].
struct Block {
  int64_t rows, dim, d;
  std::vector<float> qkv, out, lse, d_out, d_qkv;

  Block(AttentionShape s, int64_t rows, uint64_t seed)
      : rows(rows), dim(s.heads * s.head_dim), d(s.head_dim), qkv(size_t(s.batch * rows * 3 * dim)),
        out(size_t(s.batch * rows * dim)), lse(size_t(s.batch * s.heads * rows)), d_out(out.size()), d_qkv(qkv.size()) {
    sfm::Rng(seed, 0).fill_normal(qkv, 0.0f, 1.0f);
    sfm::Rng(seed, 1).fill_normal(d_out, 0.0f, 1.0f);
  }
  HeadsView<float> part(std::vector<float>& packed, int64_t which) {
    return {packed.data() + which * dim, rows * 3 * dim, d, 3 * dim};
  }
  HeadsView<float> rows_view(std::vector<float>& x) { return {x.data(), rows * dim, d, dim}; }
};

// Runs `make_policy(comm)` on cp threads; returns rank 0's measurements as JSON.
template <class MakePolicy>
nlohmann::json run(const char* name, bool local, int cp, AttentionShape s, int64_t layers, int threads, int repeats,
                   int64_t budget, MakePolicy make_policy) {
  const int per_rank = std::max(1, threads / cp);
  nlohmann::json result;
  sfm::run_ranks(cp, [&](ThreadComm& comm) {
    omp_set_num_threads(per_rank);
    auto policy = make_policy(comm);
    Block block(s, policy.blocks(s.q_len).rows(), uint64_t(comm.rank()));
    const float scale = 1.0f / std::sqrt(float(s.head_dim));
    using clock = std::chrono::steady_clock;
    double forward_s = 1e30, backward_s = 1e30;
    uint64_t bytes_sent = 0;
    for (int rep = 0; rep <= repeats; ++rep) {  // rep 0 warms up
      comm.reset_stats();
      comm.barrier();
      const auto t0 = clock::now();
      const sfm::AttentionInputs<float> args{block.part(block.qkv, 0), block.part(block.qkv, 1),
                                             block.part(block.qkv, 2), s, scale};
      policy.forward(sfm::AttentionOutputs<float>{block.rows_view(block.out), block.lse.data()}, args);
      comm.barrier();
      const auto t1 = clock::now();
      policy.backward(sfm::AttentionGrads<float>{block.part(block.d_qkv, 0), block.part(block.d_qkv, 1),
                                                 block.part(block.d_qkv, 2)},
                      block.rows_view(block.d_out), sfm::SavedAttention<float>{block.rows_view(block.out), block.lse.data()},
                      args);
      comm.barrier();
      const auto t2 = clock::now();
      if (rep > 0) {
        forward_s = std::min(forward_s, std::chrono::duration<double>(t1 - t0).count());
        backward_s = std::min(backward_s, std::chrono::duration<double>(t2 - t1).count());
      }
      bytes_sent = comm.stats().bytes_sent;  // the barriers send nothing
    }
    if (comm.rank() != 0) return;
    const Memory m = attention_memory(policy, local, s, layers, per_rank);
    result = {{"policy", name},
              {"cp", cp},
              {"threads_per_rank", per_rank},
              {"rows_per_rank", block.rows},
              {"forward_s", forward_s},
              {"backward_s", backward_s},
              {"bytes_sent_per_rank", bytes_sent},
              {"memory_per_rank", {{"kept", m.kept}, {"gradients", m.gradients}, {"workspace", m.workspace},
                                   {"kernel_scratch", m.kernel_scratch}, {"total", m.total()}}},
              {"max_length_for_budget", max_length(policy, local, s, layers, per_rank, budget)}};
  });
  return result;
}

}  // namespace

int main(int argc, char** argv) try {
  int64_t length = 2048, batch = 1, heads = 12, head_dim = 64, layers = 12, repeats = 2, threads = omp_get_max_threads();
  double budget_gib = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--length") length = std::stoll(value);
    else if (key == "--batch") batch = std::stoll(value);
    else if (key == "--heads") heads = std::stoll(value);
    else if (key == "--head-dim") head_dim = std::stoll(value);
    else if (key == "--layers") layers = std::stoll(value);
    else if (key == "--budget-gib") budget_gib = std::stod(value);
    else if (key == "--repeats") repeats = std::stoll(value);
    else if (key == "--threads") threads = std::stoll(value);
    else {
      std::fprintf(stderr, "bench_ring_attention: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  const AttentionShape s{batch, heads, length, length, head_dim};
  const int64_t budget = int64_t(budget_gib * double(int64_t(1) << 30));
  nlohmann::json runs = nlohmann::json::array();
  runs.push_back(run("local", true, 1, s, layers, int(threads), int(repeats), budget,
                     [](ThreadComm&) { return sfm::LocalAttention<sfm::Cpu>{}; }));
  for (int cp : {1, 2, 4}) {
    runs.push_back(run("ring", false, cp, s, layers, int(threads), int(repeats), budget,
                       [](ThreadComm& comm) { return sfm::RingAttention<ThreadComm, sfm::Cpu>(comm); }));
    runs.push_back(run("all_gather_kv", false, cp, s, layers, int(threads), int(repeats), budget,
                       [](ThreadComm& comm) { return sfm::AllGatherKV<ThreadComm, sfm::Cpu>(comm); }));
  }
  const nlohmann::json result{{"benchmark", "ring_attention"}, {"backend", "cpu"},   {"dtype", "float32"},
                              {"length", length},             {"batch", batch},     {"heads", heads},
                              {"head_dim", head_dim},         {"layers", layers},   {"threads", threads},
                              {"budget_bytes", budget},
                              {"runs", runs}};
  std::printf("%s\n", result.dump(2).c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_ring_attention: %s\n", e.what());
  return 1;
}
