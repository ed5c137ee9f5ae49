// Times full training steps (forward, backward, AdamW) of a named config on the CPU backend and
// prints one JSON object: step time, samples/s, tokens/s and achieved GFLOP/s.
//
//   bench_train_step [--config small] [--batch 8] [--steps 5] [--warmup 1] [--threads T]
//
// Inputs are synthetic seismic crops; FLOPs count the GEMMs and attention matmuls (forward, and
// twice that for backward), the figure every MAE/ViT paper reports. The loop is
// train/step_bench.hpp's, shared with `sfm bench train` and bench_train_step_cuda.
#include <omp.h>

#include <cstdio>
#include <string>

#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/step_bench.hpp"

int main(int argc, char** argv) try {
  std::string config_name = "small";
  sfm::StepBenchOptions options;
  int threads = omp_get_max_threads();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") config_name = value;
    else if (key == "--threads") threads = std::stoi(value);
    else if (!options.set(key, value)) sfm::fail("unknown option ", key);
  }
  omp_set_num_threads(threads);
  const sfm::StepBenchResult r = sfm::time_train_steps<sfm::Cpu>(sfm::named_model_config(config_name), options);
  nlohmann::json result = r.to_json();
  result["framework"] = "sfm", result["backend"] = "cpu", result["threads"] = threads;
  std::printf("%s\n", result.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step: error: %s\n", e.what());
  return 2;
}
