// MpiComm under mpiexec (-n 2 and -n 4): the communicator contract checks, and the thread level
// and duplicate-communicator behaviour of MpiSession / MpiComm.
#include "comm_checks.hpp"
#include "sfm/comm/mpi.hpp"
#include "sfm_test.hpp"

using sfm::MpiComm;

static_assert(sfm::Communicator<MpiComm>);

namespace {

void report(const MpiComm& comm, const sfm::test::Expect& expect) {
  for (const auto& failure : expect.failures) FAIL_CHECK("rank " << comm.rank() << ": " << failure);
}

}  // namespace

static_assert(!sfm::test::ReducesBf16<sfm::MpiComm>, "bf16 moves but never reduces (gradients reduce in fp32)");

TEST_CASE("MpiComm passes the communicator checks") {
  MpiComm comm = MpiComm::world();
  int world_size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  CHECK(comm.size() == world_size);
  sfm::test::Expect expect;
  sfm::test::check_everything(comm, expect);
  report(comm, expect);
}

TEST_CASE("MpiComm splits into a 2 x 2 mesh") {
  MpiComm comm = MpiComm::world();
  if (comm.size() != 4) return;
  const int r = comm.rank();
  MpiComm dp = comm.split(r % 2, r), cp = comm.split(r / 2, r);
  CHECK(dp.size() == 2);
  CHECK(cp.size() == 2);
  CHECK(dp.rank() == r / 2);
  CHECK(cp.rank() == r % 2);
  std::vector<double> x(100, double(r));
  dp.all_reduce(std::span(x));
  CHECK(x[99] == double(r % 2 == 0 ? 2 : 4));
  cp.all_reduce(std::span(x));
  CHECK(x[0] == 6.0);
}

TEST_CASE("MpiComm moves keep one owner and node-local ranks exist") {
  MpiComm a = MpiComm::world();
  MpiComm b = std::move(a);
  MpiComm c = MpiComm::world();
  c = std::move(b);
  CHECK(c.size() >= 1);
  const int local = c.local_rank();
  CHECK(local >= 0);
  CHECK(local < c.size());
  sfm::test::Expect expect;
  sfm::test::check_all_reduce<float>(c, expect, 5, sfm::ReduceOp::sum, true);
  report(c, expect);
}
