// The backend contract (kernels/backend.hpp): the Cpu backend satisfies KernelBackend (the Cuda
// one is asserted where nvcc compiles kernels/cuda/kernels.cuh), a backend missing one operation
// does not, and the parsed names round-trip. backend_neutral_headers (CMakeLists.txt) checks that
// nothing above the kernels includes a backend or tests __CUDACC__.
#include <string>

#include "sfm/comm/serial.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"

namespace contract_test {

// The Cpu backend with attention_merge taken away: the deleted overload is the better match for
// the derived tag, so the call the contract lists is ill-formed.
struct CpuWithoutMerge : sfm::Cpu {};
template <class... Args>
void attention_merge(CpuWithoutMerge, Args&&...) = delete;

// The Cpu backend whose ordering edge cannot order a collective.
struct CpuWithoutOrdering : sfm::Cpu {};
template <class Comm>
void order_after_compute(CpuWithoutOrdering, Comm&) = delete;

}  // namespace contract_test

static_assert(sfm::KernelBackend<sfm::Cpu>);
static_assert(sfm::BackendOrders<sfm::Cpu, sfm::SerialComm>);
static_assert(sfm::BackendOrders<sfm::Cpu, sfm::ThreadComm>);
static_assert(!sfm::KernelBackend<contract_test::CpuWithoutMerge>);
static_assert(sfm::KernelBackend<contract_test::CpuWithoutOrdering>);
static_assert(!sfm::BackendOrders<contract_test::CpuWithoutOrdering, sfm::SerialComm>);
static_assert(!sfm::KernelBackend<int>);

TEST_CASE("backend names parse once into BackendKind and round-trip") {
  CHECK(sfm::parse_backend_kind("cpu", "--backend") == sfm::BackendKind::cpu);
  CHECK(sfm::parse_backend_kind("cuda", "--backend") == sfm::BackendKind::cuda);
  CHECK(std::string(sfm::backend_name(sfm::Cpu::kind)) == sfm::Cpu::name);
  CHECK_THROWS_WITH(sfm::parse_backend_kind("gpu", "config: backend"),
                    sfm::test::contains("config: backend: 'gpu' (known: cpu, cuda)"));
}
