// The main of the NCCL test binaries (under mpiexec, one rank per GPU): Catch2 in every MPI rank
// when a CUDA device is present; otherwise a loud SKIPPED line and exit code 77, or a failure where
// the device is broken or SFM_REQUIRE_GPU=1 (tests/cuda_device.hpp).
#include "catch_main.hpp"
#include "cuda_device.hpp"
#include "mpi_test_main.hpp"

int main(int argc, char** argv) {
  if (const int code = sfm::test::cuda_test_gate(); code >= 0) return code;
  sfm::MpiSession session(&argc, &argv);
  return sfm::test::run_catch_under_mpi(argc, argv);
}
