// Mask policies (mae/mask.hpp) for context parallelism: cp_len_keep makes the encoder sequence
// divisible by cp with the len_keep nearest the requested ratio, and decoder_shard lays the decoder
// sequence over cp ranks so that every position is held exactly once and the sharded unshuffle
// equals the model's unsharded one. Every documented precondition violation is an error naming it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/kernel_test_util.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/kernels/cpu/tokens.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/config.hpp"
#include "sfm_test.hpp"

using sfm::DecoderShard;
using sfm::MaskPlan;

namespace {

// The brute-force answer: among every len_keep in [1, N] with (len_keep + 1) % cp == 0, the nearest
// to N·(1 − r), the smaller on a tie.
int64_t nearest_divisible(int64_t tokens, double ratio, int cp) {
  const double target = double(tokens) * (1.0 - ratio);
  int64_t best = -1;
  for (int64_t k = 1; k <= tokens; ++k)
    if ((k + 1) % cp == 0 && (best < 0 || std::abs(double(k) - target) < std::abs(double(best) - target))) best = k;
  return best;
}

MaskPlan random_plan(int64_t batch, int64_t tokens, int64_t len_keep, uint64_t seed) {
  return sfm::mask_from_noise(sfm::mask_noise(seed, 0, 0, batch, tokens), batch, tokens, len_keep);
}

}  // namespace

TEST_CASE("cp_len_keep: len_keep + 1 divisible by cp, nearest the requested ratio") {
  std::vector<int64_t> grids;
  for (int64_t n = 8; n <= 600; ++n) grids.push_back(n);
  for (int64_t n : {64, 512, 8192, 102400}) grids.push_back(n);
  for (double ratio : {0.75, 0.5, 0.9})
    for (int cp = 1; cp <= 8; ++cp)
      for (int64_t n : grids) {
        const int64_t k = sfm::cp_len_keep(n, ratio, cp);
        INFO("N " << n << ", ratio " << ratio << ", cp " << cp << ", len_keep " << k);
        REQUIRE((k + 1) % cp == 0);
        REQUIRE(k >= 1);
        REQUIRE(k <= n);
        REQUIRE(k == nearest_divisible(n, ratio, cp));
      }
  // A tie goes to the smaller len_keep: N = 10, r = 0.75 → target 2.5, candidates 2 and 3 for cp = 1.
  CHECK(sfm::cp_len_keep(10, 0.75, 1) == 2);
  CHECK(sfm::cp_len_keep(12, 0.75, 2) == 3);  // target 3 exactly
  CHECK_THROWS_WITH(sfm::cp_len_keep(5, 0.75, 8), sfm::test::contains("divisible by cp 8"));
}

TEST_CASE("AdaptiveMask on the named configs: divisible encoder, effective ratio near 0.75") {
  for (const char* name : {"tiny", "small", "base", "long", "seed"}) {
    const sfm::ModelConfig config = sfm::named_model_config(name);
    for (int cp : {1, 2, 3, 4, 8}) {
      const sfm::AdaptiveMask policy{cp};
      const int64_t k = policy.len_keep(config);
      INFO(name << ", cp " << cp << ", len_keep " << k << ", ratio " << policy.ratio(config));
      CHECK((k + 1) % cp == 0);
      CHECK(std::abs(double(k) - config.tokens() * (1 - config.mask_ratio)) <= cp / 2.0);
      CHECK(policy.ratio(config) == Approx(double(config.tokens() - k) / config.tokens()));
      CHECK(std::abs(policy.ratio(config) - config.mask_ratio) <= cp / (2.0 * config.tokens()) + 1e-12);
    }
  }
  // base (N = 512, r = 0.75): MAE keeps 128; 129 = 3·43, so cp = 3 keeps 128, cp = 2 and 4 keep 127 (a tie
  // between 127 and 129 for cp = 4 goes down).
  const sfm::ModelConfig base = sfm::named_model_config("base");
  CHECK(sfm::AdaptiveMask{3}.len_keep(base) == 128);
  CHECK(sfm::AdaptiveMask{2}.len_keep(base) == 127);
  CHECK(sfm::AdaptiveMask{4}.len_keep(base) == 127);
  CHECK(sfm::AdaptiveMask{8}.len_keep(base) == 127);
}

