// The CLI's CUDA half, compiled by nvcc when CMake finds CUDA (one translation unit, so the
// backend's kernels are compiled once for the CLI):
//   `sfm bench train --backend cuda` (bench_cuda.hpp): the train-step benchmark of
//     kernels/cuda/step_bench.cuh.
//   `sfm train` with `"backend": "cuda"` (train_cuda.hpp; with NCCL and MPI, SFM_CLI_HAVE_CUDA_TRAIN):
//     the one trainer of train/trainer.hpp, instantiated for VitMae<Cuda> and
//     ZeroOptimizer<·, NcclComm, Cuda>.
//   `sfm embed --backend cuda` (embed_run.hpp): the encoder on VitMae<Cuda>, the windows' features
//     gathered over the host world (MpiComm with MPI, else one rank).
#include "bench_cuda.hpp"
#include "embed_run.hpp"
#include "sfm/kernels/cuda/step_bench.cuh"
#ifdef SFM_CLI_HAVE_CUDA_TRAIN
#include "sfm/comm/nccl.hpp"
#include "train_cuda.hpp"
#endif

namespace sfm::cli {

nlohmann::json bench_train_cuda(const ModelConfig& config, const StepBenchOptions& options,
                                const std::string& precision) {
  return cuda_train_bench(config, options, precision);
}

namespace {

// The visible GPUs; no driver or no device is the CUDA runtime's error, before anything starts.
int device_count() {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  SFM_CHECK(status == cudaSuccess, "backend cuda: ", cudaGetErrorString(status));
  SFM_CHECK(devices > 0, "backend cuda: no CUDA device is visible");
  return devices;
}

}  // namespace

void embed_cuda(const EmbedRequest& request, SerialComm& world) {
  device_count();
  run_embedding<Cuda>(request, world);
}

#ifdef SFM_CLI_HAVE_CUDA_TRAIN

TrainResult train_cuda(const TrainConfig& config, SerialComm&, const TrainOptions& options) {
  device_count();
  NcclComm world(cuda_context().comm_stream);
  return train<Cuda>(config, world, options);
}

TrainResult train_cuda(const TrainConfig& config, MpiComm& mpi, const TrainOptions& options) {
  // Before cuda_context() creates this thread's streams, which belong to the current device.
  SFM_CUDA_CHECK(cudaSetDevice(mpi.local_rank() % device_count()));
  NcclComm world(mpi, cuda_context().comm_stream);
  return train<Cuda>(config, world, options);
}

void embed_cuda(const EmbedRequest& request, MpiComm& world) {
  SFM_CUDA_CHECK(cudaSetDevice(world.local_rank() % device_count()));
  run_embedding<Cuda>(request, world);
}
#endif

}  // namespace sfm::cli
