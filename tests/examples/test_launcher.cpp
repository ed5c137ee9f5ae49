// The OpenMP team a launched rank takes (examples/sfm/launcher.hpp): its share of the node's cores,
// never more than its affinity mask, under the binding of mpirun and srun.
#include <sched.h>
#include <stdlib.h>

#include <thread>

#include "launcher.hpp"
#include "sfm_test.hpp"

using sfm::cli::omp_team_size;

TEST_CASE("omp_team_size: the node shared among its ranks, within the affinity mask") {
  CHECK(omp_team_size(2, 2, 1) == 2);     // one unbound rank on the node
  CHECK(omp_team_size(2, 2, 2) == 1);     // two unbound ranks share it
  CHECK(omp_team_size(1, 2, 2) == 1);     // mpirun --bind-to core (its default for two ranks)
  CHECK(omp_team_size(16, 32, 8) == 4);   // --bind-to socket: 4 ranks on each 16-core socket
  CHECK(omp_team_size(4, 64, 16) == 4);   // srun --cpus-per-task 4
  CHECK(omp_team_size(4, 64, 4) == 4);    // a mask smaller than the even share caps the team
  CHECK(omp_team_size(64, 64, 128) == 1);  // more ranks than cores: one thread each, never zero
}

TEST_CASE("share_cores reads the affinity mask and leaves an explicit OMP_NUM_THREADS alone") {
  const char* saved = std::getenv("OMP_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";
  cpu_set_t original;
  REQUIRE(sched_getaffinity(0, sizeof(original), &original) == 0);
  ::unsetenv("OMP_NUM_THREADS");
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1", 1);

  // Bound to one core, as mpirun binds each of two ranks: a team of one, whatever the node has.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
  CHECK(sfm::cli::share_cores() == 1);
  CHECK(omp_get_max_threads() == 1);

  // Unbound again: the whole mask (one rank on the node).
  REQUIRE(sched_setaffinity(0, sizeof(original), &original) == 0);
  const int mask_cores = CPU_COUNT(&original);
  CHECK(sfm::cli::share_cores() == std::min(mask_cores, int(std::thread::hardware_concurrency())));

  ::setenv("OMP_NUM_THREADS", "3", 1);
  omp_set_num_threads(3);
  CHECK(sfm::cli::share_cores() == 3);

  ::unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (saved) ::setenv("OMP_NUM_THREADS", saved_value.c_str(), 1);
  else ::unsetenv("OMP_NUM_THREADS");
}
