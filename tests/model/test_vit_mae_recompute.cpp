// Activation recomputation (VitMae::set_recompute) against the model that keeps every activation:
// with the same parameters and inputs the loss, prediction and every gradient are bitwise the same
// (the recomputation runs the same kernels on the same inputs) on one rank, under cp = 2 on
// ThreadComm ranks, and through AdamW steps of ZeRO-3 (each block's parameters gathered once per
// backward); the activation arena shrinks by the recomputed blocks' internals, exactly as
// model/activations.hpp states; bad settings are errors.
#include <vector>

#include "cp_training.hpp"
#include "parallel/zero_training.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"

using sfm::Recompute;
using sfm::test::Pass;

namespace {

// cp_test_config with 3 encoder and 2 decoder blocks: recomputed blocks re-run in the backward in
// both stacks (the last recomputed block of a stack keeps its internals in the shared scratch).
sfm::ModelConfig recompute_test_config() {
  sfm::ModelConfig c = sfm::test::cp_test_config();
  c.depth = 3, c.decoder_depth = 2;
  return c;
}

void check_bitwise(const Pass& recomputed, const Pass& plain) {
  CHECK(recomputed.loss == plain.loss);
  CHECK(sfm::test::bitwise_differences(recomputed.grads, plain.grads) == 0);
  CHECK(sfm::test::bitwise_differences(recomputed.prediction, plain.prediction) == 0);
}

// Floats a stack of `rows` rows saves when `recomputed` of its blocks recompute (model/activations.hpp):
// (recomputed − 1) blocks' internals: ln1, qkv, attention output, x_mid, ln2 (7·dim), fc1 and gelu
// (2·hidden), lse (heads) and the two layernorms' mean and rstd (4) per row.
int64_t saved_floats(int64_t recomputed, int64_t rows, int64_t dim, int64_t heads, int64_t mlp_ratio) {
  return recomputed < 2 ? 0 : (recomputed - 1) * rows * (7 * dim + 2 * mlp_ratio * dim + heads + 4);
}

int64_t arena_floats(const sfm::ModelConfig& c, int64_t batch, int64_t len_keep, int cp, Recompute r = {}) {
  return sfm::Activations<std::vector>::bytes_for(c, sfm::SequenceShard::activation_shape(c, batch, len_keep, cp, r)) /
         int64_t(sizeof(float));
}

}  // namespace

TEST_CASE("recomputing blocks leaves loss, prediction and gradients bitwise unchanged (one rank)") {
  const sfm::ModelConfig c = recompute_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const int64_t len_keep = sfm::RandomMask::len_keep(c);
  const Pass plain = sfm::test::single_rank_pass(c, params, 2, len_keep);
  for (const Recompute r : {Recompute::all(c), Recompute{2, 0}, Recompute{0, 2}, Recompute{1, 1}, Recompute{3, 1}}) {
    INFO("recompute encoder " << r.encoder << ", decoder " << r.decoder);
    check_bitwise(sfm::test::single_rank_pass(c, params, 2, len_keep, r), plain);
  }
}

TEST_CASE("recomputing every block under cp = 2 (ThreadComm, ring attention, padded rows) is bitwise unchanged") {
  const sfm::ModelConfig c = recompute_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const int64_t len_keep = sfm::RandomMask::len_keep(c);  // 17 encoder rows: padded over 2 ranks
  std::vector<Pass> passes;
  for (const Recompute r : {Recompute{}, Recompute::all(c)}) {
    Pass rank0;
    sfm::run_ranks(2, [&](sfm::ThreadComm& comm) {
      Pass pass = sfm::test::cp_pass<sfm::RingAttention>(comm, c, params, 2, len_keep, r);
      if (comm.rank() == 0) rank0 = std::move(pass);
    });
    passes.push_back(std::move(rank0));
  }
  check_bitwise(passes[1], passes[0]);
}

