// What the sfm subcommands that run on many ranks (train, embed) read from the launcher: the
// rank and world size mpirun/srun put in the environment (so a plain `sfm train` never initialises
// MPI), and an OpenMP team per rank that shares the node's cores with the other ranks.
#pragma once

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <thread>

namespace sfm::cli {

// The first of the launcher's variables `names` that is set (Open MPI, MPICH/PMI, PMIx/Slurm); -1
// when none is.
inline int launcher_env_int(std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return -1;
}
inline int launcher_rank() { return launcher_env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"}); }
inline int launcher_size() { return launcher_env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}); }

// The OpenMP team of one of `local_ranks` ranks on a node of `node_cores` cores whose affinity mask
// holds `mask_cores` of them: its share of the node, and never more than the mask allows. A launcher
// that binds (mpirun's default --bind-to core for two ranks, srun --cpu-bind, --cpus-per-task)
// narrows the mask to the rank's own cores; an unbound rank sees the whole node and takes an even
// share; a rank bound to a socket shared with others gets its share of the node, at most the socket.
inline int omp_team_size(int mask_cores, int node_cores, int local_ranks) {
  return std::max(1, std::min(mask_cores, node_cores / std::max(1, local_ranks)));
}

// Sets the OpenMP team of a rank started by a launcher, unless OMP_NUM_THREADS says otherwise, and
// returns the team size.
inline int share_cores() {
  if (std::getenv("OMP_NUM_THREADS")) return omp_get_max_threads();
  const int local =
      std::max(1, launcher_env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}));
  const int node_cores = std::max(1, int(std::thread::hardware_concurrency()));
  cpu_set_t mask;
  const int mask_cores = sched_getaffinity(0, sizeof(mask), &mask) == 0 ? CPU_COUNT(&mask) : node_cores;
  const int team = omp_team_size(mask_cores, node_cores, local);
  omp_set_num_threads(team);
  return team;
}

}  // namespace sfm::cli
