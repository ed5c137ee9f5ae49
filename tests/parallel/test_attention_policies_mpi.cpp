// The attention policies with MpiComm under mpiexec (-n 2 and -n 4): RingAttention and AllGatherKV
// on cp = world size equal LocalAttention over the whole sequence in double (1e-12 relative),
// including ranks whose block is all padding, and finite differences through the ring.
#include "attention_checks.hpp"
#include "sfm/comm/mpi.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/parallel/attention.hpp"
#include "comm/mpi_test_case.hpp"
#include "sfm_test.hpp"

using sfm::MpiComm;
using sfm::test::AttentionProblem;

namespace {

template <class Policy>
void check_on_world(MpiComm& comm, const AttentionProblem& p) {
  Policy policy(comm);
  const auto result = sfm::test::check_policy(policy, comm.size(), comm.rank(), p);
  INFO("rank " << comm.rank() << ": out " << result.out << ", lse " << result.lse << ", dq " << result.d_q << ", dk "
               << result.d_k << ", dv " << result.d_v);
  CHECK(result.worst() <= 1e-12);
  CHECK(result.padding_ok);
}

}  // namespace

MPI_TEST_CASE("RingAttention and AllGatherKV under MPI equal LocalAttention in double") {
  MpiComm comm = MpiComm::world();
  uint64_t seed = 200;
  for (int64_t head_dim : {32, 64})
    for (int64_t length : {129, 130, 7, 3}) {  // L = 3 leaves rank 3 of 4 without tokens
      INFO("head_dim " << head_dim << ", L " << length << ", cp " << comm.size());
      const AttentionProblem p(2, 3, length, head_dim, seed += 4);
      check_on_world<sfm::RingAttention<MpiComm, sfm::Cpu>>(comm, p);
      check_on_world<sfm::AllGatherKV<MpiComm, sfm::Cpu>>(comm, p);
    }
}

MPI_TEST_CASE("RingAttention under MPI matches finite differences") {
  MpiComm comm = MpiComm::world();
  sfm::RingAttention<MpiComm, sfm::Cpu> policy(comm);
  CHECK(sfm::test::finite_difference_error(policy, comm, AttentionProblem(1, 2, 7, 8, 300), 5) <= 1e-7);
}
