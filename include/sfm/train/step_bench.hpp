// Times full training steps of a named model on synthetic crops held in backend memory: zero_grad,
// forward, backward, the global gradient norm, clipping and AdamW — what `sfm bench train`,
// bench_train_step and bench_train_step_cuda report. One loop for every backend, so CPU and GPU
// figures measure the same work.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <nlohmann/json.hpp>
#include <vector>

#include "sfm/data/synthetic.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/train/flops.hpp"

namespace sfm {

struct StepBenchOptions {
  int64_t batch = 8, steps = 5, warmup = 1;
  std::function<void()> after_step;  // called after every step (e.g. to sample device memory)

  // A benchmark's "--batch", "--steps" or "--warmup" option; false for any other key.
  bool set(const std::string& key, const std::string& value) {
    int64_t* field = key == "--batch" ? &batch : key == "--steps" ? &steps : key == "--warmup" ? &warmup : nullptr;
    if (field != nullptr) *field = std::stoll(value);
    return field != nullptr;
  }
};

struct StepBenchResult {
  ModelConfig config;
  StepBenchOptions options;
  double step_s = 0;             // mean over the timed steps
  int64_t len_keep = 0;          // visible tokens per sample (MAE's count)
  int64_t activation_bytes = 0;  // the model's activation arena

  double samples_per_s() const { return double(options.batch) / step_s; }
  double tokens_per_s() const { return samples_per_s() * double(config.tokens()); }
  double flops_per_s() const { return train_step_flops(config, len_keep, options.batch) / step_s; }

  // The fields every train benchmark prints.
  nlohmann::json to_json() const {
    return {{"model", config.name},          {"batch", options.batch},
            {"steps", options.steps},        {"step_ms", step_s * 1e3},
            {"samples_per_s", samples_per_s()}, {"tokens_per_s", tokens_per_s()},
            {"gflops", flops_per_s() * 1e-9}, {"activation_bytes", activation_bytes}};
  }
};

// `options.warmup` untimed steps, then `options.steps` timed ones; each step waits for the backend
// before its clock stops. Masks differ per step (seeded by the step), the crops stay the same.
template <KernelBackend Backend, Precision Prec = Fp32>
StepBenchResult time_train_steps(const ModelConfig& config, const StepBenchOptions& options) {
  SFM_CHECK(options.batch >= 1 && options.steps >= 1 && options.warmup >= 0, "train benchmark: batch ",
            options.batch, " and steps ", options.steps, " must be positive, warmup ", options.warmup, " not negative");
  const Backend be{};
  VitMae<Backend, Prec> model(config);
  model.init_weights(0);
  AdamW<Backend> optimizer(model.table(), AdamWConfig{});
  const int64_t B = options.batch, N = config.tokens(), K = RandomMask::len_keep(config);
  const std::vector<float> host = synthesize_seismic({{B * config.crop[0], config.crop[1], config.crop[2]}, 1});
  typename Backend::template Array<float> crops;
  crops.assign(host.begin(), host.end());

  using clock = std::chrono::steady_clock;
  double seconds = 0;
  for (int64_t step = 0; step < options.warmup + options.steps; ++step) {
    const MaskPlan mask = mask_from_noise(mask_noise(0, uint64_t(step), 0, B, N), B, N, K);
    synchronize(be);
    const auto start = clock::now();
    model.zero_grad();
    model.forward(crops.data(), mask);
    model.backward();
    const double norm = std::sqrt(squared_norm(be, model.grads().data(), int64_t(model.grads().size())));
    optimizer.step(model.params(), model.grads(), 1e-4, clip_coefficient(norm, 1.0));
    synchronize(be);
    if (step >= options.warmup) seconds += std::chrono::duration<double>(clock::now() - start).count();
    if (options.after_step) options.after_step();
  }
  return {config, options, seconds / double(options.steps), K, model.activation_bytes()};
}

}  // namespace sfm
