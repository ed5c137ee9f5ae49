// The main of the single-process CUDA test binaries: Catch2 (2.x or 3.x) when a CUDA device is
// present; otherwise a loud SKIPPED line and exit code 77 (tests/cuda_device.hpp).
#include "catch_main.hpp"
#include "cuda_device.hpp"

int main(int argc, char** argv) {
  if (!sfm::test::cuda_device_present()) return 77;
  return Catch::Session().run(argc, argv);
}
