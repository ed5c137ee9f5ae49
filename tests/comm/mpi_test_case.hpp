// MPI_TEST_CASE: a TEST_CASE for code that every rank of an MPI test runs together. A rank that
// leaves it by an exception (a failed REQUIRE included) would leave the others waiting forever in a
// collective it no longer joins, so that rank prints its report and the error instead and aborts
// the whole job (MPI_Abort: mpiexec then ends every rank, and exits non-zero).
#pragma once

#include <cstdlib>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>

#include "sfm/comm/mpi.hpp"
#include "sfm_test.hpp"

namespace sfm::test {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Where the Catch2 report of a rank other than 0 goes while the session runs.
inline std::ostringstream& rank_report() {
  static std::ostringstream report;
  return report;
}

// This rank's report so far and `error` on stderr, then MPI_Abort: mpiexec ends every rank.
[[noreturn]] inline void abort_job(const std::string& error) {
  const int rank = world_rank();
  std::cout << std::flush;
  std::cerr << "==== rank " << rank << " left a test case the other ranks run with it: " << error
            << "; aborting the job\n";
  if (rank != 0) std::cerr << rank_report().str();
  std::cerr << std::flush;
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return
}

// Runs `body` (a test case's body); if it throws, aborts the job (above).
template <class Body>
void or_abort_job(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    abort_job(e.what());
  } catch (...) {  // Catch2's failed REQUIRE, already in the report
    abort_job("an assertion failed (see the report)");
  }
}

}  // namespace sfm::test

// MPI_TEST_CASE("name", "[tags]") { body } : TEST_CASE whose body runs through or_abort_job (the
// body becomes a function named after the line).
#define SFM_MPI_CONCAT2(a, b) a##b
#define SFM_MPI_CONCAT(a, b) SFM_MPI_CONCAT2(a, b)
#define SFM_MPI_TEST_CASE_IMPL(body, ...)                   \
  static void body();                                       \
  TEST_CASE(__VA_ARGS__) { sfm::test::or_abort_job(body); } \
  static void body()
#define MPI_TEST_CASE(...) SFM_MPI_TEST_CASE_IMPL(SFM_MPI_CONCAT(sfm_mpi_test_body_, __LINE__), __VA_ARGS__)
