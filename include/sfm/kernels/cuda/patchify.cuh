// Patchify / unpatchify kernels (CUDA): volumes [B, Z, Y, X] ↔ patch rows [B, N, pz·py·px].
// Reference: kernels/cpu/patchify.hpp (token t = (iz·gy + iy)·gx + ix; a patch row holds its voxels
// in C order over (dz, dy, dx)).
//
// One thread per patch element p = (b·N + t)·P + e: patch rows are read/written contiguously,
// volume voxels in runs of px.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/patch_grid.hpp"

namespace sfm {

namespace cuda_detail {

// The plain numbers of a PatchGrid (its member functions are host-only).
struct PatchDims {
  int64_t Z, Y, X, pz, py, px, gy, gx, tokens, patch_size;
};

inline PatchDims patch_dims(const PatchGrid& g) {
  return {g.volume[0], g.volume[1], g.volume[2], g.patch[0], g.patch[1], g.patch[2],
          g.grid(1),   g.grid(2),   g.tokens(),  g.patch_size()};
}

// The volume offset of patch element p.
__device__ __forceinline__ int64_t patch_voxel(int64_t p, const PatchDims& g) {
  const int64_t e = p % g.patch_size, bt = p / g.patch_size;
  const int64_t t = bt % g.tokens, b = bt / g.tokens;
  const int64_t iz = t / (g.gy * g.gx), iy = (t / g.gx) % g.gy, ix = t % g.gx;
  const int64_t dz = e / (g.py * g.px), dy = (e / g.px) % g.py, dx = e % g.px;
  return ((b * g.Z + iz * g.pz + dz) * g.Y + iy * g.py + dy) * g.X + ix * g.px + dx;
}

template <class Out, class In>
__global__ void patchify_kernel(Out* patches, const In* volume, int64_t n, PatchDims g) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x)
    patches[p] = from_f32<Out>(to_f32(volume[patch_voxel(p, g)]));
}

template <class T>
__global__ void unpatchify_kernel(T* volume, const T* patches, int64_t n, PatchDims g) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x)
    volume[patch_voxel(p, g)] = patches[p];
}

}  // namespace cuda_detail

// patches[b, t, :] = the voxels of patch t of volume b (overwritten), converted to the patches'
// element type (an fp32 volume feeds bf16 patches; a same-type copy is exact).
template <class Out, class In>
void patchify(Cuda, Out* patches, const In* volume, int64_t batch, const PatchGrid& g) {
  const int64_t n = batch * g.tokens() * g.patch_size();
  if (n <= 0) return;
  cuda_detail::patchify_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      patches, volume, n, cuda_detail::patch_dims(g));
  SFM_CUDA_CHECK_LAUNCH();
}

// The inverse: volume voxels from patch rows (voxels outside the patch grid are left alone).
template <class T>
void unpatchify(Cuda, T* volume, const T* patches, int64_t batch, const PatchGrid& g) {
  const int64_t n = batch * g.tokens() * g.patch_size();
  if (n <= 0) return;
  cuda_detail::unpatchify_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      volume, patches, n, cuda_detail::patch_dims(g));
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace sfm
