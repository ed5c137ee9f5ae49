// AdamW update kernel (CPU), in PyTorch's order of operations (torch.optim.AdamW, non-fused):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + ε)
// with g = grad · grad_scale (the clipping coefficient). Master weights and moments are fp32.
#pragma once

#include <cmath>
#include <cstdint>

#include "sfm/kernels/adamw_hyper.hpp"
#include "sfm/kernels/cpu/backend.hpp"

namespace sfm {

inline void adamw_update(Cpu, float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const float b1 = float(h.beta1), b2 = float(h.beta2);
  const float decay = float(1.0 - h.lr * h.weight_decay);
  const float step_size = float(h.lr / (1.0 - std::pow(h.beta1, double(h.step))));
  const float bias2_sqrt = float(std::sqrt(1.0 - std::pow(h.beta2, double(h.step))));
  const float eps = float(h.eps), scale = float(h.grad_scale);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * scale;
    param[i] *= decay;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    param[i] -= step_size * (m[i] / (std::sqrt(v[i]) / bias2_sqrt + eps));
  }
}

}  // namespace sfm
