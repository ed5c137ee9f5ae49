// LayerNorm kernels (CUDA) over the last dimension, with the per-row statistics the backward needs.
// Reference: kernels/cpu/layernorm.hpp.
//
// One warp per row: lanes stride over the row, fp32 sums reduced with warp shuffles (two passes for
// the variance, as the CPU). Statistics (mean, rstd) are fp32 whatever T is. The backward's d_in is
// per row in the same warp; d_gamma and d_beta are column sums over all rows, computed by the
// deterministic two-pass reduction of reduce.cuh (no float atomics), accumulated in double.
#pragma once

#include <cstdint>
#include <type_traits>

#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/cuda/reduce.cuh"

namespace sfm {

namespace cuda_detail {

constexpr int kRowsPerBlock = 8;  // warps per block, one row each

// Σ over the 32 lanes; every lane gets the same bits (xor butterfly: each step adds a pair in both orders).
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// CPU: mean = Σx/dim; var = Σ(x − mean)²/dim; y = (x − mean)·rstd·gamma + beta.
template <class T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* in, const T* gamma,
                                         const T* beta, int64_t rows, int64_t dim, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= rows) return;  // whole warps leave together
  const T* x = in + r * dim;
  float sum = 0;
  for (int64_t i = lane; i < dim; i += 32) sum += to_f32(x[i]);
  const float mu = warp_sum(sum) / float(dim);
  float sq = 0;
  for (int64_t i = lane; i < dim; i += 32) {
    const float d = to_f32(x[i]) - mu;
    sq += d * d;
  }
  const float inv = 1.0f / sqrtf(warp_sum(sq) / float(dim) + eps);  // both correctly rounded (not rsqrtf)
  T* y = out + r * dim;
  for (int64_t i = lane; i < dim; i += 32)
    y[i] = from_f32<T>((to_f32(x[i]) - mu) * inv * to_f32(gamma[i]) + to_f32(beta[i]));
  if (lane == 0) {
    mean[r] = mu;
    rstd[r] = inv;
  }
}

// CPU: with xhat = (x − mean)·rstd and g = d_out·gamma,
//   d_x += rstd · (g − mean(g) − xhat · mean(g · xhat)).
template <class T>
__global__ void layernorm_backward_kernel(T* d_in, const T* d_out, const T* in, const float* mean,
                                          const float* rstd, const T* gamma, int64_t rows, int64_t dim) {
  const int lane = threadIdx.x % 32;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= rows) return;
  const T* x = in + r * dim;
  const T* dy = d_out + r * dim;
  const float mu = mean[r], inv = rstd[r];
  float g_sum = 0, gx_sum = 0;
  for (int64_t i = lane; i < dim; i += 32) {
    const float g = to_f32(dy[i]) * to_f32(gamma[i]);
    g_sum += g;
    gx_sum += g * (to_f32(x[i]) - mu) * inv;
  }
  const float g_mean = warp_sum(g_sum) / float(dim), gx_mean = warp_sum(gx_sum) / float(dim);
  T* dx = d_in + r * dim;
  for (int64_t i = lane; i < dim; i += 32) {
    const float xhat = (to_f32(x[i]) - mu) * inv;
    const float g = to_f32(dy[i]) * to_f32(gamma[i]);
    dx[i] = from_f32<T>(to_f32(dx[i]) + inv * (g - g_mean - xhat * gx_mean));
  }
}

// Column sources for d_gamma (v[0] = d_out·xhat) and d_beta (v[1] = d_out).
template <class T>
struct LayernormParamGrad {
  const T* d_out;
  const T* in;
  const float* mean;
  const float* rstd;
  int64_t dim;
  __device__ void operator()(int64_t r, int64_t c, double (&v)[2]) const {
    const double dy = to_f32(d_out[r * dim + c]);
    v[0] = dy * ((double(to_f32(in[r * dim + c])) - mean[r]) * rstd[r]);
    v[1] = dy;
  }
};

template <class G>
struct LayernormParamSink {
  G* d_gamma;
  G* d_beta;
  __device__ void operator()(int64_t c, const double (&sum)[2]) const {
    d_gamma[c] = from_f32<G>(to_f32(d_gamma[c]) + float(sum[0]));
    d_beta[c] = from_f32<G>(to_f32(d_beta[c]) + float(sum[1]));
  }
};

}  // namespace cuda_detail

// out = layernorm(in)·gamma + beta per row; mean and rstd [rows] in fp32 (overwritten).
template <class T>
void layernorm_forward(Cuda, T* out, float* mean, float* rstd, const T* in, const T* gamma, const T* beta,
                       int64_t rows, int64_t dim, double eps) {
  using namespace cuda_detail;
  if (rows <= 0) return;
  const unsigned blocks = unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  layernorm_forward_kernel<<<blocks, 32 * kRowsPerBlock, 0, cuda_context().stream>>>(out, mean, rstd, in, gamma, beta,
                                                                                    rows, dim, float(eps));
  SFM_CUDA_CHECK_LAUNCH();
}

// d_in += ∂loss/∂x (accumulated: the input is a residual stream); d_gamma, d_beta accumulated.
// G, the parameter-gradient type, is T or float (fp32 master gradients).
template <class T, class G>
  requires(std::is_same_v<G, T> || std::is_same_v<G, float>)
void layernorm_backward(Cuda, T* d_in, G* d_gamma, G* d_beta, const T* d_out, const T* in, const float* mean,
                        const float* rstd, const T* gamma, int64_t rows, int64_t dim) {
  using namespace cuda_detail;
  if (rows > 0) {
    const unsigned blocks = unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
    layernorm_backward_kernel<<<blocks, 32 * kRowsPerBlock, 0, cuda_context().stream>>>(d_in, d_out, in, mean, rstd,
                                                                                       gamma, rows, dim);
    SFM_CUDA_CHECK_LAUNCH();
  }
  column_reduce<2>(LayernormParamGrad<T>{d_out, in, mean, rstd, dim}, LayernormParamSink<G>{d_gamma, d_beta}, rows,
                   dim);
}

}  // namespace sfm
