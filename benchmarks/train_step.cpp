// Times full training steps (forward, backward, AdamW) of a named config on the CPU backend and
// prints one JSON object: step time, samples/s, tokens/s and achieved GFLOP/s.
//
//   bench_train_step [--config small] [--batch 8] [--steps 5] [--warmup 1] [--threads T]
//
// Inputs are synthetic seismic crops; FLOPs count the GEMMs and attention matmuls (forward, and
// twice that for backward), the figure every MAE/ViT paper reports.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "sfm/data/synthetic.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/train/flops.hpp"

int main(int argc, char** argv) try {
  std::string config_name = "small";
  int64_t batch = 8, steps = 5, warmup = 1, threads = omp_get_max_threads();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") config_name = value;
    else if (key == "--batch") batch = std::stoll(value);
    else if (key == "--steps") steps = std::stoll(value);
    else if (key == "--warmup") warmup = std::stoll(value);
    else if (key == "--threads") threads = std::stoll(value);
    else {
      std::fprintf(stderr, "bench_train_step: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  omp_set_num_threads(int(threads));
  const sfm::ModelConfig config = sfm::named_model_config(config_name);
  sfm::VitMae<sfm::Cpu> model(config);
  model.init_weights(0);
  sfm::AdamW<sfm::Cpu> optimizer(model.table(), sfm::AdamWConfig{});
  const std::vector<float> volume = sfm::synthesize_seismic({{batch * config.crop[0], config.crop[1], config.crop[2]}, 1});
  const int64_t N = config.tokens(), K = sfm::RandomMask::len_keep(config);

  using clock = std::chrono::steady_clock;
  double seconds = 0;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const sfm::MaskPlan mask = sfm::mask_from_noise(sfm::mask_noise(0, uint64_t(step), 0, batch, N), batch, N, K);
    const auto start = clock::now();
    model.zero_grad();
    model.forward(volume.data(), mask);
    model.backward();
    const double norm = std::sqrt(sfm::squared_norm(model.grads()));
    optimizer.step(model.params(), model.grads(), 1e-4, sfm::clip_coefficient(norm, 1.0));
    if (step >= warmup) seconds += std::chrono::duration<double>(clock::now() - start).count();
  }
  const double step_s = seconds / double(steps);
  const double flops = sfm::train_step_flops(config, K, batch);
  const nlohmann::json result{{"framework", "sfm"},
                              {"backend", "cpu"},
                              {"model", config_name},
                              {"batch", batch},
                              {"threads", threads},
                              {"steps", steps},
                              {"step_ms", step_s * 1e3},
                              {"samples_per_s", double(batch) / step_s},
                              {"tokens_per_s", double(batch * N) / step_s},
                              {"gflop_per_step", flops * 1e-9},
                              {"gflops", flops * 1e-9 / step_s},
                              {"activation_bytes", model.activation_bytes()}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step: error: %s\n", e.what());
  return 2;
}
