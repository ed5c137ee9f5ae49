// ZeroStage<0..3> on ThreadComm: every stage trains to the same bits as stage 0, stage 0 matches
// single-rank training, memory and traffic follow the ZeRO accounting, reductions overlap the
// backward, and a state saved at 4 ranks resumes at 2 and 3.
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"
#include "zero_training.hpp"

using sfm::ThreadComm;
using sfm::test::ZeroRun;

namespace {

template <int Stage>
std::vector<float> train_on_threads(int ranks, const ZeroRun& run) {
  std::vector<float> result;
  sfm::run_ranks(ranks, [&](ThreadComm& comm) {
    auto params = sfm::test::train_zero<Stage>(comm, run);
    if (comm.rank() == 0) result = std::move(params);
  });
  return result;
}

}  // namespace

TEST_CASE("ZeRO stages 1-3 are bitwise equal to stage 0; stage 0 equals single-rank training") {
  const ZeroRun run;
  const auto single = sfm::test::train_single_rank(run);
  for (int ranks : {1, 2, 3, 4}) {
    INFO("ranks " << ranks);
    const auto stage0 = train_on_threads<0>(ranks, run);
    CHECK(sfm::test::relative_difference(stage0, single) <= 1e-6);
    CHECK(sfm::test::bitwise_differences(train_on_threads<1>(ranks, run), stage0) == 0);
    CHECK(sfm::test::bitwise_differences(train_on_threads<2>(ranks, run), stage0) == 0);
    CHECK(sfm::test::bitwise_differences(train_on_threads<3>(ranks, run), stage0) == 0);
  }
}

TEST_CASE("ZeRO memory per rank follows the ZeRO accounting") {
  const sfm::VitMae<sfm::Cpu> model(sfm::test::zero_test_config(), false);
  const int P = 4;
  sfm::run_ranks(P, [&](ThreadComm& comm) {
    using sfm::ZeroOptimizer, sfm::ZeroStage;
    const auto m0 = ZeroOptimizer<ZeroStage<0>, ThreadComm, sfm::Cpu>(model.table(), comm).memory();
    const auto m1 = ZeroOptimizer<ZeroStage<1>, ThreadComm, sfm::Cpu>(model.table(), comm).memory();
    const auto m2 = ZeroOptimizer<ZeroStage<2>, ThreadComm, sfm::Cpu>(model.table(), comm).memory();
    const auto m3 = ZeroOptimizer<ZeroStage<3>, ThreadComm, sfm::Cpu>(model.table(), comm).memory();
    const sfm::ShardLayout layout(model.table(), P, comm.rank());
    const int64_t padded = layout.padded_size() * 4, flat = model.table().size() * 4;
    // Stage 0: everything replicated.
    RANK_CHECK(m0.parameters == padded);
    RANK_CHECK(m0.gradients == padded);
    RANK_CHECK(m0.optimizer == 2 * flat);
    // Stage 1: optimizer state sharded (1/P within the padding).
    RANK_CHECK(m1.optimizer <= 2 * layout.shard_size() * 4);
    RANK_CHECK(m1.optimizer >= 2 * (flat / P - int64_t(layout.buckets().size()) * P * 4));
    // Stage 2: gradients too — exactly 1/P of stage 0's (padded) accumulator; no full-size buffer.
    RANK_CHECK(m2.gradients * P == m0.gradients);
    RANK_CHECK(m2.optimizer == m1.optimizer);
    RANK_CHECK(m2.parameters == m0.parameters);
    RANK_CHECK(m2.buffers < m1.buffers);
    // Stage 3: parameters too.
    RANK_CHECK(m3.parameters * P == m0.parameters);
    RANK_CHECK(m3.gradients == m2.gradients);
    RANK_CHECK(m3.total() < m2.total());
  });
}

TEST_CASE("ZeRO traffic per step: 2(P-1)/P of the gradient bytes for stages 0-2, 3(P-1)/P for stage 3") {
  ZeroRun run;
  run.steps = 1;
  run.micro_batches = 1;
  const int P = 4;
  auto traffic = [&]<int Stage>() {
    double ratio = 0;
    sfm::run_ranks(P, [&](ThreadComm& comm) {
      comm.reset_stats();
      sfm::VitMae<sfm::Cpu> model(sfm::test::zero_test_config(), false);
      sfm::ZeroOptimizer<sfm::ZeroStage<Stage>, ThreadComm, sfm::Cpu> zero(model.table(), comm);
      model.use_param_store(zero);
      zero.init_params(run.seed);
      sfm::test::zero_rank_passes(model, run, 0, comm.rank(), P);
      zero.step(run.lr, run.clip);
      const double gradient_bytes = double(zero.layout().padded_size()) * 4;
      if (comm.rank() == 0) ratio = double(comm.stats().bytes_sent) / gradient_bytes;
    });
    return ratio;
  };
  const double ring = double(P - 1) / P;
  // The global-norm partials (P doubles) add a few bytes on top of the gradient traffic.
  CHECK(traffic.template operator()<0>() == Approx(2 * ring).epsilon(1e-3));
  CHECK(traffic.template operator()<1>() == Approx(2 * ring).epsilon(1e-3));
  CHECK(traffic.template operator()<2>() == Approx(2 * ring).epsilon(1e-3));
  CHECK(traffic.template operator()<3>() == Approx(3 * ring).epsilon(1e-3));
}

