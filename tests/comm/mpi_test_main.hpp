// Runs the Catch2 session of an MPI test in every rank. Rank 0 reports to the console as usual;
// the other ranks' reports go to a buffer (rank_report) printed (with the rank) only when that rank
// failed. The return value is non-zero in every rank when any rank failed, so mpiexec exits non-zero.
#pragma once

#include <iostream>

#include "mpi_test_case.hpp"

namespace sfm::test {

inline int run_catch_under_mpi(int argc, char** argv) {
  const int rank = world_rank();
  std::streambuf* console = rank == 0 ? nullptr : std::cout.rdbuf(rank_report().rdbuf());
  const int failed = Catch::Session().run(argc, argv) != 0 ? 1 : 0;
  if (console) std::cout.rdbuf(console);
  if (failed && rank != 0) std::cerr << "==== rank " << rank << " failed:\n" << rank_report().str() << std::flush;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_failed && !failed && rank == 0) std::cerr << "==== another rank failed (see above)\n" << std::flush;
  return any_failed;
}

}  // namespace sfm::test
