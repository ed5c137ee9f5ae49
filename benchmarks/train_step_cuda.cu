// Times full training steps (forward, backward, AdamW) of a named config on the CUDA backend and
// prints one JSON object: step time, samples/s, tokens/s, achieved TFLOP/s and device memory.
//
//   bench_train_step_cuda [--config base] [--batch 64] [--steps 5] [--warmup 2] [--precision fp32|tf32]
//
// The CUDA model runs with fp32 activations: GEMMs in fp32 or, with --precision tf32, on TF32
// tensor cores; attention is the fp32 SIMT kernel. Compare with the PyTorch reference on the same
// card (tests/reference/mae_reference.py bench --device cuda).
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "sfm/data/synthetic.hpp"
#include "sfm/kernels/cuda/kernels.cuh"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/train/flops.hpp"

int main(int argc, char** argv) try {
  std::string config_name = "base";
  std::string precision = "fp32";
  int64_t batch = 64, steps = 5, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") config_name = value;
    else if (key == "--batch") batch = std::stoll(value);
    else if (key == "--steps") steps = std::stoll(value);
    else if (key == "--warmup") warmup = std::stoll(value);
    else if (key == "--precision") precision = value;
    else sfm::fail("unknown option ", key);
  }
  SFM_CHECK(precision == "fp32" || precision == "tf32", "--precision: fp32 or tf32, not ", precision);
  sfm::cuda_context().tf32_matmul = precision == "tf32";
  const sfm::ModelConfig config = sfm::named_model_config(config_name);
  size_t free_before = 0, total = 0;
  SFM_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));

  sfm::VitMae<sfm::Cuda> model(config);
  model.init_weights(0);
  sfm::AdamW<sfm::Cuda> optimizer(model.table(), sfm::AdamWConfig{});
  const auto host_volumes = sfm::synthesize_seismic({{batch * config.crop[0], config.crop[1], config.crop[2]}, 1});
  sfm::DeviceArray<float> volumes;
  volumes.assign(host_volumes.begin(), host_volumes.end());
  const int64_t N = config.tokens(), K = sfm::RandomMask::len_keep(config);

  using clock = std::chrono::steady_clock;
  double seconds = 0;
  size_t free_min = free_before;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const sfm::MaskPlan mask = sfm::mask_from_noise(sfm::mask_noise(0, uint64_t(step), 0, batch, N), batch, N, K);
    SFM_CUDA_CHECK(cudaDeviceSynchronize());
    const auto start = clock::now();
    model.zero_grad();
    model.forward(volumes.data(), mask);
    model.backward();
    const double norm = std::sqrt(sfm::squared_norm(sfm::Cuda{}, model.grads().data(), int64_t(model.grads().size())));
    optimizer.step(model.params(), model.grads(), 1e-4, sfm::clip_coefficient(norm, 1.0));
    SFM_CUDA_CHECK(cudaDeviceSynchronize());
    if (step >= warmup) seconds += std::chrono::duration<double>(clock::now() - start).count();
    size_t free_now = 0;
    SFM_CUDA_CHECK(cudaMemGetInfo(&free_now, &total));
    free_min = std::min(free_min, free_now);
  }
  const double step_s = seconds / double(steps);
  const double flops = sfm::train_step_flops(config, K, batch);
  cudaDeviceProp prop{};
  SFM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const nlohmann::json result{{"framework", "sfm"},
                              {"backend", "cuda"},
                              {"precision", precision},
                              {"device", prop.name},
                              {"model", config_name},
                              {"batch", batch},
                              {"steps", steps},
                              {"step_ms", step_s * 1e3},
                              {"samples_per_s", double(batch) / step_s},
                              {"tokens_per_s", double(batch * N) / step_s},
                              {"tflops", flops * 1e-12 / step_s},
                              {"activation_bytes", model.activation_bytes()},
                              {"device_memory_used_gib", double(free_before - free_min) / double(1 << 30)}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step_cuda: error: %s\n", e.what());
  return 2;
}
