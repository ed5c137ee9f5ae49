// Parameter initialisation per DESIGN.md, for any range of the flat layout.
//
// xavier-uniform Linear and patch-embed weights (the patch embedding as its [D, −1] view), zero
// biases, LayerNorm (1, 0), cls and mask tokens normal(0, 0.02). Element i of tensor k is a pure
// function of (seed, k, i), so a ZeRO rank can initialise exactly its shard and the result equals
// the single-rank initialisation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "sfm/core/rng.hpp"
#include "sfm/model/params.hpp"

namespace sfm {

// Writes the initial values of flat elements [begin, end) into out[0, end − begin).
inline void init_param_range(const ParamTable& table, uint64_t seed, int64_t begin, int64_t end, float* out) {
  const auto& entries = table.entries();
  for (size_t k = 0; k < entries.size(); ++k) {
    const ParamInfo& p = entries[k];
    const int64_t lo = std::max(begin, p.offset), hi = std::min(end, p.offset + p.numel);
    if (lo >= hi) continue;
    const std::span<float> values(out + (lo - begin), size_t(hi - lo));
    const uint64_t first = uint64_t(lo - p.offset);
    const Rng rng(seed, rng_stream(RngPurpose::init, 0, k));
    const bool is_token = p.name == "cls_token" || p.name == "mask_token";
    if (is_token) {
      rng.fill_normal(values, 0.0f, 0.02f, first);
    } else if (p.shape.size() >= 2) {
      const double fan_out = double(p.shape[0]), fan_in = double(p.numel) / fan_out;
      const float bound = float(std::sqrt(6.0 / (fan_in + fan_out)));
      rng.fill_uniform(values, first);
      for (float& v : values) v = (2 * v - 1) * bound;
    } else {
      const bool is_norm_scale = p.name.find("norm") != std::string::npos && p.name.ends_with(".weight");
      std::fill(values.begin(), values.end(), is_norm_scale ? 1.0f : 0.0f);
    }
  }
}

}  // namespace sfm
