// The fixed 3D sin-cos positional embedding of DESIGN.md, [N + 1, D] with row 0 (cls) all zeros.
//
// Axes z and y get a = 2·floor(D/6) channels each, axis x the remaining D − 2a; the parts are
// concatenated in order z, y, x. A part of c channels at integer position p is
// [sin(p·ω_k) for k < c/2] ++ [cos(p·ω_k) for k < c/2] with ω_k = 10000^(−k/(c/2)), computed in
// double and stored as float. Token t = (iz·gy + iy)·gx + ix.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/kernels/patch_grid.hpp"

namespace sfm {

inline std::vector<float> sincos_pos_embed_3d(const PatchGrid& grid, int64_t dim) {
  SFM_CHECK(dim % 2 == 0, "sin-cos positional embedding needs an even dimension, got ", dim);
  const int64_t a = 2 * (dim / 6);
  const int64_t channels[3] = {a, a, dim - 2 * a};
  const int64_t gy = grid.grid(1), gx = grid.grid(2);
  std::vector<float> table(size_t((grid.tokens() + 1) * dim), 0.0f);
  for (int64_t t = 0; t < grid.tokens(); ++t) {
    const int64_t position[3] = {t / (gy * gx), (t / gx) % gy, t % gx};
    float* row = table.data() + (t + 1) * dim;
    for (int axis = 0; axis < 3; ++axis) {
      const int64_t half = channels[axis] / 2;
      for (int64_t k = 0; k < half; ++k) {
        const double omega = std::pow(10000.0, -double(k) / double(half));
        row[k] = float(std::sin(double(position[axis]) * omega));
        row[half + k] = float(std::cos(double(position[axis]) * omega));
      }
      row += channels[axis];
    }
  }
  return table;
}

}  // namespace sfm
