// The CPU side of the CUDA trainer test (test_trainer_cuda.cu): train<Cpu> on one SerialComm rank,
// defined in trainer_cpu_reference.cpp so that the host compiler, not nvcc, compiles Eigen.
#pragma once

#include <filesystem>

#include "sfm/train/trainer.hpp"

namespace sfm::test {

TrainResult train_cpu(const TrainConfig& config, const std::filesystem::path& resume = {});

}  // namespace sfm::test
