// ZeroOptimizer<ZeroStage<k>, NcclComm, Cuda> (k = 0..3) training VitMae<Cuda> against
// ZeroOptimizer<ZeroStage<k>, SerialComm, Cpu> training VitMae<Cpu> on the same data: the loss and
// the global gradient norm of every step agree to fp32 GEMM precision (GEMMs in strict fp32, TF32
// off), and gather_state → load_state → gather_state is exact on the device. One rank on one GPU
// (mpiexec -n 1: NcclComm bootstraps through MPI). The collectives run on cuda_context().comm_stream,
// apart from the compute stream, so the stream order ZeRO sets up (reductions after the gradient
// kernels, the accumulator and AdamW after the reductions) is what this checks. Without a CUDA
// device it prints "SKIPPED: no CUDA device" and exits 77.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "sfm/comm/mpi.hpp"
#include "sfm/comm/nccl.hpp"
#include "sfm_test.hpp"
#include "sfm/kernels/cuda/kernels.cuh"
#include "zero_backend_training.hpp"

#ifndef SFM_HAS_NCCL_COMM
#error "sfm/comm/nccl.hpp did not enable NcclComm under nvcc"
#endif

namespace {

// The world NcclComm on the backend's communication stream, on the rank's GPU.
std::unique_ptr<sfm::NcclComm> make_world() {
  sfm::MpiComm mpi = sfm::MpiComm::world();
  int devices = 0;
  SFM_CUDA_CHECK(cudaGetDeviceCount(&devices));
  SFM_CUDA_CHECK(cudaSetDevice(mpi.local_rank() % devices));  // before cuda_context() creates its streams
  sfm::cuda_context().tf32_matmul = false;  // strict fp32 GEMMs: the mode compared with the CPU
  return std::make_unique<sfm::NcclComm>(mpi, sfm::cuda_context().comm_stream);
}

template <int Stage>
void compare_stage(sfm::NcclComm& comm, const sfm::test::ZeroBackendSpec& spec) {
  const auto cpu = sfm::test::run_zero_cpu(Stage, spec);
  const auto gpu = sfm::test::train_zero_backend<Stage, sfm::Cuda>(comm, spec);
  INFO(spec.config.name << ", ZeRO-" << Stage);
  REQUIRE(gpu.losses.size() == cpu.losses.size());
  double worst_loss = 0, worst_norm = 0;
  for (size_t s = 0; s < cpu.losses.size(); ++s) {
    const double loss_rel = std::abs(gpu.losses[s] - cpu.losses[s]) / std::abs(cpu.losses[s]);
    const double norm_rel = std::abs(gpu.grad_norms[s] - cpu.grad_norms[s]) / std::abs(cpu.grad_norms[s]);
    worst_loss = std::max(worst_loss, loss_rel), worst_norm = std::max(worst_norm, norm_rel);
    INFO("step " << s << ": loss cpu " << cpu.losses[s] << " gpu " << gpu.losses[s] << " (rel " << loss_rel
                 << "); grad norm cpu " << cpu.grad_norms[s] << " gpu " << gpu.grad_norms[s] << " (rel " << norm_rel
                 << ")");
    CHECK(loss_rel <= 1e-5);
    CHECK(norm_rel <= 1e-4);
  }
  CHECK(cpu.state_round_trip);
  CHECK(gpu.state_round_trip);
  std::printf("{\"test\": \"zero_cuda_vs_cpu\", \"model\": \"%s\", \"stage\": %d, \"steps\": %zu, "
              "\"worst_loss_rel\": %.3e, \"worst_grad_norm_rel\": %.3e}\n",
              spec.config.name.c_str(), Stage, cpu.losses.size(), worst_loss, worst_norm);
  std::fflush(stdout);
}

void compare_all_stages(const sfm::test::ZeroBackendSpec& spec) {
  const auto comm = make_world();
  REQUIRE(comm->size() == 1);  // the CPU reference is one rank: run under mpiexec -n 1
  compare_stage<0>(*comm, spec);
  compare_stage<1>(*comm, spec);
  compare_stage<2>(*comm, spec);
  compare_stage<3>(*comm, spec);
}

}  // namespace

TEST_CASE("ZeRO-0..3 on NcclComm and Cuda train tiny like SerialComm and Cpu") {
  sfm::test::ZeroBackendSpec spec;
  spec.config = sfm::named_model_config("tiny");
  compare_all_stages(spec);
}

TEST_CASE("ZeRO-0..3 on NcclComm and Cuda train small like SerialComm and Cpu") {
  sfm::test::ZeroBackendSpec spec;
  spec.config = sfm::named_model_config("small");
  spec.micro_batch = 1;
  spec.steps = 3;
  compare_all_stages(spec);
}
