// The picture of an embedding (`sfm embed --preview`): the survey's middle inline, crossline and
// time slices (rows), each as amplitudes (gray, left) beside the features' first three principal
// components as RGB (right), the features enlarged to voxel resolution (nearest, one block per
// patch) so both panels of a row have the same size.
//
// The components are fitted on the three slices' cells (a whole survey's features need not fit in
// memory); each eigenvector's sign is fixed so its largest loading is positive, so the colours do not
// flip between runs. Amplitudes and components map their 1st–99th percentiles onto 0–255. NaN cells
// (dead traces) are black. Slices show time downwards; the time slice shows inline downwards.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/data/volume.hpp"
#include "sfm/infer/windows.hpp"
#include "sfm/io/image.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/group.hpp"

namespace sfm {

namespace feature_preview_detail {

// A 2-D panel: rows × cols values, row-major.
struct Panel {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // [rows, cols, channels]
};

// The 1st and 99th percentiles of the finite values among `values` taken every `stride`-th from
// `offset`; {0, 1} when there are none.
inline std::array<float, 2> percentile_range(const std::vector<float>& values, size_t offset, size_t stride) {
  std::vector<float> finite;
  for (size_t i = offset; i < values.size(); i += stride)
    if (std::isfinite(values[i])) finite.push_back(values[i]);
  if (finite.empty()) return {0.0f, 1.0f};
  std::sort(finite.begin(), finite.end());
  const auto at = [&](double q) { return finite[size_t(q * double(finite.size() - 1))]; };
  return {at(0.01), at(0.99)};
}

inline uint8_t to_byte(float v, const std::array<float, 2>& range) {
  if (!std::isfinite(v)) return 0;
  const float span = range[1] > range[0] ? range[1] - range[0] : 1.0f;
  return uint8_t(std::lround(255.0f * std::clamp((v - range[0]) / span, 0.0f, 1.0f)));
}

// The principal axes of `cells` [n, D] (NaN rows skipped): the D×3 matrix of the three largest
// components, each with its largest-magnitude loading positive, and the mean.
inline std::pair<Eigen::MatrixXd, Eigen::VectorXd> principal_axes(const std::vector<float>& cells, int64_t dim) {
  const int64_t n = int64_t(cells.size()) / dim;
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(dim);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(dim, dim);
  int64_t used = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Eigen::Map<const Eigen::VectorXf> row(cells.data() + i * dim, dim);
    if (!row.allFinite()) continue;
    mean += row.cast<double>();
    ++used;
  }
  SFM_CHECK(used > 0, "preview: every cell of the middle slices is NaN (no live traces)");
  mean /= double(used);
  for (int64_t i = 0; i < n; ++i) {
    const Eigen::Map<const Eigen::VectorXf> row(cells.data() + i * dim, dim);
    if (!row.allFinite()) continue;
    const Eigen::VectorXd centred = row.cast<double>() - mean;
    cov.noalias() += centred * centred.transpose();
  }
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(cov);
  const int64_t k = std::min<int64_t>(3, dim);
  Eigen::MatrixXd axes = Eigen::MatrixXd::Zero(dim, 3);
  for (int64_t c = 0; c < k; ++c) {
    Eigen::VectorXd v = solver.eigenvectors().col(dim - 1 - c);  // eigenvalues ascend
    Eigen::Index largest = 0;
    v.cwiseAbs().maxCoeff(&largest);
    if (v(largest) < 0) v = -v;
    axes.col(c) = v;
  }
  return {axes, mean};
}

}  // namespace feature_preview_detail

