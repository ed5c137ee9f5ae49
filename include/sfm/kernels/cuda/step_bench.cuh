// The train-step benchmark on the CUDA backend (train/step_bench.hpp's loop): fp32 with GEMMs in fp32
// or, with precision "tf32", on TF32 tensor cores; or "bf16" (Bf16Mixed: bf16 activations and GEMM
// operands, fp32 accumulation and master weights), plus the device's name and the device memory the run held
// at its peak (sampled after every step). Used by bench_train_step_cuda and `sfm bench train
// --backend cuda`; compiled by nvcc only.
#pragma once

#include <algorithm>
#include <string>

#include "sfm/kernels/cuda/kernels.cuh"
#include "sfm/train/step_bench.hpp"

namespace sfm {

inline nlohmann::json cuda_train_bench(const ModelConfig& config, StepBenchOptions options,
                                       const std::string& precision) {
  SFM_CHECK(precision == "fp32" || precision == "tf32" || precision == "bf16", "--precision: fp32, tf32 or bf16, not ",
            precision);
  cuda_context().tf32_matmul = precision == "tf32";
  size_t free_before = 0, total = 0;
  SFM_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  size_t free_min = free_before;
  options.after_step = [&] {
    size_t free_now = 0, ignored = 0;
    SFM_CUDA_CHECK(cudaMemGetInfo(&free_now, &ignored));
    free_min = std::min(free_min, free_now);
  };
  const StepBenchResult r = precision == "bf16" ? time_train_steps<Cuda, Bf16Mixed>(config, options)
                                                : time_train_steps<Cuda, Fp32>(config, options);
  cudaDeviceProp prop{};
  SFM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  nlohmann::json result = r.to_json();
  result["framework"] = "sfm", result["backend"] = Cuda::name, result["precision"] = precision;
  result["device"] = prop.name;
  result["tflops"] = r.flops_per_s() * 1e-12;
  result["device_memory_used_gib"] = double(free_before - free_min) / double(1 << 30);
  return result;
}

}  // namespace sfm
