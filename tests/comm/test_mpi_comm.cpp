// MpiComm under mpiexec (-n 2 and -n 4): the communicator contract checks, and the thread level
// and duplicate-communicator behaviour of MpiSession / MpiComm.
#include <chrono>
#include <thread>

#include "comm_checks.hpp"
#include "mpi_test_case.hpp"
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

MPI_TEST_CASE("MpiComm passes the communicator checks") {
  MpiComm comm = MpiComm::world();
  int world_size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  CHECK(comm.size() == world_size);
  sfm::test::Expect expect;
  sfm::test::check_everything(comm, expect);
  report(comm, expect);
}

MPI_TEST_CASE("MpiComm splits into a 2 x 2 mesh") {
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

MPI_TEST_CASE("MpiComm moves keep one owner and node-local ranks exist") {
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

MPI_TEST_CASE("MpiComm waits past set_timeout raise an error naming the rank and operation") {
  MpiComm comm = MpiComm::world();
  comm.set_timeout(0.3);
  MpiComm split = comm.split(0, comm.rank());
  CHECK(split.timeout() == 0.3);  // splits inherit the limit
  // The last rank arrives 1.5 s late: every other rank's wait gives up after 0.3 s (well before the
  // late rank comes), and a later wait still completes the operation.
  const int late = comm.size() - 1;
  std::vector<double> value{double(comm.rank() + 1)};
  if (comm.rank() == late) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  auto handle = comm.all_reduce_async(std::span(value));
  std::string error;
  try {
    handle.wait();
  } catch (const sfm::Error& e) {
    error = e.what();
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (comm.rank() != late && comm.size() > 1) {
    CHECK(error.find("rank " + std::to_string(comm.rank()) + " waited longer than parallel.timeout_s = 0.3 s for "
                     "all_reduce") != std::string::npos);
    CHECK(waited < 1.2);
  }
  // Waiting again (each wait may give up after 0.3 s) completes it once the late rank is there.
  bool done = error.empty();
  for (int attempt = 0; attempt < 30 && !done; ++attempt) {
    try {
      handle.wait();
      done = true;
    } catch (const sfm::Error&) {
    }
  }
  REQUIRE(done);
  CHECK(value[0] == double(comm.size() * (comm.size() + 1) / 2));
}
