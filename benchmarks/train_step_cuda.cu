// Times full training steps (forward, backward, AdamW) of a named config on the CUDA backend and
// prints one JSON object: step time, samples/s, tokens/s, achieved TFLOP/s and device memory.
//
//   bench_train_step_cuda [--config base] [--batch 64] [--steps 5] [--warmup 2] [--precision fp32|tf32]
//
// The CUDA model runs with fp32 activations: GEMMs in fp32 or, with --precision tf32, on TF32
// tensor cores; attention is the fp32 SIMT kernel. Compare with the PyTorch reference on the same
// card (tests/reference/mae_reference.py bench --device cuda).
#include <cstdio>
#include <string>

#include "sfm/kernels/cuda/step_bench.cuh"

int main(int argc, char** argv) try {
  std::string config_name = "base", precision = "fp32";
  sfm::StepBenchOptions options;
  options.batch = 64, options.warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") config_name = value;
    else if (key == "--precision") precision = value;
    else if (!options.set(key, value)) sfm::fail("unknown option ", key);
  }
  std::printf("%s\n", sfm::cuda_train_bench(sfm::named_model_config(config_name), options, precision).dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step_cuda: error: %s\n", e.what());
  return 2;
}
