// PatchGrid: a volume cut into a regular grid of 3D patches (shared by every backend's patchify).
#pragma once

#include <array>
#include <cstdint>

namespace sfm {

struct PatchGrid {
  std::array<int64_t, 3> volume;  // Z, Y, X
  std::array<int64_t, 3> patch;   // pz, py, px

  int64_t grid(int i) const { return volume[i] / patch[i]; }
  int64_t tokens() const { return grid(0) * grid(1) * grid(2); }
  int64_t patch_size() const { return patch[0] * patch[1] * patch[2]; }
  int64_t voxels() const { return volume[0] * volume[1] * volume[2]; }
};

}  // namespace sfm
