// Random crops from a volume held in memory, with per-crop normalisation.
//
// Crop origins are drawn from the counter-based RNG keyed by (seed, step, global sample index), so
// the sample a rank sees depends only on its global index, not on the world size or thread count.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"

namespace sfm {

enum class CropNormalization { none, standard };

inline CropNormalization crop_normalization_from_string(const std::string& name) {
  if (name == "none") return CropNormalization::none;
  if (name == "standard") return CropNormalization::standard;
  fail("unknown normalization '", name, "' (known: none, standard)");
}

// Copies the box [origin, origin + crop) of `volume` ([Z, Y, X], C order) into `out`.
inline void copy_crop(std::span<float> out, std::span<const float> volume, std::array<int64_t, 3> shape,
                      std::array<int64_t, 3> origin, std::array<int64_t, 3> crop) {
  for (int i = 0; i < 3; ++i)
    SFM_CHECK(origin[i] >= 0 && origin[i] + crop[i] <= shape[i], "crop [", origin[i], ", ", origin[i] + crop[i],
              ") outside the volume's axis ", i, " of size ", shape[i]);
  SFM_CHECK(int64_t(out.size()) == crop[0] * crop[1] * crop[2], "crop buffer has the wrong size");
  size_t at = 0;
  for (int64_t z = 0; z < crop[0]; ++z)
    for (int64_t y = 0; y < crop[1]; ++y) {
      const float* row = volume.data() + ((origin[0] + z) * shape[1] + origin[1] + y) * shape[2] + origin[2];
      for (int64_t x = 0; x < crop[2]; ++x) out[at++] = row[x];
    }
}

// Standardises values to zero mean and unit standard deviation (no-op for a constant crop).
inline void normalize_crop(std::span<float> values, CropNormalization how) {
  if (how == CropNormalization::none || values.empty()) return;
  double sum = 0, sq = 0;
  for (float v : values) sum += v;
  const double mean = sum / double(values.size());
  for (float v : values) sq += (v - mean) * (v - mean);
  const double std = std::sqrt(sq / double(values.size()));
  const double scale = std > 0 ? 1.0 / std : 1.0;
  for (float& v : values) v = float((v - mean) * scale);
}

// A uniformly random crop origin for global sample `sample` of step `step`.
inline std::array<int64_t, 3> random_crop_origin(uint64_t seed, uint64_t step, uint64_t sample,
                                                 std::array<int64_t, 3> shape, std::array<int64_t, 3> crop) {
  const Rng rng(seed, rng_stream(RngPurpose::crop, step, sample));
  std::array<int64_t, 3> origin{};
  for (int i = 0; i < 3; ++i) {
    SFM_CHECK(crop[i] <= shape[i], "crop ", crop[i], " larger than the volume's axis ", i, " of size ", shape[i]);
    origin[size_t(i)] = int64_t(rng.bits(uint64_t(i)) % uint64_t(shape[i] - crop[i] + 1));
  }
  return origin;
}

}  // namespace sfm
