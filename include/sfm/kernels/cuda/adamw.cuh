// AdamW update kernel (CUDA), the same update as kernels/cpu/adamw.hpp (PyTorch's order):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + ε),   g = grad · grad_scale.
// fp32 master weights, moments and gradients. The scalar factors are computed on the host in
// double exactly as the CPU does; the per-element arithmetic uses explicitly rounded operations
// (__fmul_rn, __fadd_rn: no fused multiply-adds) in the CPU's order, so with correctly rounded
// sqrt and division the fp32 result matches the CPU kernel (built without FP contraction) bitwise.
// An overload also writes a bf16 copy of the updated parameters for the bf16 compute path.
#pragma once

#include <cmath>
#include <cstdint>

#include "sfm/core/bf16.hpp"
#include "sfm/kernels/adamw_hyper.hpp"
#include "sfm/kernels/cuda/backend.cuh"

namespace sfm {

namespace cuda_detail {

struct AdamWFactors {
  float b1, b2, decay, step_size, bias2_sqrt, eps, scale;
};

inline AdamWFactors adamw_factors(const AdamWHyper& h) {
  return {float(h.beta1),
          float(h.beta2),
          float(1.0 - h.lr * h.weight_decay),
          float(h.lr / (1.0 - std::pow(h.beta1, double(h.step)))),
          float(std::sqrt(1.0 - std::pow(h.beta2, double(h.step)))),
          float(h.eps),
          float(h.grad_scale)};
}

__global__ inline void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, AdamWFactors f,
                             bf16* param_bf16) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __fmul_rn(grad[i], f.scale);
    float p = __fmul_rn(param[i], f.decay);
    const float mi = __fadd_rn(__fmul_rn(f.b1, m[i]), __fmul_rn(__fsub_rn(1.0f, f.b1), g));
    const float vi = __fadd_rn(__fmul_rn(f.b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, f.b2), g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), f.bias2_sqrt), f.eps);
    p = __fsub_rn(p, __fmul_rn(f.step_size, __fdiv_rn(mi, denom)));
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
    if (param_bf16) param_bf16[i] = to_bf16(p);
  }
}

}  // namespace cuda_detail

// One AdamW step on n fp32 parameters (device pointers; param, m, v updated in place).
inline void adamw_update(Cuda, float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h) {
  if (n <= 0) return;
  cuda_detail::adamw_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      param, grad, m, v, n, cuda_detail::adamw_factors(h), nullptr);
  SFM_CUDA_CHECK_LAUNCH();
}

// The same, also writing param_bf16[i] = bf16(param[i]) after the update (the compute copy).
inline void adamw_update(Cuda, float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h,
                         bf16* param_bf16) {
  if (n <= 0) return;
  cuda_detail::adamw_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      param, grad, m, v, n, cuda_detail::adamw_factors(h), param_bf16);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace sfm
