// The crops the model, ZeRO and context-parallel tests train on: global samples [first, first +
// count) of step `step`, one small synthetic seismic volume per sample, seeded by (step, sample), so
// any rank can build any sample and every split of a batch over ranks sees the same data.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sfm/data/synthetic.hpp"
#include "sfm/model/config.hpp"

namespace sfm::test {

inline std::vector<float> sample_volumes(const ModelConfig& c, int step, int64_t first, int64_t count) {
  const int64_t voxels = c.grid().voxels();
  std::vector<float> out(size_t(count * voxels));
  for (int64_t i = 0; i < count; ++i) {
    const auto v = synthesize_seismic({c.crop, uint64_t(1000 * step + first + i), 4, 0.15, 0.1});
    std::copy(v.begin(), v.end(), out.begin() + i * voxels);
  }
  return out;
}

}  // namespace sfm::test
