// VitMae with context parallelism on ThreadComm ranks against the single-rank model: the shard
// index arrays, one forward/backward (loss to 1e-5 relative, every gradient to 1e-4 of its scale)
// and the prediction gathered over the group, with RingAttention and AllGatherKV, uneven encoder sequences (padding), 5 training steps, and the
// activation memory per rank falling as 1/cp.
#include <algorithm>
#include <functional>
#include <mutex>

#include "cp_training.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/sequence_shard.hpp"
#include "sfm_test.hpp"

using sfm::test::Pass;

namespace {

// Runs cp_pass on `cp` thread ranks and returns rank 0's result (every rank's is the same).
template <template <class, class> class Attention>
Pass threaded_pass(int cp, const sfm::ModelConfig& c, const std::vector<float>& params, int64_t batch,
                   int64_t len_keep) {
  Pass result;
  sfm::run_ranks(cp, [&](sfm::ThreadComm& comm) {
    Pass pass = sfm::test::cp_pass<Attention>(comm, c, params, batch, len_keep);
    if (comm.rank() == 0) result = std::move(pass);
  });
  return result;
}

void check_equal(const Pass& cp, const Pass& single, const sfm::ParamTable& table) {
  INFO("loss " << cp.loss << " vs single rank " << single.loss);
  CHECK(sfm::test::relative_error(cp.loss, single.loss) <= 1e-5);
  const double worst = sfm::test::worst_gradient_error(table, cp.grads, single.grads);
  INFO("worst gradient error (of its tensor's scale) " << worst);
  CHECK(worst <= 1e-4);
  REQUIRE(cp.prediction.size() == single.prediction.size());  // gathered over the group
  CHECK(sfm::test::max_relative_error(cp.prediction, single.prediction) <= 1e-5);
}

}  // namespace

TEST_CASE("SequenceShard splits a mask plan over cp ranks and equals the plan for cp = 1") {
  const sfm::ModelConfig c = sfm::test::cp_test_config();
  const sfm::MaskPlan plan = sfm::test::cp_mask(c, 0, 0, 3, 16);  // len_keep + 1 = 17: uneven for every cp > 1
  const sfm::SequenceShard one(plan, 1, 0);
  CHECK(one.visible_ids == plan.ids_keep);
  CHECK(one.token_hidden == plan.hidden);
  CHECK(one.activation_shape() == sfm::ActivationShape{3, 17, 65, 1, 0});
  for (int cp : {2, 3, 4}) {
    INFO("cp " << cp);
    // Across the group: every visible token once, every token's hidden flag once, and each encoder
    // row feeds exactly one decoder row, which holds that row's token.
    std::vector<int> visible_seen(size_t(3 * c.tokens()), 0), token_seen(size_t(3 * c.tokens()), 0);
    std::vector<int64_t> gathered_rows;
    for (int r = 0; r < cp; ++r) {
      const sfm::SequenceShard s(plan, cp, r);
      CHECK(s.activation_shape() == sfm::ActivationShape{3, s.encoder.rows(), s.decoder.rows(), cp, s.decoder.rows()});
      for (int64_t b = 0; b < 3; ++b) {
        for (int64_t i = 0; i < s.visible; ++i) ++visible_seen[size_t(b * c.tokens() + s.visible_ids[size_t(b * s.visible + i)])];
        for (int64_t i = 0; i < s.token_count; ++i) {
          const int64_t t = s.first_token + i;
          ++token_seen[size_t(b * c.tokens() + t)];
          CHECK(s.token_hidden[size_t(b * s.token_count + i)] == plan.hidden[size_t(b * c.tokens() + t)]);
        }
      }
      REQUIRE(s.bridge_decoder.size() == s.bridge_gathered.size());
      CHECK(std::adjacent_find(s.bridge_decoder.begin(), s.bridge_decoder.end(), std::greater_equal<>()) ==
            s.bridge_decoder.end());  // strictly increasing: distinct decoder rows
      gathered_rows.insert(gathered_rows.end(), s.bridge_gathered.begin(), s.bridge_gathered.end());
    }
    std::sort(gathered_rows.begin(), gathered_rows.end());
    CHECK(std::unique(gathered_rows.begin(), gathered_rows.end()) == gathered_rows.end());
    CHECK(gathered_rows.size() == size_t(3 * (plan.len_keep + 1)));
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t t = 0; t < c.tokens(); ++t) {
        CHECK(visible_seen[size_t(b * c.tokens() + t)] == (plan.hidden[size_t(b * c.tokens() + t)] ? 0 : 1));
        CHECK(token_seen[size_t(b * c.tokens() + t)] == 1);
      }
  }
}