TEST_CASE("decoder_shard covers every decoder position exactly once, sources follow the mask") {
  for (int64_t tokens : {8, 27, 64, 100, 512})
    for (int cp = 1; cp <= 8; ++cp) {
      const int64_t len_keep = sfm::cp_len_keep(tokens, 0.75, cp);
      const MaskPlan plan = random_plan(3, tokens, len_keep, uint64_t(tokens * 10 + cp));
      INFO("N " << tokens << ", cp " << cp);
      std::vector<int> held(size_t(tokens + 1), 0);
      int64_t padding = 0;
      for (int r = 0; r < cp; ++r) {
        const DecoderShard shard = sfm::decoder_shard(plan, cp, r);
        REQUIRE(shard.rows() == (tokens + 1 + cp - 1) / cp);
        REQUIRE(shard.valid() + shard.padding() == shard.rows());
        padding += shard.padding();
        for (int64_t i = 0; i < shard.valid(); ++i) ++held[size_t(shard.first() + i)];
        for (int64_t b = 0; b < plan.batch; ++b)
          for (int64_t i = 0; i < shard.rows(); ++i) {
            const int64_t source = shard.source[size_t(b * shard.rows() + i)], position = shard.first() + i;
            if (i >= shard.valid()) {
              CHECK(source == DecoderShard::kPaddingSource);
            } else if (position == 0) {
              CHECK(source == 0);
            } else if (plan.hidden[size_t(b * tokens + position - 1)]) {
              CHECK(source == DecoderShard::kMaskTokenSource);
            } else {
              REQUIRE(source >= 1);
              CHECK(plan.ids_keep[size_t(b * len_keep + source - 1)] == position - 1);
            }
          }
      }
      CHECK(std::all_of(held.begin(), held.end(), [](int n) { return n == 1; }));
      CHECK(padding == cp * ((tokens + cp) / cp) - (tokens + 1));
    }
}

TEST_CASE("the decoder unshuffle under cp equals the unsharded one") {
  const int64_t B = 2, N = 100, Dd = 5;
  for (int cp = 1; cp <= 8; ++cp) {
    INFO("cp " << cp);
    const int64_t K = sfm::cp_len_keep(N, 0.75, cp), Le = K + 1, Ld = N + 1;
    const MaskPlan plan = random_plan(B, N, K, uint64_t(70 + cp));
    const auto embedded = sfm::test::random_values(size_t(B * Le * Dd), 71);  // decoder-embedded encoder rows
    const auto mask_token = sfm::test::random_values(size_t(Dd), 72);

    // Unsharded, as the model does it: cls row, mask tokens at hidden positions, visible rows back.
    std::vector<double> full(size_t(B * Ld * Dd), 0.0);
    sfm::copy_rows(sfm::Cpu{}, sfm::TokenRows<double>{full.data(), Ld}, sfm::TokenRows<const double>{embedded.data(), Le},
                   B, 1, Dd);
    sfm::fill_rows(sfm::Cpu{}, sfm::TokenRows<double>{full.data(), Ld, 1}, mask_token.data(), plan.hidden.data(), B, N,
                   Dd);
    sfm::scatter_tokens(sfm::Cpu{}, sfm::TokenRows<double>{full.data(), Ld, 1},
                        sfm::TokenRows<const double>{embedded.data(), Le, 1}, plan.ids_keep.data(), B, K, Dd);

    // Sharded: the encoder rows as cp equal blocks, all-gathered ([cp, B, Le/cp, Dd]); each rank
    // fills its decoder shard from its sources.
    const sfm::SequenceBlocks encoder(Le, cp);
    REQUIRE(encoder.rows() * cp == Le);
    std::vector<double> gathered(size_t(B * Le * Dd));
    for (int r = 0; r < cp; ++r)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < encoder.rows(); ++i)
          for (int64_t c = 0; c < Dd; ++c)
            gathered[size_t(((r * B + b) * encoder.rows() + i) * Dd + c)] =
                embedded[size_t((b * Le + encoder.start(r) + i) * Dd + c)];
    for (int r = 0; r < cp; ++r) {
      const DecoderShard shard = sfm::decoder_shard(plan, cp, r);
      std::vector<double> rows(size_t(B * shard.rows() * Dd), -1.0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < shard.rows(); ++i) {
          const int64_t source = shard.source[size_t(b * shard.rows() + i)];
          for (int64_t c = 0; c < Dd; ++c) {
            double value = 0;
            if (source == DecoderShard::kMaskTokenSource) {
              value = mask_token[size_t(c)];
            } else if (source >= 0) {
              const int owner = encoder.owner(source);
              value = gathered[size_t(((owner * B + b) * encoder.rows() + source - encoder.start(owner)) * Dd + c)];
            }
            rows[size_t((b * shard.rows() + i) * Dd + c)] = value;
          }
        }
      // Compare this shard's valid rows with the unsharded rows at its positions.
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < shard.valid(); ++i)
          for (int64_t c = 0; c < Dd; ++c)
            REQUIRE(rows[size_t((b * shard.rows() + i) * Dd + c)] ==
                    full[size_t((b * Ld + shard.first() + i) * Dd + c)]);
    }
  }
}

