// The main of the single-process CUDA test binaries: Catch2 (2.x or 3.x) when a CUDA device is
// present; otherwise a loud SKIPPED line and exit code 77 (tests/cuda_device.hpp).
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include "cuda_device.hpp"

int main(int argc, char** argv) {
  if (!sfm::test::cuda_device_present()) return 77;
  return Catch::Session().run(argc, argv);
}
