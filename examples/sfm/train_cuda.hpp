// The CUDA half of `sfm train` (cuda.cu, compiled by nvcc when CMake finds CUDA, NCCL and MPI,
// which then defines SFM_CLI_HAVE_CUDA_TRAIN for train.cpp): train<Cuda> on an NcclComm built from
// the host world train.cpp chose, one GPU per rank.
#pragma once

#include "sfm/comm/serial.hpp"
#include "sfm/train/trainer.hpp"

namespace sfm {
class MpiComm;
}

namespace sfm::cli {

// No launcher: one rank on the current GPU (a single-rank NcclComm; MPI is not started).
TrainResult train_cuda(const TrainConfig& config, SerialComm& world, const TrainOptions& options);
// Under mpirun/srun: NcclComm bootstrapped over `world`, rank r on GPU local_rank % device count.
TrainResult train_cuda(const TrainConfig& config, MpiComm& world, const TrainOptions& options);

}  // namespace sfm::cli
