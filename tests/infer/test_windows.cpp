// plan_windows and FeatureStitcher (infer/windows.hpp): window origins (patch-aligned, the last flush
// with the covered extent, a sub-patch remainder left out), the stitched grid against a brute-force
// per-cell mean over every window that covers the cell, and the errors for bad strides and surveys
// smaller than the crop.
#include "sfm/core/rng.hpp"
#include "sfm/infer/windows.hpp"
#include "sfm_test.hpp"

namespace {

// Window w's features: a deterministic pseudo-random [tokens, dim] block.
std::vector<float> window_features(int64_t w, int64_t tokens, int64_t dim) {
  std::vector<float> f(size_t(tokens * dim));
  sfm::Rng(99, uint64_t(w)).fill_normal(f, 0.0f, 1.0f);
  return f;
}

}  // namespace

TEST_CASE("windows: patch-aligned origins, the last flush with the covered extent") {
  // x: 45 voxels, patch 4 → 11 cells covering 44 voxels (1 voxel left out); crop 16, stride 12:
  // 0, 12, 24 (24 + 16 = 40 < 44) and then 28 flush with 44.
  const sfm::WindowPlan plan = sfm::plan_windows({16, 29, 45}, {16, 16, 16}, {4, 4, 4}, {16, 8, 12});
  CHECK(plan.grid == sfm::Box3{4, 7, 11});
  CHECK(plan.starts[0] == std::vector<int64_t>{0});
  CHECK(plan.starts[1] == std::vector<int64_t>{0, 8, 12});
  CHECK(plan.starts[2] == std::vector<int64_t>{0, 12, 24, 28});
  CHECK(plan.count() == 12);
  CHECK(plan.origin(7) == sfm::Box3{0, 8, 28});
  // The default stride (the crop) on an exact multiple: no overlap, no extra window.
  const sfm::WindowPlan tiled = sfm::plan_windows({64, 32, 32}, {32, 32, 32}, {8, 8, 8}, {32, 32, 32});
  CHECK(tiled.starts[0] == std::vector<int64_t>{0, 32});
  CHECK(tiled.count() == 2);
}

TEST_CASE("stitching equals the brute-force mean over the windows covering each cell") {
  const sfm::Box3 survey{37, 29, 45}, crop{16, 12, 16}, patch{4, 4, 4};
  const sfm::Box3 stride = GENERATE(sfm::Box3{8, 4, 12}, sfm::Box3{16, 12, 16}, sfm::Box3{4, 8, 4});
  const int64_t dim = 5;
  const sfm::WindowPlan plan = sfm::plan_windows(survey, crop, patch, stride);
  const sfm::Box3 w = plan.window_grid(), g = plan.grid;
  const int64_t tokens = sfm::box_voxels(w);
  sfm::FeatureStitcher stitcher(plan, dim);
  for (int64_t i = 0; i < plan.count(); ++i) stitcher.add(i, window_features(i, tokens, dim));
  const std::vector<float> stitched = stitcher.average();
  REQUIRE(int64_t(stitched.size()) == plan.cells() * dim);

  double worst = 0;
  int64_t uncovered = 0;
  for (int64_t z = 0; z < g[0]; ++z)
    for (int64_t y = 0; y < g[1]; ++y)
      for (int64_t x = 0; x < g[2]; ++x) {
        std::vector<double> sum(size_t(dim), 0.0);
        int64_t covering = 0;
        for (int64_t i = 0; i < plan.count(); ++i) {  // every window, whether it covers (z, y, x)
          const sfm::Box3 o = plan.origin(i);
          const sfm::Box3 local{z - o[0] / patch[0], y - o[1] / patch[1], x - o[2] / patch[2]};
          bool inside = true;
          for (size_t a = 0; a < 3; ++a) inside = inside && local[a] >= 0 && local[a] < w[a];
          if (!inside) continue;
          ++covering;
          const std::vector<float> f = window_features(i, tokens, dim);
          const int64_t t = (local[0] * w[1] + local[1]) * w[2] + local[2];
          for (int64_t c = 0; c < dim; ++c) sum[size_t(c)] += f[size_t(t * dim + c)];
        }
        uncovered += covering == 0;
        for (int64_t c = 0; c < dim; ++c)
          worst = std::max(worst, std::abs(sum[size_t(c)] / double(std::max<int64_t>(covering, 1)) -
                                           stitched[size_t(((z * g[1] + y) * g[2] + x) * dim + c)]));
      }
  INFO("stride " << stride[0] << "," << stride[1] << "," << stride[2] << ": " << plan.count() << " windows, worst "
                 << worst);
  CHECK(uncovered == 0);
  CHECK(worst <= 1e-6);
}

