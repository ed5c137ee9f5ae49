// MAE random masking: from per-sample noise to the visible token ids and the hidden-token mask.
//
// Exactly MAE's random_masking: ids_shuffle = stable ascending argsort of the noise, the first
// len_keep are visible, mask = 1 for hidden tokens. A mask policy decides len_keep: RandomMask uses
// MAE's int(N·(1 − r)); context-parallel policies adjust it (parallel issue).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/model/config.hpp"

namespace sfm {

struct MaskPlan {
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t len_keep = 0;
  std::vector<int64_t> ids_keep;  // [batch, len_keep], visible token ids in shuffle order
  std::vector<uint8_t> hidden;    // [batch, tokens], 1 for masked tokens

  int64_t hidden_count() const { return batch * (tokens - len_keep); }
  double ratio() const { return double(tokens - len_keep) / double(tokens); }
};

inline MaskPlan mask_from_noise(std::span<const float> noise, int64_t batch, int64_t tokens, int64_t len_keep) {
  SFM_CHECK(int64_t(noise.size()) == batch * tokens, "mask noise has ", noise.size(), " values, expected batch ",
            batch, " × tokens ", tokens);
  SFM_CHECK(len_keep >= 1 && len_keep <= tokens, "len_keep ", len_keep, " outside [1, ", tokens, "]");
  MaskPlan plan{batch, tokens, len_keep, std::vector<int64_t>(size_t(batch * len_keep)),
                std::vector<uint8_t>(size_t(batch * tokens), 1)};
  std::vector<int64_t> order(static_cast<size_t>(tokens));
  for (int64_t b = 0; b < batch; ++b) {
    const float* sample = noise.data() + b * tokens;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sample[i] < sample[j]; });
    for (int64_t k = 0; k < len_keep; ++k) {
      plan.ids_keep[size_t(b * len_keep + k)] = order[size_t(k)];
      plan.hidden[size_t(b * tokens + order[size_t(k)])] = 0;
    }
  }
  return plan;
}

// Noise for `batch` samples starting at global sample index `first_sample` of training step `step`:
// a pure function of (seed, step, sample), so it does not depend on how samples are spread over ranks.
inline std::vector<float> mask_noise(uint64_t seed, uint64_t step, uint64_t first_sample, int64_t batch,
                                     int64_t tokens) {
  std::vector<float> noise(size_t(batch * tokens));
  for (int64_t b = 0; b < batch; ++b)
    Rng(seed, rng_stream(RngPurpose::mask, step, first_sample + uint64_t(b)))
        .fill_uniform(std::span<float>(noise).subspan(size_t(b * tokens), size_t(tokens)));
  return noise;
}

// MAE's policy: len_keep = int(N · (1 − mask_ratio)).
struct RandomMask {
  static int64_t len_keep(const ModelConfig& config) { return config.default_len_keep(); }
};

}  // namespace sfm
