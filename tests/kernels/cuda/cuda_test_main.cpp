// The main of the single-process CUDA test binaries: Catch2 (2.x or 3.x) when a CUDA device is
// present; otherwise a loud SKIPPED line and exit code 77, or a failure where the device is broken
// or SFM_REQUIRE_GPU=1 (tests/cuda_device.hpp).
#include "catch_main.hpp"
#include "cuda_device.hpp"

int main(int argc, char** argv) {
  if (const int code = sfm::test::cuda_test_gate(); code >= 0) return code;
  return Catch::Session().run(argc, argv);
}