TEST_CASE("windows: bad strides and a survey smaller than the crop are clear errors") {
  using sfm::test::contains;
  CHECK_THROWS_WITH(sfm::plan_windows({64, 64, 30}, {32, 32, 32}, {8, 8, 8}, {32, 32, 32}),
                    contains("is smaller than the model's crop (32×32×32) along x (time)"));
  CHECK_THROWS_WITH(sfm::plan_windows({64, 64, 64}, {32, 32, 32}, {8, 8, 8}, {32, 12, 32}),
                    contains("--stride 12 along y (crossline): must be a positive multiple of the patch 8"));
  CHECK_THROWS_WITH(sfm::plan_windows({64, 64, 64}, {32, 32, 32}, {8, 8, 8}, {40, 32, 32}),
                    contains("at most the crop 32"));
  CHECK_THROWS_WITH(sfm::plan_windows({64, 64, 64}, {32, 32, 32}, {8, 8, 8}, {0, 32, 32}), contains("--stride 0"));
}

TEST_CASE("streaming by rows: slabs written when final, and a resume from any slab, equal the whole-grid mean") {
  const sfm::Box3 survey{37, 29, 45}, crop{16, 12, 16}, patch{4, 4, 4};
  const sfm::Box3 stride = GENERATE(sfm::Box3{8, 4, 12}, sfm::Box3{16, 12, 16}, sfm::Box3{4, 8, 4});
  const int64_t dim = 3;
  const sfm::WindowPlan plan = sfm::plan_windows(survey, crop, patch, stride);
  const int64_t tokens = sfm::box_voxels(plan.window_grid()), plane = plan.grid[1] * plan.grid[2] * dim;
  sfm::FeatureStitcher whole(plan, dim);
  for (int64_t i = 0; i < plan.count(); ++i) whole.add(i, window_features(i, tokens, dim));
  const std::vector<float> expected = whole.average();

  // Rows from first_row_of_slab(k) on, each slab taken as soon as slabs_final_after_row says so.
  for (int64_t first_slab = 0; first_slab < plan.slabs(); ++first_slab) {
    const int64_t depth = plan.slab_depth();
    sfm::FeatureStitcher stream(plan, dim, first_slab * depth);
    int64_t next = first_slab;
    for (int64_t r = plan.first_row_of_slab(first_slab); r < plan.rows(); ++r) {
      for (int64_t i = r * plan.row_windows(); i < (r + 1) * plan.row_windows(); ++i)
        stream.add(i, window_features(i, tokens, dim));
      for (; next < plan.slabs_final_after_row(r); ++next) {
        const int64_t z0 = next * depth, z1 = std::min(z0 + depth, plan.grid[0]);
        const std::vector<float> slab = stream.take(z0, z1);
        INFO("stride " << stride[0] << ", resumed at slab " << first_slab << ", slab " << next);
        REQUIRE(int64_t(slab.size()) == (z1 - z0) * plane);
        CHECK(std::equal(slab.begin(), slab.end(), expected.begin() + z0 * plane));  // bitwise: same sums, same order
      }
    }
    CHECK(next == plan.slabs());
  }
  CHECK(plan.first_row_of_slab(plan.slabs()) == plan.rows());
}
