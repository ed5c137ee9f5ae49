// ZeroStage<0..3> with MpiComm under mpiexec: every stage matches single-rank training on the same
// global batch (MPI's reductions may sum in any order, so to 1e-6 relative, not bitwise).
#include "sfm/comm/mpi.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"
#include "zero_training.hpp"

TEST_CASE("ZeRO stages 0-3 under MPI match single-rank training") {
  sfm::MpiComm world = sfm::MpiComm::world();
  const sfm::test::ZeroRun run;
  const auto single = sfm::test::train_single_rank(run);
  CHECK(sfm::test::relative_difference(sfm::test::train_zero<0>(world, run), single) <= 1e-6);
  CHECK(sfm::test::relative_difference(sfm::test::train_zero<1>(world, run), single) <= 1e-6);
  CHECK(sfm::test::relative_difference(sfm::test::train_zero<2>(world, run), single) <= 1e-6);
  CHECK(sfm::test::relative_difference(sfm::test::train_zero<3>(world, run), single) <= 1e-6);
}