// Writes the preview of the features array at `features` (the embedding's Zarr array over `plan`)
// and of `volume` to `path` (its extension replaced by the encoder's: .png, or .ppm without libpng);
// returns the path written.
inline std::filesystem::path write_feature_preview(const std::filesystem::path& path, const VolumeSource& volume,
                                                   const WindowPlan& plan, const std::filesystem::path& features) {
  using namespace feature_preview_detail;
  const io::zarr::Node node = io::zarr::open_node(io::open_store(features.string()), "");
  const auto& array = std::get<io::zarr::Array>(node);
  const int64_t D = array.shape()[3];
  const Box3 g = plan.grid, p = plan.patch, covered{g[0] * p[0], g[1] * p[1], g[2] * p[2]};
  const Box3 middle{g[0] / 2, g[1] / 2, g[2] / 2};

  // Slice a (0 inline, 1 crossline, 2 time) of the features [cells, D] and of the amplitudes at the
  // middle voxel of the middle cell, as (display rows, display cols) = the two other axes, time or
  // inline downwards.
  struct Slice {
    size_t fixed, down, across;  // survey axes
  };
  const Slice slices[] = {{0, 2, 1}, {1, 2, 0}, {2, 0, 1}};
  std::vector<std::vector<float>> cells(3), amplitudes(3);
  std::vector<float> all_cells;
  for (size_t s = 0; s < 3; ++s) {
    const size_t a = slices[s].fixed;
    std::vector<int64_t> start{0, 0, 0, 0}, shape{g[0], g[1], g[2], D};
    start[a] = middle[a];
    shape[a] = 1;
    cells[s] = array.read_box(start, shape);
    all_cells.insert(all_cells.end(), cells[s].begin(), cells[s].end());
    Box3 origin{0, 0, 0}, box = covered;
    origin[a] = middle[a] * p[a] + p[a] / 2;
    box[a] = 1;
    amplitudes[s].resize(size_t(box_voxels(box)));
    volume.read(origin, box, amplitudes[s]);
  }
  const auto [axes, mean] = principal_axes(all_cells, D);

  // Projections of every slice cell, then the colour ranges over all three slices.
  std::vector<std::vector<float>> rgb(3);
  std::vector<float> all_rgb, all_amplitudes;
  for (size_t s = 0; s < 3; ++s) {
    const int64_t n = int64_t(cells[s].size()) / D;
    rgb[s].resize(size_t(n * 3));
    for (int64_t i = 0; i < n; ++i) {
      const Eigen::Map<const Eigen::VectorXf> row(cells[s].data() + i * D, D);
      const Eigen::Vector3d projected = row.allFinite()
                                            ? Eigen::Vector3d(axes.transpose() * (row.cast<double>() - mean))
                                            : Eigen::Vector3d::Constant(std::nan(""));
      for (int c = 0; c < 3; ++c) rgb[s][size_t(i * 3 + c)] = float(projected(c));
    }
    all_rgb.insert(all_rgb.end(), rgb[s].begin(), rgb[s].end());
    all_amplitudes.insert(all_amplitudes.end(), amplitudes[s].begin(), amplitudes[s].end());
  }
  const std::array<float, 2> amplitude_range = percentile_range(all_amplitudes, 0, 1);
  const std::array<std::array<float, 2>, 3> component_range = {
      percentile_range(all_rgb, 0, 3), percentile_range(all_rgb, 1, 3), percentile_range(all_rgb, 2, 3)};

  // Rows of [amplitudes | gap | features], stacked with a gap, padded to the widest.
  constexpr int64_t gap = 4;
  int64_t width = 0, height = 0;
  for (const Slice& sl : slices) {
    width = std::max(width, 2 * covered[sl.across] + gap);
    height += covered[sl.down] + gap;
  }
  height -= gap;
  std::vector<uint8_t> pixels(size_t(width * height * 3), 0);
  int64_t top = 0;
  for (size_t s = 0; s < 3; ++s) {
    const Slice sl = slices[s];
    const Box3 box = [&] { Box3 b = covered; b[sl.fixed] = 1; return b; }();
    const Box3 cell_box = [&] { Box3 b = g; b[sl.fixed] = 1; return b; }();
    for (int64_t r = 0; r < covered[sl.down]; ++r)
      for (int64_t q = 0; q < covered[sl.across]; ++q) {
        Box3 voxel{0, 0, 0};
        voxel[sl.down] = r;
        voxel[sl.across] = q;
        const int64_t v = (voxel[0] * box[1] + voxel[1]) * box[2] + voxel[2];
        uint8_t* left = pixels.data() + ((top + r) * width + q) * 3;
        left[0] = left[1] = left[2] = to_byte(amplitudes[s][size_t(v)], amplitude_range);
        Box3 cell{0, 0, 0};
        cell[sl.down] = r / p[sl.down];
        cell[sl.across] = q / p[sl.across];
        const int64_t i = (cell[0] * cell_box[1] + cell[1]) * cell_box[2] + cell[2];
        uint8_t* right = left + (covered[sl.across] + gap) * 3;
        for (int c = 0; c < 3; ++c) right[c] = to_byte(rgb[s][size_t(i * 3 + c)], component_range[size_t(c)]);
      }
    top += covered[sl.down] + gap;
  }
  std::filesystem::path stem = path;
  stem.replace_extension();
  return io::write_image(stem, io::encode_rgb_image(width, height, pixels));
}

}  // namespace sfm
