// Patchify / unpatchify kernels (CPU): volumes [B, Z, Y, X] ↔ patch rows [B, N, pz·py·px].
//
// Token t = (iz·gy + iy)·gx + ix for the grid g = (Z/pz, Y/py, X/px); a patch row holds its voxels
// in C order over (dz, dy, dx). With this layout the Conv3d patch embedding is a plain linear layer
// on patch rows (its weight [D, 1, pz, py, px] viewed as [D, pz·py·px]).
#pragma once

#include <cstdint>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/element.hpp"
#include "sfm/kernels/patch_grid.hpp"

namespace sfm {

namespace cpu_detail {
// Calls copy(patch_row_element, volume_element) for every voxel of sample-major volumes.
template <class T, class Copy>
void for_each_patch_voxel(int64_t batch, const PatchGrid& g, Copy copy) {
  const int64_t gy = g.grid(1), gx = g.grid(2);
  const int64_t pz = g.patch[0], py = g.patch[1], px = g.patch[2];  // not a structured binding: OpenMP captures it (clang 14)
  const int64_t Y = g.volume[1], X = g.volume[2];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < g.tokens(); ++t) {
      const int64_t iz = t / (gy * gx), iy = (t / gx) % gy, ix = t % gx;
      int64_t patch_offset = (b * g.tokens() + t) * g.patch_size();
      for (int64_t dz = 0; dz < pz; ++dz)
        for (int64_t dy = 0; dy < py; ++dy) {
          const int64_t row = ((b * g.volume[0] + iz * pz + dz) * Y + iy * py + dy) * X + ix * px;
          for (int64_t dx = 0; dx < px; ++dx) copy(patch_offset++, row + dx);
        }
    }
}
}  // namespace cpu_detail

// patches[b, t, :] = the voxels of patch t of volume b, converted to the patches' element type
// (an fp32 volume feeds bf16 patches).
template <class Out, class In>
void patchify(Cpu, Out* patches, const In* volume, int64_t batch, const PatchGrid& g) {
  using namespace cpu_detail;
  for_each_patch_voxel<Out>(batch, g, [&](int64_t p, int64_t v) { patches[p] = narrow<Out>(wide(volume[v])); });
}

// The inverse: volume voxels from patch rows.
template <class T>
void unpatchify(Cpu, T* volume, const T* patches, int64_t batch, const PatchGrid& g) {
  cpu_detail::for_each_patch_voxel<T>(batch, g, [&](int64_t p, int64_t v) { volume[v] = patches[p]; });
}

}  // namespace sfm
