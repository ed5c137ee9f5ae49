// VitMae with context parallelism on MpiComm under mpiexec (-n 2 and -n 4): cp = world size equals
// the single-rank model (loss to 1e-5 relative, every gradient to 1e-4 of its scale, 5 AdamW steps
// to 1e-5), and a dp = 2 × cp = world/2 mesh with ZeRO over the world trains like one rank on the
// same global batch (3 steps, losses to 1e-5).
#include "cp_training.hpp"
#include "sfm/comm/mpi.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "comm/mpi_test_case.hpp"
#include "sfm_test.hpp"

MPI_TEST_CASE("VitMae with cp = world size under MPI equals the single-rank model") {
  sfm::MpiComm world = sfm::MpiComm::world();
  const int cp = world.size();
  const sfm::ModelConfig c = sfm::test::cp_test_config();
  const std::vector<float> params = sfm::test::cp_test_params(c);
  const int64_t len_keep = sfm::AdaptiveMask{cp}.len_keep(c);
  const sfm::test::Pass single = sfm::test::single_rank_pass(c, params, 2, len_keep);
  const sfm::test::Pass mine = sfm::test::cp_pass<sfm::RingAttention>(world, c, params, 2, len_keep);
  INFO("cp " << cp << ": loss " << mine.loss << " vs single rank " << single.loss);
  CHECK(sfm::test::relative_error(mine.loss, single.loss) <= 1e-5);
  CHECK(sfm::test::worst_gradient_error(sfm::VitMae<sfm::Cpu>(c, false).table(), mine.grads, single.grads) <= 1e-4);
  CHECK(sfm::test::max_relative_error(mine.prediction, single.prediction) <= 1e-5);

  sfm::test::CpRun run;
  run.len_keep = len_keep;
  CHECK(sfm::test::worst_loss_error(sfm::test::train_mesh(world, cp, run), sfm::test::train_reference(run)) <= 1e-5);
}

MPI_TEST_CASE("dp = 2 × cp = world/2 under MPI trains like one rank on the same global batch") {
  sfm::MpiComm world = sfm::MpiComm::world();
  const int cp = world.size() / 2;
  sfm::test::CpRun run;
  run.steps = 3;
  run.len_keep = sfm::AdaptiveMask{cp}.len_keep(sfm::test::cp_test_config());
  const auto losses = sfm::test::train_mesh(world, cp, run);
  const auto reference = sfm::test::train_reference(run);
  INFO("dp 2 × cp " << cp << ": final loss " << losses.back() << " vs " << reference.back());
  CHECK(sfm::test::worst_loss_error(losses, reference) <= 1e-5);
}