TEST_CASE("ZeRO-2 launches bucket reductions while the backward is still running") {
  ZeroRun run;
  run.micro_batches = 1;
  struct Timeline {
    double backward_start = 0, backward_end = 0;
    std::vector<double> launches;
    size_t groups = 0;
  };
  std::vector<Timeline> ranks(2);  // checked after the ranks joined: Catch2 assertions are not thread-safe
  sfm::run_ranks(2, [&](ThreadComm& comm) {
    sfm::VitMae<sfm::Cpu> model(sfm::test::zero_test_config(), false);
    sfm::ZeroOptimizer<sfm::ZeroStage<2>, ThreadComm, sfm::Cpu> zero(model.table(), comm);
    model.use_param_store(zero);
    zero.init_params(run.seed);
    const auto volumes = sfm::test::sample_volumes(model.config(), 0, comm.rank() * 12, 12);
    model.forward(volumes.data(), sfm::test::zero_test_mask(model.config(), run, 0, comm.rank() * 12, 12),
                  sfm::test::global_hidden(model.config(), run));
    zero.clear_timeline();
    Timeline& t = ranks[size_t(comm.rank())];
    t.backward_start = zero.seconds_since_start();
    model.backward();
    t.backward_end = zero.seconds_since_start();
    zero.step(run.lr, run.clip);
    t.launches = zero.launch_times();
    t.groups = model.table().groups().size();
  });
  for (const Timeline& t : ranks) {
    REQUIRE(t.launches.size() == t.groups);
    INFO("backward " << t.backward_start << " .. " << t.backward_end << " s; first launch " << t.launches.front()
                     << " s, last " << t.launches.back() << " s");
    CHECK(t.launches.front() < t.backward_end);
    CHECK(t.launches.front() - t.backward_start < 0.5 * (t.backward_end - t.backward_start));
  }
}

TEST_CASE("a ZeRO state saved at 4 ranks resumes at 2 and 3 ranks and tracks the uninterrupted run") {
  ZeroRun run;
  run.steps = 5;
  // Uninterrupted: 5 steps at 4 ranks, recording the losses.
  std::vector<double> reference;
  sfm::run_ranks(4, [&](ThreadComm& comm) {
    std::vector<double> losses;
    sfm::test::train_zero<2>(comm, run, &losses);
    if (comm.rank() == 0) reference = losses;
  });
  // Interrupted after 2 steps at 4 ranks (stage 3), resumed for 3 steps at 2 and 3 ranks (stages 1, 2).
  sfm::FullOptimizerState saved;
  sfm::run_ranks(4, [&](ThreadComm& comm) {
    sfm::VitMae<sfm::Cpu> model(sfm::test::zero_test_config(), false);
    sfm::ZeroOptimizer<sfm::ZeroStage<3>, ThreadComm, sfm::Cpu> zero(model.table(), comm);
    model.use_param_store(zero);
    zero.init_params(run.seed);
    for (int step = 0; step < 2; ++step) {
      sfm::test::zero_rank_passes(model, run, step, comm.rank(), 4);
      zero.step(run.lr, run.clip);
    }
    auto state = zero.gather_state();
    if (comm.rank() == 0) saved = std::move(state);
  });
  auto resume = [&]<int Stage>(int ranks) {
    sfm::run_ranks(ranks, [&](ThreadComm& comm) {
      sfm::VitMae<sfm::Cpu> model(sfm::test::zero_test_config(), false);
      sfm::ZeroOptimizer<sfm::ZeroStage<Stage>, ThreadComm, sfm::Cpu> zero(model.table(), comm);
      model.use_param_store(zero);
      zero.load_state(saved);
      for (int step = 2; step < 5; ++step) {
        double loss = sfm::test::zero_rank_passes(model, run, step, comm.rank(), ranks);
        comm.all_reduce(std::span<double>(&loss, 1));
        if (comm.rank() == 0) CHECK(std::abs(loss - reference[size_t(step)]) <= 1e-6 * reference[size_t(step)]);
        zero.step(run.lr, run.clip);
      }
    });
  };
  resume.template operator()<1>(2);
  resume.template operator()<2>(3);
}
