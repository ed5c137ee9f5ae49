// Whether a CUDA test binary can run here: without a CUDA device it prints a loud SKIPPED line, and
// its main returns 77, which ctest reports as skipped (SKIP_RETURN_CODE 77).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>

namespace sfm::test {

inline bool cuda_device_present() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s)\n",
                status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
    std::fflush(stdout);
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("CUDA device 0: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  return true;
}

}  // namespace sfm::test
