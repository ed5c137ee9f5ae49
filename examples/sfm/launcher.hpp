// What the sfm subcommands that run on many ranks (train, embed) read from the launcher: the
// rank and world size mpirun/srun put in the environment (so a plain `sfm train` never initialises
// MPI), and an OpenMP team per rank that shares the node's cores with the other ranks.
#pragma once

#include <omp.h>

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

// One OpenMP thread per core among the node's ranks, unless OMP_NUM_THREADS says otherwise.
inline void share_cores() {
  if (std::getenv("OMP_NUM_THREADS")) return;
  const int local =
      std::max(1, launcher_env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}));
  omp_set_num_threads(std::max(1, int(std::thread::hardware_concurrency()) / local));
}

}  // namespace sfm::cli
