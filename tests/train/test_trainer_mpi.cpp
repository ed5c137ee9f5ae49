// The trainer under mpiexec -n 2 (MpiComm): ZeRO-0 and ZeRO-2 log the same loss curve, dp = 1 and
// dp = 2 on the same global batch agree, a dp = 2 run resumes a dp = 1 checkpoint, and cp = 2
// (ring attention, ZeRO-2 and ZeRO-3) trains like one rank.
#include "sfm/comm/mpi.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "comm/mpi_test_case.hpp"
#include "sfm_test.hpp"
#include "sfm/comm/serial.hpp"
#include "sfm/train/trainer.hpp"
#include "train/train_test_util.hpp"

using namespace sfm;
using sfm::test::small_run;
using sfm::test::train_tmp;

namespace {

std::vector<double> run_world(MpiComm& world, const TrainConfig& c, const std::filesystem::path& resume = {}) {
  TrainOptions o;
  o.console = nullptr;
  o.resume = resume;
  return train<sfm::Cpu>(c, world, o).losses;
}

// dp = 1 on rank 0 alone; every rank gets its losses.
std::vector<double> run_rank0(MpiComm& world, const TrainConfig& c, const std::filesystem::path& resume = {}) {
  std::vector<double> losses(size_t(c.steps), 0.0);
  if (world.rank() == 0) {
    SerialComm serial;
    TrainOptions o;
    o.console = nullptr;
    o.resume = resume;
    const auto r = train<sfm::Cpu>(c, serial, o).losses;
    std::copy(r.begin(), r.end(), losses.begin());
  }
  world.broadcast(std::span<double>(losses), 0);
  return losses;
}

const nlohmann::json dp2{{"parallel", {{"dp", 2}}}, {"train", {{"micro_batch", 2}}}};

}  // namespace

MPI_TEST_CASE("ZeRO-0 and ZeRO-2 give the same loss curve under MPI") {
  MpiComm world = MpiComm::world();
  nlohmann::json z0 = dp2, z2 = dp2;
  z0["parallel"]["zero"] = 0;
  z2["parallel"]["zero"] = 2;
  const auto a = run_world(world, small_run(train_tmp("mpi-z0").string(), z0));
  const auto b = run_world(world, small_run(train_tmp("mpi-z2").string(), z2));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-6));
}

MPI_TEST_CASE("dp = 1 and dp = 2 on the same global batch match; dp = 2 resumes a dp = 1 checkpoint") {
  MpiComm world = MpiComm::world();
  const auto one = run_rank0(world, small_run(train_tmp("mpi-dp1").string()));
  const auto two = run_world(world, small_run(train_tmp("mpi-dp2").string(), dp2));
  REQUIRE(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == Approx(two[i]).epsilon(1e-5));
  const auto resumed =
      run_world(world, small_run(train_tmp("mpi-dp2-resumed").string(), dp2), train_tmp("mpi-dp1") / "checkpoint-3");
  REQUIRE(resumed.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(resumed[i] == Approx(one[3 + i]).epsilon(1e-5));
}

MPI_TEST_CASE("cp = 2 under MPI (ring attention, ZeRO-2 and ZeRO-3 over both ranks) trains like one rank") {
  MpiComm world = MpiComm::world();
  const nlohmann::json random_mask{{"parallel", {{"mask", "random"}}}};
  const auto one = run_rank0(world, small_run(train_tmp("mpi-cp1").string(), random_mask));
  for (const int zero : {2, 3}) {
    const auto two = run_world(world, small_run(train_tmp("mpi-cp2-z" + std::to_string(zero)).string(),
                                               {{"parallel", {{"cp", 2}, {"mask", "random"}, {"zero", zero}}}}));
    INFO("ZeRO-" << zero);
    REQUIRE(one.size() == two.size());
    for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == Approx(two[i]).epsilon(1e-5));
  }
}
