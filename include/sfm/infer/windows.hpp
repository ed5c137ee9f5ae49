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
#include <map>
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

  // Rows: the windows of one z origin starts[0][r], consecutive in the numbering.
  int64_t rows() const { return int64_t(starts[0].size()); }
  int64_t row_windows() const { return int64_t(starts[1].size() * starts[2].size()); }
  // Slabs: the output's chunks along z, slab_depth() planes each (the z stride in cells; the last
  // may be shorter), written as soon as no later row reaches them.
  int64_t slab_depth() const { return stride[0] / patch[0]; }
  int64_t slabs() const { return (grid[0] + slab_depth() - 1) / slab_depth(); }
  // Slabs [0, n) are final once rows [0, r] are stitched: row r + 1 and later start at or above
  // row r + 1's first plane.
  int64_t slabs_final_after_row(int64_t r) const {
    return r + 1 >= rows() ? slabs() : starts[0][size_t(r + 1)] / patch[0] / slab_depth();
  }
  // The first row reaching slab k (where an embed that has written slabs [0, k) resumes); rows()
  // when k is past the last slab.
  int64_t first_row_of_slab(int64_t k) const {
    for (int64_t r = 0; r < rows(); ++r)
      if (starts[0][size_t(r)] / patch[0] + window_grid()[0] > k * slab_depth()) return r;
    return rows();
  }
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
// cells [gz, gy, gx, dim], one z plane [gy, gx, dim] at a time, and hands out finished slabs of
// planes as their means. Planes are allocated when a window first reaches them and released by
// take(), so a survey streamed row by row holds at most one window depth plus one slab of planes.
// Planes below `first_z` are not kept (a resumed embed: those cells are already written).
class FeatureStitcher {
 public:
  FeatureStitcher(const WindowPlan& plan, int64_t dim, int64_t first_z = 0)
      : plan_(plan), dim_(dim), first_z_(first_z), plane_(plan.grid[1] * plan.grid[2] * dim) {
    // Windows covering each cell along each axis; a cell's count is their product.
    for (size_t i = 0; i < 3; ++i) {
      covering_[i].assign(size_t(plan_.grid[i]), 0);
      for (const int64_t start : plan_.starts[i])
        for (int64_t c = start / plan_.patch[i]; c < (start + plan_.crop[i]) / plan_.patch[i]; ++c)
          ++covering_[i][size_t(c)];
    }
  }

  void add(int64_t window, std::span<const float> features) {
    const Box3 w = plan_.window_grid(), o = plan_.origin(window), g = plan_.grid;
    SFM_CHECK(int64_t(features.size()) == box_voxels(w) * dim_, "stitch: window ", window, " has ", features.size(),
              " feature values, expected ", box_voxels(w), " tokens × ", dim_);
    const Box3 first{o[0] / plan_.patch[0], o[1] / plan_.patch[1], o[2] / plan_.patch[2]};
    const float* token = features.data();
    for (int64_t z = 0; z < w[0]; ++z) {
      if (first[0] + z < first_z_) {
        token += w[1] * w[2] * dim_;
        continue;
      }
      std::vector<float>& plane = planes_[first[0] + z];
      if (plane.empty()) plane.assign(size_t(plane_), 0.0f);
      for (int64_t y = 0; y < w[1]; ++y)
        for (int64_t x = 0; x < w[2]; ++x, token += dim_) {
          float* cell = plane.data() + ((first[1] + y) * g[2] + first[2] + x) * dim_;
          for (int64_t c = 0; c < dim_; ++c) cell[c] += token[c];
        }
    }
  }

  // The mean features of planes [z_begin, z_end), [z_end − z_begin, gy, gx, dim]; every window
  // covering them must have been added. The planes are released.
  std::vector<float> take(int64_t z_begin, int64_t z_end) {
    SFM_CHECK(z_begin >= first_z_ && z_begin <= z_end && z_end <= plan_.grid[0], "stitch: planes [", z_begin, ", ",
              z_end, ") outside [", first_z_, ", ", plan_.grid[0], ")");
    std::vector<float> out;
    out.reserve(size_t((z_end - z_begin) * plane_));
    for (int64_t z = z_begin; z < z_end; ++z) {
      const auto found = planes_.find(z);
      SFM_CHECK(found != planes_.end(), "stitch: no window reached plane ", z);
      const float* cell = found->second.data();
      for (int64_t y = 0; y < plan_.grid[1]; ++y)
        for (int64_t x = 0; x < plan_.grid[2]; ++x, cell += dim_) {
          const float inverse =
              1.0f / float(covering_[0][size_t(z)] * covering_[1][size_t(y)] * covering_[2][size_t(x)]);
          for (int64_t c = 0; c < dim_; ++c) out.push_back(cell[c] * inverse);
        }
      planes_.erase(found);
    }
    return out;
  }

  // The mean features of the whole grid [gz, gy, gx, dim].
  std::vector<float> average() { return take(first_z_, plan_.grid[0]); }

 private:
  WindowPlan plan_;
  int64_t dim_, first_z_, plane_;
  std::array<std::vector<int64_t>, 3> covering_;
  std::map<int64_t, std::vector<float>> planes_;  // z plane → sums [gy, gx, dim]
};

}  // namespace sfm