TEST_CASE("VitMae with cp = 2 and 4 (ThreadComm) equals the single-rank model") {
  const sfm::ModelConfig c = sfm::test::cp_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const sfm::VitMae<sfm::Cpu> shape(c, false);
  for (int cp : {2, 4}) {
    const int64_t len_keep = sfm::AdaptiveMask{cp}.len_keep(c);
    INFO("cp " << cp << ", len_keep " << len_keep);
    const Pass single = sfm::test::single_rank_pass(c, params, 2, len_keep);
    check_equal(threaded_pass<sfm::RingAttention>(cp, c, params, 2, len_keep), single, shape.table());
    if (cp == 2) check_equal(threaded_pass<sfm::AllGatherKV>(cp, c, params, 2, len_keep), single, shape.table());
  }
}

TEST_CASE("VitMae with cp = 3 on an encoder sequence that does not split evenly equals the single-rank model") {
  const sfm::ModelConfig c = sfm::test::cp_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const sfm::VitMae<sfm::Cpu> shape(c, false);
  const int64_t len_keep = sfm::RandomMask::len_keep(c);  // 16: 17 encoder rows over 3 ranks
  check_equal(threaded_pass<sfm::RingAttention>(3, c, params, 2, len_keep),
              sfm::test::single_rank_pass(c, params, 2, len_keep), shape.table());
}

TEST_CASE("5 AdamW steps with cp = 2 and 4 (ThreadComm, ZeRO-2 over the group) track the single-rank run") {
  for (int cp : {2, 4}) {
    sfm::test::CpRun run;
    run.len_keep = sfm::AdaptiveMask{cp}.len_keep(sfm::test::cp_test_config());
    const std::vector<double> reference = sfm::test::train_reference(run);
    std::vector<double> losses;
    sfm::run_ranks(cp, [&](sfm::ThreadComm& world) {
      auto mine = sfm::test::train_mesh(world, cp, run);
      if (world.rank() == 0) losses = std::move(mine);
    });
    INFO("cp " << cp << ": final loss " << losses.back() << " vs " << reference.back());
    CHECK(sfm::test::worst_loss_error(losses, reference) <= 1e-5);
    CHECK(reference.back() < reference.front());
  }
}

TEST_CASE("Activation memory per rank falls as 1/cp on small") {
  const sfm::ModelConfig c = sfm::named_model_config("small");
  const auto volume = sfm::test::sample_volumes(c, 0, 0, 1);
  std::vector<int64_t> bytes;
  for (int cp : {1, 2, 4}) {
    int64_t largest = 0;
    std::mutex m;
    sfm::run_ranks(cp, [&](sfm::ThreadComm& comm) {
      sfm::ContextParallelGroup<sfm::RingAttention<sfm::ThreadComm, sfm::Cpu>, sfm::ThreadComm> group(comm);
      sfm::VitMae<sfm::Cpu> model(c);
      model.init_weights(1);
      model.use_context_parallel(group);
      model.forward(volume.data(), sfm::test::cp_mask(c, 0, 0, 1, sfm::AdaptiveMask{cp}.len_keep(c)));
      const std::lock_guard lock(m);
      largest = std::max(largest, model.activation_bytes());
    });
    bytes.push_back(largest);
  }
  INFO("activation bytes per rank, cp = 1, 2, 4: " << bytes[0] << ", " << bytes[1] << ", " << bytes[2]);
  CHECK(double(bytes[1]) <= 0.6 * double(bytes[0]));
  CHECK(double(bytes[2]) <= 0.35 * double(bytes[0]));
  // The model's own estimate (no allocation) is what it allocates.
  CHECK(bytes[2] == sfm::Activations<std::vector>::bytes_for(
                        c, sfm::SequenceShard::activation_shape(c, 1, sfm::AdaptiveMask{4}.len_keep(c), 4)));
}
