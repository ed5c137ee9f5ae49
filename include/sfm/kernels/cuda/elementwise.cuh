// Elementwise helpers (CUDA): y += x, fill with zeros. Reference: kernels/cpu/elementwise.hpp.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"

namespace sfm {

namespace cuda_detail {

template <class T>
__global__ void add_inplace_kernel(T* y, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(to_f32(y[i]) + to_f32(x[i]));
}

}  // namespace cuda_detail

// y[i] += x[i].
template <class T>
void add_inplace(Cuda, T* y, const T* x, int64_t n) {
  if (n <= 0) return;
  cuda_detail::add_inplace_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(y, x, n);
  SFM_CUDA_CHECK_LAUNCH();
}

// y[0, n) = 0 (all-zero bits are 0 for float and bf16).
template <class T>
void fill_zero(Cuda, T* y, int64_t n) {
  if (n <= 0) return;
  SFM_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(n) * sizeof(T), cuda_context().stream));
}

}  // namespace sfm
