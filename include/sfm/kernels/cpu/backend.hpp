// sfm::Cpu: the fp32 reference backend.
//
// A backend is a tag type: kernels are free functions overloaded on it (linear_forward(Cpu{}, ...),
// found by argument-dependent lookup), so model code written once against `Backend` picks the Cpu
// kernels here or the Cuda kernels in kernels/cuda/. The Cpu backend keeps memory in std::vector
// and runs kernels on OpenMP threads (Eigen's GEMM uses the same pool). Its results are the
// reference the Cuda backend is tested against; reductions run in a fixed order, so a run is
// reproducible for a given thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "sfm/kernels/backend.hpp"

namespace sfm {

struct Cpu {
  template <class T>
  using Array = std::vector<T>;
  static constexpr const char* name = "cpu";
  static constexpr BackendKind kind = BackendKind::cpu;
  static constexpr bool host_memory = true;
};

// Waits for the backend's queued work: the Cpu backend runs everything synchronously.
inline void synchronize(Cpu) {}

// Order between the backend's kernels and a communicator's collectives (ZeroOptimizer). Host-memory
// communicators (Serial, Thread, MPI) read what the synchronous CPU kernels already wrote, so
// nothing has to happen before a collective; after it, the host waits for the handle before the
// next kernel. The Cuda twins (kernels/cuda/collective_order.cuh) order streams instead.
template <class Comm>
void order_after_compute(Cpu, Comm&) {}
template <class Handle>
void finish_collective(Cpu, Handle& handle) {
  handle.wait();
}

}  // namespace sfm
