// Learning-rate schedule: linear warmup, then half-cycle cosine down to min_lr (MAE's schedule,
// evaluated per optimizer step). Pinned so the PyTorch reference computes the same numbers:
//   step s < warmup:  lr = base · (s + 1) / warmup
//   otherwise:        lr = min + (base − min) · ½ · (1 + cos(π · (s − warmup) / max(1, total − warmup)))
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace sfm {

struct LrSchedule {
  double base_lr = 1.5e-4;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  double at(int64_t step) const {
    if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
    const double progress = double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
  }
};

// MAE's linear scaling rule: lr = base_lr · global_batch / 256.
inline double scaled_lr(double base_lr, int64_t global_batch) { return base_lr * double(global_batch) / 256.0; }

}  // namespace sfm
