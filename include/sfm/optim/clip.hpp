// Global-norm gradient clipping, with torch.nn.utils.clip_grad_norm_'s semantics:
// coefficient = min(1, max_norm / (‖g‖₂ + 1e-6)), applied to every gradient.
// The squared norm is summed in double in a fixed order; sharded optimizers (ZeRO) sum the
// per-shard squares across ranks before taking the root.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>

namespace sfm {

inline double squared_norm(std::span<const float> values) {
  double sum = 0;
  for (float v : values) sum += double(v) * double(v);
  return sum;
}

// The factor to scale gradients by; 1 when max_norm <= 0 (clipping off).
inline double clip_coefficient(double global_norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (global_norm + 1e-6));
}

}  // namespace sfm
