// `sfm bench train --backend cuda`: the CUDA train-step benchmark (train/step_bench_cuda.cuh), in
// its own translation unit because only nvcc compiles the CUDA backend. Built when CMake finds CUDA.
#include "bench_cuda.hpp"
#include "sfm/train/step_bench_cuda.cuh"

namespace sfm::cli {

nlohmann::json bench_train_cuda(const ModelConfig& config, const StepBenchOptions& options,
                                const std::string& precision) {
  return cuda_train_bench(config, options, precision);
}

}  // namespace sfm::cli
