// AdamWHyper: the hyper-parameters of one AdamW update call, the same for every backend's
// adamw_update kernel (kernels/cpu/adamw.hpp, kernels/cuda/adamw.cuh); optim/adamw.hpp fills them
// per parameter tensor.
#pragma once

#include <cstdint>

namespace sfm {

struct AdamWHyper {
  double lr;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;  // 1-based, for bias correction
  double grad_scale = 1.0;
};

}  // namespace sfm