TEST_CASE("3 AdamW steps of ZeRO-3 on 2 ranks with every block recomputed are bitwise those without") {
  sfm::test::ZeroRun run;
  run.steps = 3;
  std::vector<double> plain_losses, recomputed_losses;
  std::vector<float> plain, recomputed;
  sfm::run_ranks(2, [&](sfm::ThreadComm& comm) {
    std::vector<double> losses;
    auto params = sfm::test::train_zero<3>(comm, run, &losses);
    if (comm.rank() == 0) plain = std::move(params), plain_losses = std::move(losses);
  });
  run.recompute = Recompute::all(sfm::test::zero_test_config());
  sfm::run_ranks(2, [&](sfm::ThreadComm& comm) {
    std::vector<double> losses;
    auto params = sfm::test::train_zero<3>(comm, run, &losses);
    if (comm.rank() == 0) recomputed = std::move(params), recomputed_losses = std::move(losses);
  });
  CHECK(recomputed_losses == plain_losses);
  CHECK(sfm::test::bitwise_differences(recomputed, plain) == 0);
  CHECK(plain_losses.back() < plain_losses.front());
}

TEST_CASE("the activation arena shrinks by the recomputed blocks' internals") {
  const sfm::ModelConfig c = recompute_test_config();
  const int64_t B = 2, len_keep = sfm::RandomMask::len_keep(c);
  const int64_t enc_rows = B * (len_keep + 1), dec_rows = B * (c.tokens() + 1);
  const auto volumes = sfm::test::sample_volumes(c, 0, 0, B);
  const sfm::MaskPlan mask = sfm::test::cp_mask(c, 0, 0, B, len_keep);
  sfm::VitMae<sfm::Cpu> model(c);
  model.init_weights(1);
  model.forward(volumes.data(), mask);
  const int64_t plain = model.activation_bytes();
  CHECK(plain == 4 * arena_floats(c, B, len_keep, 1));
  for (const Recompute r : {Recompute::all(c), Recompute{2, 0}, Recompute{1, 2}}) {
    INFO("recompute encoder " << r.encoder << ", decoder " << r.decoder);
    model.set_recompute(r);
    model.forward(volumes.data(), mask);
    const int64_t saved = saved_floats(r.encoder, enc_rows, c.dim, c.heads, c.mlp_ratio) +
                          saved_floats(r.decoder, dec_rows, c.decoder_dim, c.decoder_heads, c.mlp_ratio);
    CHECK(model.activation_bytes() == plain - 4 * saved);
    CHECK(model.activation_bytes() == 4 * arena_floats(c, B, len_keep, 1, r));  // the estimate is the allocation
  }
  // long at batch 1, one rank, MAE's len_keep: 2,049 encoder and 8,193 decoder rows; recomputing every
  // block keeps one block's internals per stack instead of 12 and 8, and the arena falls below a third.
  const sfm::ModelConfig lg = sfm::named_model_config("long");
  const int64_t keep = sfm::RandomMask::len_keep(lg);
  REQUIRE(keep == 2048);
  const int64_t saved = saved_floats(12, 2049, 768, 12, 4) + saved_floats(8, 8193, 512, 16, 4);
  CHECK(arena_floats(lg, 1, keep, 1) - arena_floats(lg, 1, keep, 1, Recompute::all(lg)) == saved);
  CHECK(3 * arena_floats(lg, 1, keep, 1, Recompute::all(lg)) < arena_floats(lg, 1, keep, 1));  // 1.22 GB of 4.02 GB
}

TEST_CASE("bad recompute settings are errors") {
  const sfm::ModelConfig c = recompute_test_config();
  sfm::VitMae<sfm::Cpu> model(c);
  CHECK_THROWS_WITH(model.set_recompute({4, 0}), sfm::test::contains("recompute: 4 encoder blocks, the model has 3"));
  CHECK_THROWS_WITH(model.set_recompute({0, -1}), sfm::test::contains("recompute: -1 decoder blocks, the model has 2"));
  CHECK(sfm::recompute_from_json("none", c) == Recompute{});
  CHECK(sfm::recompute_from_json("all", c) == Recompute{3, 2});
  CHECK(sfm::recompute_from_json({{"decoder", 2}}, c) == Recompute{0, 2});
  CHECK_THROWS_WITH(sfm::recompute_from_json("some", c), sfm::test::contains("expected \"none\", \"all\" or"));
  CHECK_THROWS_WITH(sfm::recompute_from_json({{"encdoer", 1}}, c), sfm::test::contains("unknown key 'encdoer'"));
  CHECK_THROWS_WITH(sfm::recompute_from_json({{"encoder", "all"}}, c),
                    sfm::test::contains("encoder: expected a number of blocks"));
  CHECK_THROWS_WITH(sfm::recompute_from_json({{"decoder", 3}}, c), sfm::test::contains("3 decoder blocks"));
}
