// Elementwise helpers and host transfers (CUDA): y += x, fill with zeros, Σx², device → device and
// host ↔ device copies.
// Reference: kernels/cpu/elementwise.hpp.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"

namespace sfm {

namespace cuda_detail {

template <class T>
__global__ void add_inplace_kernel(T* y, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(to_f32(y[i]) + to_f32(x[i]));
}

template <class Dst, class Src>
__global__ void convert_elements_kernel(Dst* dst, const Src* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<Dst>(to_f32(src[i]));
}

// Σx² of a slice per block, in double, in a fixed order (strided per thread, then a tree over the
// block's threads); the host adds the block partials in block order. No atomics: reproducible.
constexpr int kNormThreads = 256;
__global__ inline void squared_norm_partials_kernel(double* partial, const float* x, int64_t n) {
  __shared__ double lanes[kNormThreads];
  double sum = 0;
  for (int64_t i = blockIdx.x * int64_t(kNormThreads) + threadIdx.x; i < n; i += int64_t(gridDim.x) * kNormThreads)
    sum += double(x[i]) * double(x[i]);
  lanes[threadIdx.x] = sum;
  __syncthreads();
  for (int width = kNormThreads / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) lanes[threadIdx.x] += lanes[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = lanes[0];
}

}  // namespace cuda_detail

// start + Σ x[i]² in double (synchronises: the result comes back to the host). The block partials
// are added to `start` in block order, so summing ranges one after another keeps a fixed order.
inline double squared_norm(Cuda, const float* x, int64_t n, double start = 0) {
  if (n <= 0) return start;
  const int blocks = int(std::min<int64_t>(1024, (n + cuda_detail::kNormThreads - 1) / cuda_detail::kNormThreads));
  DeviceArray<double> partial(static_cast<size_t>(blocks));
  cuda_detail::squared_norm_partials_kernel<<<blocks, cuda_detail::kNormThreads, 0, cuda_context().stream>>>(
      partial.data(), x, n);
  SFM_CUDA_CHECK_LAUNCH();
  double sum = start;
  for (double p : partial.to_host()) sum += p;
  return sum;
}

// dst[0, n) = src[0, n), both device memory, on the compute stream (the CPU's std::copy_n).
template <class T>
void copy_elements(Cuda, T* dst, const T* src, int64_t n) {
  if (n <= 0) return;
  SFM_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(T), cudaMemcpyDeviceToDevice, cuda_context().stream));
}

// dst[i] = src[i] converted to Dst (fp32 master weights → their bf16 compute copy, rounded to
// nearest even), device memory, on the compute stream.
template <class Dst, class Src>
void convert_elements(Cuda, Dst* dst, const Src* src, int64_t n) {
  if (n <= 0) return;
  cuda_detail::convert_elements_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(dst, src, n);
  SFM_CUDA_CHECK_LAUNCH();
}

// Device memory ← host memory, and back (the copy back waits for the compute stream).
template <class T>
void copy_from_host(Cuda, T* device, const T* host, int64_t n) {
  if (n <= 0) return;
  SFM_CUDA_CHECK(cudaMemcpyAsync(device, host, size_t(n) * sizeof(T), cudaMemcpyHostToDevice, cuda_context().stream));
  SFM_CUDA_CHECK(cudaStreamSynchronize(cuda_context().stream));  // the host buffer may go right after
}
template <class T>
void copy_to_host(Cuda, T* host, const T* device, int64_t n) {
  if (n <= 0) return;
  SFM_CUDA_CHECK(cudaMemcpyAsync(host, device, size_t(n) * sizeof(T), cudaMemcpyDeviceToHost, cuda_context().stream));
  SFM_CUDA_CHECK(cudaStreamSynchronize(cuda_context().stream));
}

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
