// train/preview.hpp against expectations built by hand from its documented layout: the masked
// input and reconstruction volumes (norm-pix prediction mapped back with the target patch's mean and
// unbiased variance), and the 3 × 3 preview image (rows: inline z = Z/2, crossline y = Y/2, time
// x = X/2 slices; columns: input, masked input, reconstruction) whose gray levels span ±3 standard
// deviations of the input. Volumes of 5 ± 1 (mean 5, deviation 1) make the levels exact:
// 127.5 ± 127.5/3 = 170 and 85; hidden voxels are black (0) in the masked column.
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sfm/train/preview.hpp"
#include "sfm_test.hpp"

namespace {

sfm::ModelConfig config(std::array<int64_t, 3> crop, bool norm_pix) {
  sfm::ModelConfig c;
  c.crop = crop;
  c.patch = {2, 2, 2};
  c.norm_pix_loss = norm_pix;
  return c;
}

}  // namespace

TEST_CASE("preview_volumes: hidden patches NaN in the masked input, the prediction in the reconstruction") {
  // Crop 2×2×4 of patches 2³: token 0 holds x < 2, token 1 x >= 2; within a patch, voxel
  // (z, y, x) is entry ((z·2 + y)·2 + x % 2) of the patch vector. Token 0 holds w = 0..7 (visible);
  // token 1 holds 10 + 2w (hidden): mean 17, unbiased variance 4 · 42 / 7 = 24.
  sfm::PreviewSample s;
  s.volume.resize(16);
  s.hidden = {0, 1};
  s.prediction.resize(16);
  for (int64_t z = 0; z < 2; ++z)
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 4; ++x) {
        const int64_t w = (z * 2 + y) * 2 + x % 2;
        s.volume[size_t((z * 2 + y) * 4 + x)] = x < 2 ? float(w) : float(10 + 2 * w);
      }
  for (int64_t w = 0; w < 8; ++w) {
    s.prediction[size_t(w)] = 99;                       // visible token: never shown
    s.prediction[size_t(8 + w)] = 0.5f * float(w) - 1;  // hidden token
  }
  for (const bool norm_pix : {false, true}) {
    INFO("norm_pix_loss " << norm_pix);
    const auto [masked, recon] = sfm::preview_volumes(config({2, 2, 4}, norm_pix), s);
    for (int64_t z = 0; z < 2; ++z)
      for (int64_t y = 0; y < 2; ++y)
        for (int64_t x = 0; x < 4; ++x) {
          const size_t v = size_t((z * 2 + y) * 4 + x);
          const double w = double((z * 2 + y) * 2 + x % 2), q = 0.5 * w - 1;
          if (x < 2) {
            CHECK(masked[v] == s.volume[v]);
            CHECK(recon[v] == s.volume[v]);
          } else {
            CHECK(std::isnan(masked[v]));
            CHECK(recon[v] == Approx(norm_pix ? 17 + q * std::sqrt(24 + 1e-6) : q).epsilon(1e-6));
          }
        }
  }
  s.hidden.pop_back();
  CHECK_THROWS_WITH(sfm::preview_volumes(config({2, 2, 4}, false), s),
                    sfm::test::contains("sample buffers do not match the model"));
}

TEST_CASE("preview_image: slice orientation, gray levels, black masked patches, enlargement") {
  // Crop Z×Y×X = 4×6×8 (all different, so a swapped axis shows) of patches 2³: grid 2×3×4.
  constexpr int64_t Z = 4, Y = 6, X = 8;
  const sfm::ModelConfig c = config({Z, Y, X}, false);
  auto token = [](int64_t z, int64_t y, int64_t x) { return ((z / 2) * 3 + y / 2) * 4 + x / 2; };
  // Every third token hidden; their prediction 8 (mean + 3 deviations): white (255).
  sfm::PreviewSample s;
  s.hidden.resize(24);
  for (int64_t t = 0; t < 24; ++t) s.hidden[size_t(t)] = t % 3 == 0;
  s.prediction.assign(24 * 8, 8.0f);

  // Layout: panels max(Y, Z) = 6 px wide, 2 px white gaps: 3·6 + 2·2 = 22 wide; rows X, X, Z
  // tall: 8 + 8 + 4 + 2·2 = 24 high. Row r, pixel (i, j) of a panel shows voxel
  // r 0 (inline):    z = Z/2, y = j, x = i
  // r 1 (crossline): z = j,   y = Y/2, x = i
  // r 2 (time):      z = i,   y = j,   x = X/2
  constexpr int64_t width = 22, height = 24, top[3] = {0, 10, 20}, rows[3] = {X, X, Z}, cols[3] = {Y, Z, Y};
  auto voxel = [&](int r, int64_t i, int64_t j) -> std::array<int64_t, 3> {
    if (r == 0) return {Z / 2, j, i};
    if (r == 1) return {j, Y / 2, i};
    return {i, j, X / 2};
  };
  // A volume of 6 below the middle of one axis, 4 from it on: a step along z, y or x in turn.
  for (int axis = 0; axis < 3; ++axis) {
    INFO("step along axis " << axis);
    const int64_t half[3] = {Z / 2, Y / 2, X / 2};
    s.volume.resize(size_t(Z * Y * X));
    for (int64_t z = 0; z < Z; ++z)
      for (int64_t y = 0; y < Y; ++y)
        for (int64_t x = 0; x < X; ++x) {
          const int64_t at[3] = {z, y, x};
          s.volume[size_t((z * Y + y) * X + x)] = at[axis] < half[axis] ? 6.0f : 4.0f;
        }
    std::vector<uint8_t> expected(size_t(width * height), 255);
    for (int r = 0; r < 3; ++r)
      for (int64_t i = 0; i < rows[r]; ++i)
        for (int64_t j = 0; j < cols[r]; ++j) {
          const auto [z, y, x] = voxel(r, i, j);
          const int64_t at[3] = {z, y, x};
          const uint8_t input = at[axis] < half[axis] ? 170 : 85;
          const bool hidden = s.hidden[size_t(token(z, y, x))] != 0;
          const size_t row = size_t((top[r] + i) * width);
          expected[row + size_t(j)] = input;
          expected[row + size_t(8 + j)] = hidden ? 0 : input;
          expected[row + size_t(16 + j)] = hidden ? 255 : input;  // differs from the masked column
        }
    const sfm::GrayImage image = sfm::preview_image(c, s);
    // Small crops are enlarged by a whole factor, each pixel becoming a factor × factor block.
    REQUIRE(image.width % width == 0);
    const int64_t factor = image.width / width;
    CHECK(factor > 1);
    REQUIRE(image.height == height * factor);
    REQUIRE(int64_t(image.pixels.size()) == image.width * image.height);
    int64_t wrong = 0;
    for (int64_t i = 0; i < image.height; ++i)
      for (int64_t j = 0; j < image.width; ++j)
        wrong += image.pixels[size_t(i * image.width + j)] != expected[size_t((i / factor) * width + j / factor)];
    CHECK(wrong == 0);
  }
}
