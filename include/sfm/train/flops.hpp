// Matmul FLOPs of a ViT-MAE training step: the figure MAE/ViT papers report (and the benchmarks
// divide by time). Linear layers count 2·rows·in·out, attention 4·L²·D per block (QKᵀ and PV);
// backward costs twice the forward.
#pragma once

#include <cstdint>

#include "sfm/model/config.hpp"

namespace sfm {

// Forward FLOPs of one sample with `len_keep` visible tokens.
inline double forward_flops(const ModelConfig& c, int64_t len_keep) {
  auto stack = [&](int64_t L, int64_t D, int64_t depth) {
    const double hidden = double(D * c.mlp_ratio);
    const double linear = 2.0 * double(L) * (3.0 * D * D + D * D + 2.0 * D * hidden);
    return double(depth) * (linear + 4.0 * double(L) * double(L) * double(D));
  };
  const int64_t N = c.tokens(), P = c.patch_size();
  return 2.0 * double(N) * P * c.dim + stack(len_keep + 1, c.dim, c.depth) +
         2.0 * double(len_keep + 1) * c.dim * c.decoder_dim + stack(N + 1, c.decoder_dim, c.decoder_depth) +
         2.0 * double(N + 1) * c.decoder_dim * P;
}

// Forward + backward FLOPs of `batch` samples.
inline double train_step_flops(const ModelConfig& c, int64_t len_keep, int64_t batch) {
  return 3.0 * forward_flops(c, len_keep) * double(batch);
}

}  // namespace sfm
