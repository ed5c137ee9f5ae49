// The 3D sin-cos positional embedding against the formula of DESIGN.md, evaluated independently.
#include <cmath>

#include "sfm/model/pos_embed.hpp"
#include "sfm_test.hpp"

TEST_CASE("sincos_pos_embed_3d follows the pinned channel split and frequencies") {
  const sfm::PatchGrid grid{{12, 8, 20}, {4, 2, 5}};  // grid 3 × 4 × 4
  for (int64_t dim : {32, 48, 50, 64}) {
    const auto table = sfm::sincos_pos_embed_3d(grid, dim);
    REQUIRE(int64_t(table.size()) == (grid.tokens() + 1) * dim);
    for (int64_t c = 0; c < dim; ++c) CHECK(table[size_t(c)] == 0.0f);  // cls row
    const int64_t a = 2 * (dim / 6);
    for (int64_t t = 0; t < grid.tokens(); ++t) {
      const int64_t iz = t / 16, iy = (t / 4) % 4, ix = t % 4;
      for (int64_t c = 0; c < dim; ++c) {
        // Which axis owns channel c, and its index inside that axis' part.
        const int64_t axis = c < a ? 0 : c < 2 * a ? 1 : 2;
        const int64_t width = axis < 2 ? a : dim - 2 * a, local = c - axis * a;
        const double p = axis == 0 ? iz : axis == 1 ? iy : ix;
        const int64_t k = local % (width / 2);
        const double omega = 1.0 / std::pow(10000.0, double(k) / double(width / 2));
        const double expected = local < width / 2 ? std::sin(p * omega) : std::cos(p * omega);
        CHECK(std::abs(table[size_t((t + 1) * dim + c)] - expected) <= 1e-6);
      }
    }
  }
}

TEST_CASE("sincos_pos_embed_3d rejects an odd dimension") {
  CHECK_THROWS_AS(sfm::sincos_pos_embed_3d(sfm::PatchGrid{{8, 8, 8}, {4, 4, 4}}, 33), sfm::Error);
}
