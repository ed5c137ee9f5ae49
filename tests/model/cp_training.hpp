// Context-parallel runs of VitMae used by the model and mesh tests (ThreadComm and MPI alike), and
// the single-rank runs they must equal: one forward/backward on a cp group, and training on a
// dp × cp mesh with ZeRO over the whole mesh.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "sample_volumes.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/context_parallel.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/parallel/attention.hpp"
#include "sfm/parallel/mesh.hpp"
#include "sfm/parallel/zero.hpp"

namespace sfm::test {

// A small model: 64 tokens of 64 voxels; head dims 16 and 12. N + 1 = 65 splits unevenly over 2 and
// 4 ranks, so decoder padding is exercised.
inline ModelConfig cp_test_config() {
  ModelConfig c;
  c.name = "cp-test";
  c.crop = {16, 16, 16};
  c.patch = {4, 4, 4};
  c.dim = 32, c.depth = 2, c.heads = 2;
  c.decoder_dim = 24, c.decoder_depth = 1, c.decoder_heads = 2;
  return c;
}

inline MaskPlan cp_mask(const ModelConfig& c, int step, int64_t first, int64_t count, int64_t len_keep) {
  return mask_from_noise(mask_noise(17, uint64_t(step), uint64_t(first), count, c.tokens()), count, c.tokens(),
                         len_keep);
}

inline std::vector<float> cp_test_params(const ModelConfig& c) {
  VitMae<Cpu> model(c);
  model.init_weights(5);
  return model.params_to_host();
}

struct Pass {
  double loss = 0;
  std::vector<float> grads;
  std::vector<float> prediction;  // the last sample's, at all N + 1 decoder positions
};

// One forward/backward of `batch` samples (step 0) through `model`, which holds `params`.
inline Pass run_pass(VitMae<Cpu>& model, const ModelConfig& c, int64_t batch, int64_t len_keep) {
  const auto volumes = sample_volumes(c, 0, 0, batch);
  Pass pass;
  pass.loss = model.forward(volumes.data(), cp_mask(c, 0, 0, batch, len_keep));
  pass.prediction = model.gather_prediction(batch - 1);
  model.backward();
  pass.grads = model.grads_to_host();
  return pass;
}

// The pass on one rank.
inline Pass single_rank_pass(const ModelConfig& c, const std::vector<float>& params, int64_t batch, int64_t len_keep,
                             Recompute recompute = {}) {
  VitMae<Cpu> model(c);
  model.params_from_host(params);
  model.set_recompute(recompute);
  return run_pass(model, c, batch, len_keep);
}

// The same on the cp group `comm` with attention policy Attention: every rank gets the loss and the
// gradients summed over the group.
template <template <class, class> class Attention, class Comm>
Pass cp_pass(Comm& comm, const ModelConfig& c, const std::vector<float>& params, int64_t batch, int64_t len_keep,
             Recompute recompute = {}) {
  ContextParallelGroup<Attention<Comm, sfm::Cpu>, Comm> group(comm);
  VitMae<Cpu> model(c);
  model.params_from_host(params);
  model.set_recompute(recompute);
  model.use_context_parallel(group);
  Pass pass = run_pass(model, c, batch, len_keep);
  comm.all_reduce(std::span<float>(pass.grads));
  return pass;
}

// The worst over tensors of max |a − ref| / max |ref| (the DESIGN.md gradient criterion).
inline double worst_gradient_error(const ParamTable& table, const std::vector<float>& a, const std::vector<float>& ref) {
  double worst = 0;
  for (const ParamInfo& p : table.entries()) {
    double diff = 0, scale = 0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      diff = std::max(diff, std::abs(double(a[size_t(i)]) - double(ref[size_t(i)])));
      scale = std::max(scale, std::abs(double(ref[size_t(i)])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

inline double relative_error(double a, double ref) { return std::abs(a - ref) / std::abs(ref); }

// max |a − ref| / max |ref| over two equally long arrays.
inline double max_relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(double(a.at(i)) - double(ref[i])));
    scale = std::max(scale, std::abs(double(ref[i])));
  }
  return diff / scale;
}

struct CpRun {
  int64_t global_batch = 4;
  int steps = 5;
  int64_t len_keep = 0;
  double lr = 1e-3;
  double clip = 1.0;
  uint64_t seed = 9;

  double global_hidden(const ModelConfig& c) const { return double(global_batch) * double(c.tokens() - len_keep); }
};

// Trains run.steps steps on a dp × cp mesh of `world`: ring attention over each cp group, ZeRO-2
// over the whole world. Returns the global loss of each step.
template <class Comm>
std::vector<double> train_mesh(Comm& world, int cp, const CpRun& run) {
  const ModelConfig c = cp_test_config();
  Mesh<Comm> mesh(world, cp);
  ContextParallelGroup<RingAttention<Comm, sfm::Cpu>, Comm> group(mesh.context_parallel());
  VitMae<Cpu> model(c, /*resident=*/false);
  ZeroOptimizer<ZeroStage<2>, Comm, sfm::Cpu> zero(model.table(), mesh.world());
  model.use_param_store(zero);
  model.use_context_parallel(group);
  zero.init_params(run.seed);
  const int64_t batch = mesh.local_batch(run.global_batch), first = mesh.first_sample(run.global_batch);
  std::vector<double> losses;
  for (int step = 0; step < run.steps; ++step) {
    const auto volumes = sample_volumes(c, step, first, batch);
    const double loss = model.forward(volumes.data(), cp_mask(c, step, first, batch, run.len_keep), run.global_hidden(c));
    model.backward();
    losses.push_back(mesh.global_loss(loss));
    zero.step(run.lr, run.clip);
  }
  return losses;
}

// The plain path: one rank, the whole global batch, resident parameters, AdamW.
inline std::vector<double> train_reference(const CpRun& run) {
  const ModelConfig c = cp_test_config();
  VitMae<Cpu> model(c);
  model.init_weights(run.seed);
  AdamW<Cpu> optimizer(model.table(), AdamWConfig{});
  std::vector<double> losses;
  for (int step = 0; step < run.steps; ++step) {
    model.zero_grad();
    const auto volumes = sample_volumes(c, step, 0, run.global_batch);
    losses.push_back(model.forward(volumes.data(), cp_mask(c, step, 0, run.global_batch, run.len_keep)));
    model.backward();
    const double norm = std::sqrt(squared_norm(model.grads()));
    optimizer.step(model.params(), model.grads(), run.lr, clip_coefficient(norm, run.clip));
  }
  return losses;
}

inline double worst_loss_error(const std::vector<double>& losses, const std::vector<double>& ref) {
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, relative_error(losses.at(i), ref[i]));
  return worst;
}

}  // namespace sfm::test
