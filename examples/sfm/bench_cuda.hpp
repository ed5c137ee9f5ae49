// The CUDA half of `sfm bench train` (cuda.cu, compiled by nvcc when CMake finds CUDA, which
// then defines SFM_CLI_HAVE_CUDA for the rest of the CLI).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sfm/train/step_bench.hpp"

namespace sfm::cli {

nlohmann::json bench_train_cuda(const ModelConfig& config, const StepBenchOptions& options, const std::string& precision);

}  // namespace sfm::cli
