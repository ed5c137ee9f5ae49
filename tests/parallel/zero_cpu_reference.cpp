// The CPU side of the CUDA ZeRO test (see zero_backend_training.hpp), compiled by the host compiler.
#include "sfm/comm/serial.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "zero_backend_training.hpp"

namespace sfm::test {

ZeroBackendRun run_zero_cpu(int stage, const ZeroBackendSpec& spec) {
  SerialComm comm;
  switch (stage) {
    case 0: return train_zero_backend<0, Cpu>(comm, spec);
    case 1: return train_zero_backend<1, Cpu>(comm, spec);
    case 2: return train_zero_backend<2, Cpu>(comm, spec);
    case 3: return train_zero_backend<3, Cpu>(comm, spec);
  }
  fail("run_zero_cpu: ZeRO stages are 0..3, got ", stage);
}

}  // namespace sfm::test
