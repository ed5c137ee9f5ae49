// Memory per rank of training VitMae, for cp = 1, 2, 4, with and without activation recomputation
// (every block), and the largest cubic-ish volume that fits each memory budget; prints one JSON
// object. Computed from the model's own accounting, nothing allocated or measured.
//
//   bench_cp_memory [--model long] [--batch 1] [--precision fp32|bf16] [--budget-gib 80 --budget-gib 141 ...]
//
// Per rank, bytes, at the given precision (kernels/precision.hpp; both backends lay the arena out
// alike); mask from AdaptiveMask{cp}. bf16 runs cp = 1 only, as the trainer does (context
// parallelism runs in fp32):
//   activation_bytes     VitMae's activation arena (model/activations.hpp), sized from its carve:
//                        the sharded encoder and decoder rows plus the stem, which spans the whole
//                        token grid on every rank; with recomputation one block's internals per stack
//   attention_workspace  RingAttention's buffers for the larger of the encoder and decoder calls
//                        (none for cp = 1: the model's SingleRank runs the backend's kernels)
//   input_bytes          the fp32 input volumes [batch, Z, Y, X], which every rank of a group holds,
//                        and the model's positional embedding tables [N + 1, dim + decoder_dim] in
//                        the compute type
//   state_bytes          parameters, gradients and both AdamW moments, 4 floats per parameter, and
//                        under bf16 the compute copy (2 bytes more), divided over the cp ranks as
//                        ZeRO-3 over the group does (cp = 1: the resident model and AdamW); ZeRO-3's
//                        gather slots, four block-sized buffers, come on top
//   total_bytes          the sum, what the budget is checked against
// The largest fit grows the token grid as a cube, one axis at a time (the axes differ by at most one
// patch; z, then y, takes the extra one), while total_bytes stays within the budget. Not counted: the
// backends' kernel scratch (CPU: per-thread score tiles; CUDA: the attention backward's
// batch·heads·L floats, the 32 MiB cuBLASLt workspace) and the CUDA context (about 0.5 GiB), so pass
// a GPU's usable memory, a little below its nominal size.
#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/kernels/precision.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/activations.hpp"
#include "sfm/model/context_parallel.hpp"
#include "sfm/model/sequence_shard.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/parallel/attention.hpp"

