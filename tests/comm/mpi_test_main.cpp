// The main of every MPI test binary (see sfm_add_mpi_test in tests/CMakeLists.txt).
#include "catch_main.hpp"
#include "mpi_test_main.hpp"

int main(int argc, char** argv) {
  sfm::MpiSession session(&argc, &argv);
  return sfm::test::run_catch_under_mpi(argc, argv);
}
