// Crop geometry on [Z, Y, X] volumes (inline, crossline, time; C order): copying a box out of a
// volume held in memory, and mirroring a crop along the lateral axes (z, y) for augmentation.
// Time (x) is never flipped: a reversed trace is not a seismic trace.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "sfm/core/error.hpp"

namespace sfm {

using Box3 = std::array<int64_t, 3>;

inline int64_t box_voxels(const Box3& shape) { return shape[0] * shape[1] * shape[2]; }

// Copies the box [origin, origin + crop) of `volume` (of `shape`) into `out`.
inline void copy_crop(std::span<float> out, std::span<const float> volume, const Box3& shape, const Box3& origin,
                      const Box3& crop) {
  for (int i = 0; i < 3; ++i)
    SFM_CHECK(origin[i] >= 0 && origin[i] + crop[i] <= shape[i], "crop [", origin[i], ", ", origin[i] + crop[i],
              ") outside the volume's axis ", i, " of size ", shape[i]);
  SFM_CHECK(int64_t(out.size()) == box_voxels(crop), "crop buffer has the wrong size");
  SFM_CHECK(int64_t(volume.size()) == box_voxels(shape), "volume buffer has the wrong size");
  size_t at = 0;
  for (int64_t z = 0; z < crop[0]; ++z)
    for (int64_t y = 0; y < crop[1]; ++y) {
      const float* row = volume.data() + ((origin[0] + z) * shape[1] + origin[1] + y) * shape[2] + origin[2];
      std::copy_n(row, crop[2], out.data() + at);
      at += size_t(crop[2]);
    }
}

// Mirrors `crop` (of shape `shape`) in place along z and/or y.
inline void flip_lateral(std::span<float> crop, const Box3& shape, bool flip_z, bool flip_y) {
  const int64_t Z = shape[0], Y = shape[1], X = shape[2];
  auto row = [&](int64_t z, int64_t y) { return crop.data() + (z * Y + y) * X; };
  if (flip_z)
    for (int64_t z = 0; z < Z / 2; ++z) std::swap_ranges(row(z, 0), row(z, 0) + Y * X, row(Z - 1 - z, 0));
  if (flip_y)
    for (int64_t z = 0; z < Z; ++z)
      for (int64_t y = 0; y < Y / 2; ++y) std::swap_ranges(row(z, y), row(z, y) + X, row(z, Y - 1 - y));
}

}  // namespace sfm
