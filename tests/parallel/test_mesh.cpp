// Mesh on ThreadComm ranks: the dp × cp layout and its sub-communicators, the sample ranges and the
// loss sum, and that one sum over the world is the global batch's gradient (what ZeRO over the
// whole mesh relies on): dp = 2 × cp = 2 gradients summed over the world equal the single-rank
// gradients of the global batch, and ZeRO-2 training on that mesh tracks single-rank training.
#include <mutex>
#include <vector>

#include "model/cp_training.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/parallel/mesh.hpp"
#include "sfm_test.hpp"

using sfm::Mesh;
using sfm::ThreadComm;

TEST_CASE("Mesh splits the world into dp replicas of cp neighbouring ranks") {
  for (auto [world_size, cp] : {std::pair{4, 2}, std::pair{6, 3}, std::pair{3, 1}, std::pair{2, 2}}) {
    INFO("world " << world_size << ", cp " << cp);
    sfm::run_ranks(world_size, [&, cp = cp, world_size = world_size](ThreadComm& world) {
      Mesh<ThreadComm> mesh(world, cp);
      const int dp = world_size / cp;
      RANK_CHECK(mesh.dp() == dp);
      RANK_CHECK(mesh.cp() == cp);
      RANK_CHECK(world.rank() == mesh.dp_index() * cp + mesh.cp_index());
      RANK_CHECK(mesh.context_parallel().size() == cp);
      RANK_CHECK(mesh.context_parallel().rank() == mesh.cp_index());
      RANK_CHECK(mesh.data_parallel().size() == dp);
      RANK_CHECK(mesh.data_parallel().rank() == mesh.dp_index());
      // Members, by world rank: the cp group shares dp_index, the dp group shares cp_index.
      const int64_t me = world.rank();
      std::vector<int64_t> cp_members(static_cast<size_t>(cp)), dp_members(static_cast<size_t>(dp));
      mesh.context_parallel().all_gather(std::span<const int64_t>(&me, 1), std::span<int64_t>(cp_members));
      mesh.data_parallel().all_gather(std::span<const int64_t>(&me, 1), std::span<int64_t>(dp_members));
      for (int j = 0; j < cp; ++j) RANK_CHECK(cp_members[size_t(j)] == mesh.dp_index() * cp + j);
      for (int j = 0; j < dp; ++j) RANK_CHECK(dp_members[size_t(j)] == j * cp + mesh.cp_index());

      RANK_CHECK(mesh.local_batch(6 * dp) == 6);
      RANK_CHECK(mesh.first_sample(6 * dp) == 6 * mesh.dp_index());
      const double total = mesh.global_loss(1.5);  // collective: outside the assertion lock
      RANK_CHECK(total == 1.5 * dp);
    });
  }
  sfm::run_ranks(4, [](ThreadComm& world) {
    RANK_CHECK_THROWS_WITH(Mesh<ThreadComm>(world, 3), sfm::test::contains("does not divide the world of 4"));
  });
  sfm::run_ranks(2, [](ThreadComm& world) {
    Mesh<ThreadComm> mesh(world, 1);
    RANK_CHECK_THROWS_WITH(mesh.local_batch(3), sfm::test::contains("does not split over dp = 2"));
  });
}

TEST_CASE("dp = 2 × cp = 2: gradients summed over the world are the global batch's") {
  const sfm::ModelConfig c = sfm::test::cp_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const int64_t global_batch = 4, len_keep = sfm::AdaptiveMask{2}.len_keep(c);
  const double hidden = double(global_batch * (c.tokens() - len_keep));
  const sfm::test::Pass single = sfm::test::single_rank_pass(c, params, global_batch, len_keep);
  sfm::test::Pass mesh_pass;
  sfm::run_ranks(4, [&](ThreadComm& world) {
    Mesh<ThreadComm> mesh(world, 2);
    sfm::ContextParallelGroup<sfm::RingAttention<ThreadComm, sfm::Cpu>, ThreadComm> group(mesh.context_parallel());
    sfm::VitMae<sfm::Cpu> model(c);
    model.params_from_host(params);
    model.use_context_parallel(group);
    const int64_t batch = mesh.local_batch(global_batch), first = mesh.first_sample(global_batch);
    const auto volumes = sfm::test::sample_volumes(c, 0, first, batch);
    const double loss = model.forward(volumes.data(), sfm::test::cp_mask(c, 0, first, batch, len_keep), hidden);
    model.backward();
    std::vector<float> grads = model.grads_to_host();
    world.all_reduce(std::span<float>(grads));  // the sum ZeRO's reduce-scatter computes, in one step
    const double total = mesh.global_loss(loss);
    if (world.rank() == 0) mesh_pass.loss = total, mesh_pass.grads = std::move(grads);
  });
  INFO("loss " << mesh_pass.loss << " vs single rank " << single.loss);
  CHECK(sfm::test::relative_error(mesh_pass.loss, single.loss) <= 1e-5);
  CHECK(sfm::test::worst_gradient_error(sfm::VitMae<sfm::Cpu>(c, false).table(), mesh_pass.grads, single.grads) <= 1e-4);
}

TEST_CASE("dp = 2 × cp = 2 with ZeRO-2 over the mesh trains like one rank (ThreadComm)") {
  sfm::test::CpRun run;
  run.steps = 3;
  run.len_keep = sfm::AdaptiveMask{2}.len_keep(sfm::test::cp_test_config());
  const auto reference = sfm::test::train_reference(run);
  std::vector<double> losses;
  sfm::run_ranks(4, [&](ThreadComm& world) {
    auto mine = sfm::test::train_mesh(world, 2, run);
    if (world.rank() == 0) losses = std::move(mine);
  });
  CHECK(sfm::test::worst_loss_error(losses, reference) <= 1e-5);
}