TEST_CASE("mask.hpp's preconditions: each violation throws a message naming it") {
  using sfm::test::contains;
  const std::vector<float> noise(2 * 8, 0.5f);  // batch 2 × tokens 8
  // The noise must hold batch × tokens values.
  CHECK_THROWS_WITH(sfm::mask_from_noise(noise, 3, 8, 2),
                    contains("mask noise has 16 values, expected batch 3 × tokens 8"));
  CHECK_THROWS_WITH(sfm::mask_from_noise(noise, 1, 8, 2),
                    contains("mask noise has 16 values, expected batch 1 × tokens 8"));
  // len_keep in [1, tokens]: both ends allowed, one past either end not.
  CHECK_NOTHROW(sfm::mask_from_noise(noise, 2, 8, 1));
  CHECK_NOTHROW(sfm::mask_from_noise(noise, 2, 8, 8));
  CHECK_THROWS_WITH(sfm::mask_from_noise(noise, 2, 8, 0), contains("len_keep 0 outside [1, 8]"));
  CHECK_THROWS_WITH(sfm::mask_from_noise(noise, 2, 8, 9), contains("len_keep 9 outside [1, 8]"));
  // all_visible needs a sample and a token.
  CHECK_NOTHROW(sfm::all_visible(1, 1));
  CHECK_THROWS_WITH(sfm::all_visible(0, 8), contains("all_visible: batch 0, tokens 8"));
  CHECK_THROWS_WITH(sfm::all_visible(2, 0), contains("all_visible: batch 2, tokens 0"));
  // cp_len_keep: a cp group of at least one rank, and some len_keep + 1 divisible by it.
  CHECK_THROWS_WITH(sfm::cp_len_keep(64, 0.75, 0), contains("cp 0 must be at least 1"));
  CHECK_THROWS_WITH(sfm::cp_len_keep(64, 0.75, -2), contains("cp -2 must be at least 1"));
  CHECK_NOTHROW(sfm::cp_len_keep(7, 0.75, 8));  // len_keep 7: 7 + 1 = 8
  CHECK_THROWS_WITH(sfm::cp_len_keep(6, 0.75, 8), contains("no len_keep in [1, 6] has len_keep + 1 divisible by cp 8"));
  // decoder_shard: the rank must be in the cp group.
  const MaskPlan plan = random_plan(2, 8, 2, 7);
  CHECK_NOTHROW(sfm::decoder_shard(plan, 3, 2));
  CHECK_THROWS_WITH(sfm::decoder_shard(plan, 3, 3), contains("decoder_shard: rank 3 of cp 3"));
  CHECK_THROWS_WITH(sfm::decoder_shard(plan, 3, -1), contains("decoder_shard: rank -1 of cp 3"));
  // parse_mask_kind: an unknown name is reported with the setting and the known names.
  CHECK(sfm::parse_mask_kind("random", "config: parallel.mask") == sfm::MaskKind::random);
  CHECK(sfm::parse_mask_kind("adaptive", "config: parallel.mask") == sfm::MaskKind::adaptive);
  CHECK_THROWS_WITH(sfm::parse_mask_kind("Random", "config: parallel.mask"),
                    contains("config: parallel.mask: 'Random' (known: adaptive, random)"));
}
