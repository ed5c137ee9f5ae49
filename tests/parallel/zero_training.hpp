// A small data-parallel training run used by the ZeRO tests (ThreadComm and MPI alike): every rank
// trains VitMae on its share of a fixed global batch, in micro-batches, through a ZeroOptimizer;
// and the plain single-rank run on the whole global batch that it must equal. Both at either
// precision (Fp32, Bf16Mixed: kernels/precision.hpp).
#pragma once

#include <cmath>
#include <cstring>
#include <vector>

#include "sample_volumes.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/lr_schedule.hpp"
#include "sfm/parallel/zero.hpp"

namespace sfm::test {

// A model whose groups have sizes that 2, 3 and 4 do not all divide (padding is exercised).
inline ModelConfig zero_test_config() {
  ModelConfig c;
  c.name = "zero-test";
  c.crop = {16, 16, 16};
  c.patch = {4, 4, 4};
  c.dim = 30, c.depth = 2, c.heads = 3;
  c.decoder_dim = 22, c.decoder_depth = 1, c.decoder_heads = 2;
  return c;
}

struct ZeroRun {
  int global_batch = 24;
  int micro_batches = 2;  // per rank and step
  int steps = 5;
  double lr = 1e-3;
  double clip = 0.05;     // small enough that clipping is active
  uint64_t seed = 9;
  Recompute recompute{};  // the model's activation recomputation
};

inline MaskPlan zero_test_mask(const ModelConfig& c, const ZeroRun& run, int step, int first, int count) {
  return mask_from_noise(mask_noise(run.seed, uint64_t(step), uint64_t(first), count, c.tokens()), count,
                         c.tokens(), RandomMask::len_keep(c));
}

inline double global_hidden(const ModelConfig& c, const ZeroRun& run) {
  return double(run.global_batch) * double(c.tokens() - RandomMask::len_keep(c));
}

// One rank's forward/backward passes of step `step`; returns this rank's share of the loss.
template <class Prec>
double zero_rank_passes(VitMae<Cpu, Prec>& model, const ZeroRun& run, int step, int rank, int ranks) {
  const ModelConfig& c = model.config();
  const int per_rank = run.global_batch / ranks, micro = per_rank / run.micro_batches;
  double loss = 0;
  for (int m = 0; m < run.micro_batches; ++m) {
    const int first = rank * per_rank + m * micro;
    const auto volumes = sample_volumes(c, step, first, micro);
    loss += model.forward(volumes.data(), zero_test_mask(c, run, step, first, micro), global_hidden(c, run));
    model.backward();
  }
  return loss;
}

// Trains `run.steps` steps with ZeRO stage `Stage` on `comm`; returns the final full parameters and
// fills `losses` with the global loss of each step (summed over ranks).
template <int Stage, class Prec = Fp32, class Comm>
std::vector<float> train_zero(Comm& comm, const ZeroRun& run, std::vector<double>* losses = nullptr) {
  VitMae<Cpu, Prec> model(zero_test_config(), /*resident=*/false);
  ZeroOptimizer<ZeroStage<Stage>, Comm, sfm::Cpu, Prec> zero(model.table(), comm);
  model.use_param_store(zero);
  model.set_recompute(run.recompute);
  zero.init_params(run.seed);
  for (int step = 0; step < run.steps; ++step) {
    double loss = zero_rank_passes(model, run, step, comm.rank(), comm.size());
    comm.all_reduce(std::span<double>(&loss, 1));
    if (losses) losses->push_back(loss);
    const double norm = zero.step(run.lr, run.clip);
    SFM_CHECK(norm > run.clip, "test setup: the gradient norm ", norm, " does not exceed the clip ", run.clip);
  }
  return zero.gather_state().params;
}

// The plain path: one rank, the whole global batch in one forward, the resident model and AdamW.
template <class Prec = Fp32>
std::vector<float> train_single_rank(const ZeroRun& run, std::vector<double>* losses = nullptr) {
  VitMae<Cpu, Prec> model(zero_test_config());
  model.init_weights(run.seed);
  AdamW<Cpu> optimizer(model.table(), AdamWConfig{});
  for (int step = 0; step < run.steps; ++step) {
    model.zero_grad();
    const auto volumes = sample_volumes(model.config(), step, 0, run.global_batch);
    const double loss = model.forward(volumes.data(), zero_test_mask(model.config(), run, step, 0, run.global_batch));
    if (losses) losses->push_back(loss);
    model.backward();
    const double norm = std::sqrt(squared_norm(model.grads()));
    optimizer.step(model.params(), model.grads(), run.lr, clip_coefficient(norm, run.clip));
  }
  return {model.params().begin(), model.params().end()};
}

// Number of elements whose bits differ (the ZeRO stages must agree bit for bit).
inline size_t bitwise_differences(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return count;
}

// The key part of every attention qkv bias, [D, 2D) of each `attn.qkv.bias`. Its gradient is zero
// in exact arithmetic (adding a constant to every key's logit of a query leaves the softmax
// unchanged), so what it receives is rounding noise, which AdamW normalises into lr-sized steps:
// any change of summation order (micro-batches, ranks) moves these parameters by O(lr), in PyTorch
// as here. Comparisons of different reduction orders leave them out.
inline std::vector<bool> key_bias_elements(const ParamTable& table) {
  std::vector<bool> skip(size_t(table.size()), false);
  for (const ParamInfo& p : table.entries())
    if (p.name.ends_with("attn.qkv.bias"))
      for (int64_t i = p.numel / 3; i < 2 * p.numel / 3; ++i) skip[size_t(p.offset + i)] = true;
  return skip;
}

// max |a − b| / max |b| over the parameters, key biases excluded (see key_bias_elements).
inline double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  const VitMae<Cpu> model(zero_test_config(), false);
  const std::vector<bool> skip = key_bias_elements(model.table());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (skip[i]) continue;
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

}  // namespace sfm::test
