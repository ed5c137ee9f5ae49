// Activation memory per rank of VitMae under context parallelism, and the largest volume that fits
// a memory budget per rank, for cp = 1, 2, 4; prints one JSON object.
//
//   bench_cp_memory [--model small] [--batch 1] [--budget-gib 16]
//
// Per rank (bytes, fp32, the CPU backend's layout; mask from AdaptiveMask{cp}):
//   activation_bytes     VitMae's activation arena (model/activations.hpp), sized from the carve
//                        without allocating: the sharded encoder and decoder rows plus the stem,
//                        which spans the whole token grid on every rank
//   attention_workspace  RingAttention's buffers for the larger of the encoder and decoder calls
//                        (none for cp = 1: the model's SingleRank runs the backend's kernels)
//   state_bytes          parameters, gradients and AdamW moments, unsharded (ZeRO divides them by
//                        the mesh size); reported, not counted against the budget
// The largest fit grows the crop along z (whole patches, y and x as configured) while
// activation_bytes + attention_workspace stays within the budget. The CPU kernels' per-thread score
// tiles (128 query rows × the keys of a block) come on top.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/comm/thread.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/activations.hpp"
#include "sfm/model/context_parallel.hpp"
#include "sfm/model/sequence_shard.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/parallel/attention.hpp"

namespace {

struct RankMemory {
  int64_t tokens = 0, len_keep = 0, activations = 0, workspace = 0;
  int64_t total() const { return activations + workspace; }
};

// Memory of one rank of a cp group running `config`; `group` answers for the attention workspace.
RankMemory rank_memory(const sfm::ModelConfig& config, int64_t batch, int cp, const sfm::ContextParallel& group) {
  RankMemory m;
  m.tokens = config.tokens();
  m.len_keep = sfm::AdaptiveMask{cp}.len_keep(config);
  m.activations = int64_t(sizeof(float)) *
                  sfm::Activations<std::vector>::floats(config, sfm::SequenceShard::activation_shape(config, batch, m.len_keep, cp));
  auto workspace = [&](int64_t length, int64_t dim, int64_t heads) {
    return int64_t(group.attention_workspace_bytes({batch, heads, length, length, dim / heads}));
  };
  m.workspace = std::max(workspace(m.len_keep + 1, config.dim, config.heads),
                         workspace(m.tokens + 1, config.decoder_dim, config.decoder_heads));
  return m;
}

sfm::ModelConfig with_depth_patches(sfm::ModelConfig config, int64_t gz) {
  config.crop[0] = gz * config.patch[0];
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "small";
  int64_t batch = 1;
  double budget_gib = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model = value;
    else if (flag == "--batch") batch = std::stoll(value);
    else if (flag == "--budget-gib") budget_gib = std::stod(value);
    else {
      std::fprintf(stderr, "usage: bench_cp_memory [--model small] [--batch 1] [--budget-gib 16]\n");
      return 2;
    }
  }
  const sfm::ModelConfig config = sfm::named_model_config(model);
  const int64_t budget = int64_t(budget_gib * double(int64_t(1) << 30));
  const int64_t state_bytes = 4 * int64_t(sizeof(float)) * sfm::VitMae<sfm::Cpu>(config, false).table().size();

  nlohmann::json runs = nlohmann::json::array();
  for (int cp : {1, 2, 4}) {
    sfm::run_ranks(cp, [&](sfm::ThreadComm& comm) {
      if (comm.rank() != 0) return;  // every rank of a group holds the same amount
      const sfm::ContextParallelGroup<sfm::RingAttention<sfm::ThreadComm>, sfm::ThreadComm> ring(comm);
      const sfm::SingleRank<sfm::Cpu> single;  // what the model runs with when cp = 1
      const sfm::ContextParallel& group = cp == 1 ? static_cast<const sfm::ContextParallel&>(single) : ring;
      const RankMemory here = rank_memory(config, batch, cp, group);
      // The largest whole-patch depth that fits: memory grows with the depth.
      auto fits = [&](int64_t gz) { return rank_memory(with_depth_patches(config, gz), batch, cp, group).total() <= budget; };
      int64_t lo = 0, hi = 1;
      while (fits(hi)) lo = hi, hi *= 2;
      while (hi - lo > 1) {
        const int64_t mid = (lo + hi) / 2;
        (fits(mid) ? lo : hi) = mid;
      }
      nlohmann::json largest = nullptr;
      if (lo > 0) {
        const sfm::ModelConfig big = with_depth_patches(config, lo);
        const RankMemory m = rank_memory(big, batch, cp, group);
        largest = {{"crop", big.crop}, {"tokens", m.tokens}, {"len_keep", m.len_keep}, {"activation_bytes", m.activations},
                   {"attention_workspace", m.workspace}};
      }
      runs.push_back({{"cp", cp},
                      {"tokens", here.tokens},
                      {"len_keep", here.len_keep},
                      {"activation_bytes", here.activations},
                      {"attention_workspace", here.workspace},
                      {"per_rank_bytes", here.total()},
                      {"largest_fit", largest}});
    });
  }
  const nlohmann::json out = {{"benchmark", "cp_memory"}, {"model", model},       {"crop", config.crop},
                              {"batch", batch},           {"budget_gib", budget_gib}, {"grow_axis", "z"},
                              {"state_bytes", state_bytes}, {"runs", runs}};
  std::printf("%s\n", out.dump(2).c_str());
}
