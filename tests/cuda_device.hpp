// Whether a CUDA test binary can run here. Without a CUDA device (no driver library, libcuda.so.1,
// at all, or a driver that sees no device) it prints a loud SKIPPED line and its main returns 77, which ctest reports as skipped
// (SKIP_RETURN_CODE 77). Any other CUDA error — a device that is there but broken, a driver too old
// for the toolkit — is a failure, not a skip; and with SFM_REQUIRE_GPU=1 (scripts/gpu-check.sh
// sets it) a missing device is a failure too, so a GPU check can never go green without running.
#pragma once

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sfm::test {

// -1 when the tests should run; else the exit code for main: 77 (skip) or 1 (fail).
inline int cuda_test_gate() {
  const char* required = std::getenv("SFM_REQUIRE_GPU");
  const bool require = required && std::strcmp(required, "0") != 0 && required[0] != '\0';
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  // Without libcuda the runtime says "driver version is insufficient": that is no GPU, not a broken one.
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!driver) driver = dlopen("libcuda.so.1", RTLD_LAZY);
  const bool no_driver = driver == nullptr;
  if (driver) dlclose(driver);
  const bool absent = no_driver || status == cudaErrorNoDevice || (status == cudaSuccess && count == 0);
  if (status != cudaSuccess || count == 0) {
    const char* why = status != cudaSuccess ? cudaGetErrorString(status) : "0 devices";
    if (absent && !require) {
      std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s)\n", why);
      std::fflush(stdout);
      return 77;
    }
    std::printf("FAILED: %s (cudaGetDeviceCount: %s)\n",
                absent ? "SFM_REQUIRE_GPU is set but there is no CUDA device" : "the CUDA device or driver is broken", why);
    std::fflush(stdout);
    return 1;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("CUDA device 0: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  return -1;
}

}  // namespace sfm::test
