// The MAE reconstruction loss (CUDA): per-token MSE against (optionally normalised) target patches,
// averaged over hidden tokens, fused with its gradient. Reference: kernels/cpu/mae_loss.hpp.
//
// One warp per token computes, in double like the CPU, the patch statistics (norm_pix_loss: mean
// and unbiased variance), the squared error and d_pred; it writes the token's mse into a scratch
// array. A single-block kernel then sums those in a fixed order (strided per thread, then a fixed
// tree), so the loss is bitwise reproducible. Returning the double to the host synchronises the
// compute stream once per call: acceptable for now; a step that must not sync can later keep the
// scalar on the device.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/cuda/tokens.cuh"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cuda_detail {

__device__ __forceinline__ double warp_sum_double(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

constexpr int kLossTokensPerBlock = 8;  // warps per block, one token each

template <class T>
__global__ void mae_loss_token_kernel(double* token_mse, TokenRows<T> d_pred, TokenRows<const T> pred,
                                      const T* target, const uint8_t* hidden, int64_t batch, int64_t tokens,
                                      int64_t patch_size, bool norm_pix, double normalizer) {
  const int lane = threadIdx.x % 32;
  const int64_t bt = int64_t(blockIdx.x) * kLossTokensPerBlock + threadIdx.x / 32;
  if (bt >= batch * tokens) return;  // whole warps leave together
  const int64_t b = bt / tokens, t = bt % tokens;
  T* dp = token_row(d_pred, b, t, patch_size);
  if (!hidden[bt]) {
    for (int64_t i = lane; i < patch_size; i += 32) dp[i] = from_f32<T>(0.0f);
    if (lane == 0) token_mse[bt] = 0;
    return;
  }
  const T* p = token_row(pred, b, t, patch_size);
  const T* y = target + bt * patch_size;
  const double n = double(patch_size);
  double mean = 0, scale = 1;
  if (norm_pix) {
    double sum = 0;
    for (int64_t i = lane; i < patch_size; i += 32) sum += to_f32(y[i]);
    mean = warp_sum_double(sum) / n;
    double sq = 0;
    for (int64_t i = lane; i < patch_size; i += 32) {
      const double d = to_f32(y[i]) - mean;
      sq += d * d;
    }
    scale = 1.0 / sqrt(warp_sum_double(sq) / (n - 1) + 1e-6);
  }
  double err = 0;
  for (int64_t i = lane; i < patch_size; i += 32) {
    const double diff = double(to_f32(p[i])) - (double(to_f32(y[i])) - mean) * scale;
    err += diff * diff;
    dp[i] = from_f32<T>(float(2 * diff / (n * normalizer)));
  }
  err = warp_sum_double(err);
  if (lane == 0) token_mse[bt] = err / n;
}

constexpr int kLossSumThreads = 1024;

// out[0] = Σ values[i] / normalizer in a fixed order: thread j sums i = j, j + 1024, ..., then a tree.
__global__ inline void fixed_order_sum_kernel(double* out, const double* values, int64_t n, double normalizer) {
  __shared__ double partial[kLossSumThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += kLossSumThreads) s += values[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int width = kLossSumThreads / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = partial[0] / normalizer;
}

}  // namespace cuda_detail

// pred: rows of P values (TokenRows, e.g. skipping the decoder's cls row); target [B, N, P];
// hidden [B, N] (device; 1 = masked token, counted). Returns Σ_hidden mse_token / normalizer and
// writes d_pred of it; d_pred rows of non-hidden tokens are zeroed. Synchronises the compute stream.
template <class T>
double mae_loss(Cuda, TokenRows<T> d_pred, InRows<T> pred, const T* target, const uint8_t* hidden, int64_t batch,
                int64_t tokens, int64_t patch_size, bool norm_pix, double normalizer) {
  using namespace cuda_detail;
  const int64_t count = batch * tokens;
  if (count <= 0) return 0.0;
  CudaContext& context = cuda_context();
  // Scratch: [count] per-token values, then the result.
  double* token_mse = static_cast<double*>(context.scratch(size_t(count + 1) * sizeof(double)));
  double* result = token_mse + count;
  const unsigned blocks = unsigned((count + kLossTokensPerBlock - 1) / kLossTokensPerBlock);
  mae_loss_token_kernel<<<blocks, 32 * kLossTokensPerBlock, 0, context.stream>>>(
      token_mse, d_pred, pred, target, hidden, batch, tokens, patch_size, norm_pix, normalizer);
  SFM_CUDA_CHECK_LAUNCH();
  fixed_order_sum_kernel<<<1, kLossSumThreads, 0, context.stream>>>(result, token_mse, count, normalizer);
  SFM_CUDA_CHECK_LAUNCH();
  double loss = 0;
  SFM_CUDA_CHECK(cudaMemcpyAsync(&loss, result, sizeof(double), cudaMemcpyDeviceToHost, context.stream));
  SFM_CUDA_CHECK(cudaStreamSynchronize(context.stream));
  return loss;
}

}  // namespace sfm
