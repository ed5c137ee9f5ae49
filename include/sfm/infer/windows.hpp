// Sliding windows of a model's crop over a survey, and the stitching of their token features into
// one grid at patch resolution: the geometry of `sfm embed`, pure functions testable without a model.
//
// The output grid is g = floor(survey / patch) per axis, cell (iz, iy, ix) the patch whose voxels
// start at (iz·pz, iy·py, ix·px). A remainder of fewer than a patch's voxels at the far end of an
// axis (survey − g·patch) is not embedded: no patch of the model covers it, and padding it would
// invent data. Along each axis the windows start at 0, stride, 2·stride, … while they fit in the
// covered extent g·patch, and one more window flush with that extent's end when the last one does
// not reach it. Strides are multiples of the patch (so every window's tokens are grid cells) and at
// most the crop (so every cell is covered); the default stride is the crop (no overlap). A cell
// covered by several windows gets the mean of their features for it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/data/crop.hpp"

namespace sfm {

struct WindowPlan {
  Box3 survey{}, crop{}, patch{}, stride{};
  Box3 grid{};                                 // output cells per axis: floor(survey / patch)
  std::array<std::vector<int64_t>, 3> starts;  // window origins along each axis, in voxels

  int64_t count() const { return int64_t(starts[0].size() * starts[1].size() * starts[2].size()); }
  // The voxel origin of window w; windows are numbered in C order over (z, y, x) origins.
  Box3 origin(int64_t w) const {
    const int64_t ny = int64_t(starts[1].size()), nx = int64_t(starts[2].size());
    return {starts[0][size_t(w / (ny * nx))], starts[1][size_t(w / nx % ny)], starts[2][size_t(w % nx)]};
  }
  Box3 window_grid() const { return {crop[0] / patch[0], crop[1] / patch[1], crop[2] / patch[2]}; }
  int64_t cells() const { return box_voxels(grid); }
};

// The windows of `crop` (a multiple of `patch`) over `survey` with `stride`; a survey smaller than the
// crop along an axis, or a stride that is not a positive multiple of the patch up to the crop, is an
// error saying so.
inline WindowPlan plan_windows(const Box3& survey, const Box3& crop, const Box3& patch, const Box3& stride) {
  static constexpr const char* axis[] = {"z (inline)", "y (crossline)", "x (time)"};
  WindowPlan plan{survey, crop, patch, stride, {}, {}};
  for (size_t i = 0; i < 3; ++i) {
    SFM_CHECK(patch[i] > 0 && crop[i] % patch[i] == 0, "windows: the patch ", patch[i], " does not divide the crop ",
              crop[i], " along ", axis[i]);
    SFM_CHECK(survey[i] >= crop[i], "the survey (", survey[0], "×", survey[1], "×", survey[2],
              ") is smaller than the model's crop (", crop[0], "×", crop[1], "×", crop[2], ") along ", axis[i]);
    SFM_CHECK(stride[i] > 0 && stride[i] % patch[i] == 0 && stride[i] <= crop[i], "--stride ", stride[i], " along ",
              axis[i], ": must be a positive multiple of the patch ", patch[i], " and at most the crop ", crop[i]);
    plan.grid[i] = survey[i] / patch[i];
    const int64_t covered = plan.grid[i] * patch[i];
    for (int64_t start = 0; start + crop[i] <= covered; start += stride[i]) plan.starts[i].push_back(start);
    if (plan.starts[i].back() + crop[i] < covered) plan.starts[i].push_back(covered - crop[i]);
  }
  return plan;
}

// Sums windows' token features [window tokens, dim] (grid order within the window) into the output
// cells [gz, gy, gx, dim]; average() divides each cell by the number of windows covering it.
class FeatureStitcher {
 public:
  FeatureStitcher(const WindowPlan& plan, int64_t dim)
      : plan_(plan), dim_(dim), sums_(size_t(plan.cells() * dim), 0.0f) {}

  void add(int64_t window, std::span<const float> features) {
    const Box3 w = plan_.window_grid(), o = plan_.origin(window), g = plan_.grid;
    SFM_CHECK(int64_t(features.size()) == box_voxels(w) * dim_, "stitch: window ", window, " has ", features.size(),
              " feature values, expected ", box_voxels(w), " tokens × ", dim_);
    const Box3 first{o[0] / plan_.patch[0], o[1] / plan_.patch[1], o[2] / plan_.patch[2]};
    const float* token = features.data();
    for (int64_t z = 0; z < w[0]; ++z)
      for (int64_t y = 0; y < w[1]; ++y)
        for (int64_t x = 0; x < w[2]; ++x, token += dim_) {
          float* cell = sums_.data() + (((first[0] + z) * g[1] + first[1] + y) * g[2] + first[2] + x) * dim_;
          for (int64_t c = 0; c < dim_; ++c) cell[c] += token[c];
        }
  }

  // The sums so far [gz, gy, gx, dim] (to be summed over ranks that stitched other windows).
  std::span<float> sums() { return sums_; }

  // The mean features per cell, [gz, gy, gx, dim]; the stitcher is spent.
  std::vector<float> average() && {
    // Windows covering each cell along each axis; a cell's count is their product.
    std::array<std::vector<int64_t>, 3> covering;
    for (size_t i = 0; i < 3; ++i) {
      covering[i].assign(size_t(plan_.grid[i]), 0);
      for (const int64_t start : plan_.starts[i])
        for (int64_t c = start / plan_.patch[i]; c < (start + plan_.crop[i]) / plan_.patch[i]; ++c) ++covering[i][size_t(c)];
    }
    const Box3 g = plan_.grid;
    float* cell = sums_.data();
    for (int64_t z = 0; z < g[0]; ++z)
      for (int64_t y = 0; y < g[1]; ++y)
        for (int64_t x = 0; x < g[2]; ++x, cell += dim_) {
          const float inverse = 1.0f / float(covering[0][size_t(z)] * covering[1][size_t(y)] * covering[2][size_t(x)]);
          for (int64_t c = 0; c < dim_; ++c) cell[c] *= inverse;
        }
    return std::move(sums_);
  }

 private:
  WindowPlan plan_;
  int64_t dim_;
  std::vector<float> sums_;
};

}  // namespace sfm
