// Exact (erf) GELU kernels (CUDA): gelu(x) = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)).
// Reference: kernels/cpu/gelu.hpp. Elementwise, fp32 math whatever T is; in-place use (d_in ==
// d_out, as the model does) is fine since each thread reads its element before writing it.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"

namespace sfm {

namespace cuda_detail {

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f32(in[i]);
    out[i] = from_f32<T>(0.5f * x * (1.0f + erff(x * kInvSqrt2)));
  }
}

// d_in = d_out · (Φ(x) + x · φ(x)).
template <class T>
__global__ void gelu_backward_kernel(T* d_in, const T* d_out, const T* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f32(in[i]);
    const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
    d_in[i] = from_f32<T>(to_f32(d_out[i]) * (cdf + x * pdf));
  }
}

}  // namespace cuda_detail

template <class T>
void gelu_forward(Cuda, T* out, const T* in, int64_t n) {
  if (n <= 0) return;
  cuda_detail::gelu_forward_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(out, in, n);
  SFM_CUDA_CHECK_LAUNCH();
}

// d_in = d_out · gelu'(in) (overwritten; d_in may alias d_out).
template <class T>
void gelu_backward(Cuda, T* d_in, const T* d_out, const T* in, int64_t n) {
  if (n <= 0) return;
  cuda_detail::gelu_backward_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(d_in, d_out, in,
                                                                                                       n);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace sfm