namespace {

constexpr int64_t kFloat = sizeof(float);

struct RankMemory {
  int64_t tokens = 0, len_keep = 0, activations = 0, workspace = 0, inputs = 0, state = 0;
  int64_t total() const { return activations + workspace + inputs + state; }
};

// Memory of one rank of a cp group training `config` (`parameters` of them) at precision Prec;
// `group` answers for the attention workspace.
template <class Prec>
RankMemory rank_memory(const sfm::ModelConfig& config, int64_t parameters, int64_t batch, bool recompute,
                       const sfm::ContextParallel<typename Prec::Compute>& group) {
  using T = typename Prec::Compute;
  const int cp = group.size();
  RankMemory m;
  m.tokens = config.tokens();
  m.len_keep = sfm::AdaptiveMask{cp}.len_keep(config);
  const sfm::Recompute r = recompute ? sfm::Recompute::all(config) : sfm::Recompute{};
  m.activations = sfm::Activations<std::vector, T>::bytes_for(
      config, sfm::SequenceShard::activation_shape(config, batch, m.len_keep, cp, r));
  auto workspace = [&](int64_t length, int64_t dim, int64_t heads) {
    return int64_t(group.attention_workspace_bytes({batch, heads, length, length, dim / heads}));
  };
  m.workspace = std::max(workspace(m.len_keep + 1, config.dim, config.heads),
                         workspace(m.tokens + 1, config.decoder_dim, config.decoder_heads));
  m.inputs = kFloat * batch * config.grid().voxels() +
             int64_t(sizeof(T)) * (m.tokens + 1) * (config.dim + config.decoder_dim);
  const int64_t compute_copy = std::is_same_v<T, float> ? 0 : int64_t(sizeof(T));
  m.state = (4 * kFloat + compute_copy) * parameters / cp;
  return m;
}

nlohmann::json to_json(const sfm::ModelConfig& config, const RankMemory& m) {
  return {{"crop", config.crop},
          {"tokens", m.tokens},
          {"len_keep", m.len_keep},
          {"activation_bytes", m.activations},
          {"attention_workspace", m.workspace},
          {"input_bytes", m.inputs},
          {"state_bytes", m.state},
          {"total_bytes", m.total()}};
}

// Step s ≥ 3 of a cube growing one axis at a time: the grid (n + [s%3 > 0], n + [s%3 > 1], n), n = s/3.
sfm::ModelConfig cubic(sfm::ModelConfig config, int64_t s) {
  const int64_t n = s / 3, r = s % 3;
  const std::array<int64_t, 3> grid{n + (r > 0), n + (r > 1), n};
  for (int i = 0; i < 3; ++i) config.crop[i] = grid[i] * config.patch[i];
  return config;
}

// The runs of one precision: cp = 1, 2, 4 (fp32) or 1 (bf16), each with and without recomputation.
template <class Prec>
nlohmann::json precision_runs(const sfm::ModelConfig& config, int64_t parameters, int64_t batch,
                              const std::vector<double>& budgets_gib) {
  using T = typename Prec::Compute;
  nlohmann::json runs = nlohmann::json::array();
  for (int cp : std::is_same_v<T, float> ? std::vector<int>{1, 2, 4} : std::vector<int>{1}) {
    sfm::run_ranks(cp, [&](sfm::ThreadComm& comm) {
      if (comm.rank() != 0) return;  // every rank of a group holds the same amount
      const sfm::SingleRank<sfm::Cpu, T> single;  // what the model runs with when cp = 1
      std::unique_ptr<sfm::ContextParallel<T>> ring;  // cp > 1 (fp32 only)
      if constexpr (std::is_same_v<T, float>)
        ring = std::make_unique<sfm::ContextParallelGroup<sfm::RingAttention<sfm::ThreadComm, sfm::Cpu>, sfm::ThreadComm>>(comm);
      const sfm::ContextParallel<T>& group = cp == 1 ? static_cast<const sfm::ContextParallel<T>&>(single) : *ring;
      for (const bool recompute : {false, true}) {
        auto memory = [&](const sfm::ModelConfig& c) { return rank_memory<Prec>(c, parameters, batch, recompute, group); };
        nlohmann::json run = to_json(config, memory(config));
        run["cp"] = cp;
        run["recompute"] = recompute ? "all" : "none";
        run["largest_fit"] = nlohmann::json::array();
        for (const double gib : budgets_gib) {
          // The largest cube step that fits (memory grows with it), from the 2×2×2 grid on.
          const int64_t budget = int64_t(gib * double(int64_t(1) << 30));
          auto fits = [&](int64_t s) { return memory(cubic(config, s)).total() <= budget; };
          int64_t lo = 5, hi = 6;
          while (fits(hi)) lo = hi, hi *= 2;
          while (hi - lo > 1) {
            const int64_t mid = (lo + hi) / 2;
            (fits(mid) ? lo : hi) = mid;
          }
          nlohmann::json fit = nullptr;
          if (lo > 5) {
            const sfm::ModelConfig big = cubic(config, lo);
            fit = to_json(big, memory(big));
          }
          run["largest_fit"].push_back({{"budget_gib", gib}, {"fit", fit}});
        }
        runs.push_back(run);
      }
    });
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "long", precision_flag = "fp32";
  int64_t batch = 1;
  std::vector<double> budgets_gib;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model = value;
    else if (flag == "--batch") batch = std::stoll(value);
    else if (flag == "--precision") precision_flag = value;
    else if (flag == "--budget-gib") budgets_gib.push_back(std::stod(value));
    else {
      std::fprintf(stderr, "usage: bench_cp_memory [--model long] [--batch 1] [--precision fp32|bf16] [--budget-gib 80 ...]\n");
      return 2;
    }
  }
  if (budgets_gib.empty()) budgets_gib = {80, 141};  // H100, H200
  try {
    const sfm::PrecisionKind precision = sfm::parse_precision_kind(precision_flag, "--precision");
    const sfm::ModelConfig config = sfm::named_model_config(model);
    const int64_t parameters = sfm::VitMae<sfm::Cpu>(config, false).table().size();
    const nlohmann::json runs = sfm::visit_precision(
        precision, [&]<class Prec>(Prec) { return precision_runs<Prec>(config, parameters, batch, budgets_gib); });
    const nlohmann::json out = {{"benchmark", "cp_memory"}, {"model", model},
                                {"batch", batch},           {"precision", sfm::precision_name(precision)},
                                {"parameters", parameters}, {"budgets_gib", budgets_gib},
                                {"growth", "cubic"},        {"runs", runs}};
    std::printf("%s\n", out.dump(2).c_str());
  } catch (const sfm::Error& e) {
    std::fprintf(stderr, "bench_cp_memory: %s\n", e.what());
    return 2;
  }
}
