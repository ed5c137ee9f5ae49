// Stream order between the CUDA backend's kernels and a device communicator's collectives.
//
// NcclComm enqueues its collectives on a stream of its own (usually cuda_context().comm_stream), so
// that ZeRO's bucket reductions overlap the rest of the backward. Two edges keep that correct:
//   order_after_compute(Cuda, comm)   the collectives enqueued next on comm.stream() start after
//                                     every kernel queued so far on cuda_context().stream (the
//                                     gradients or parameters they read are written);
//   finish_collective(Cuda, handle)   kernels enqueued next on cuda_context().stream run after the
//                                     collective (Handle::wait_on); the host does not wait.
// The Cpu twins (kernels/cpu/backend.hpp) do nothing before and wait on the host after.
#pragma once

#include <concepts>

#include "sfm/kernels/cuda/backend.cuh"

namespace sfm {

template <class Comm>
void order_after_compute(Cuda, Comm& comm) {
  static_assert(requires { { comm.stream() } -> std::convertible_to<cudaStream_t>; },
                "the Cuda backend needs a communicator of device memory with a CUDA stream (NcclComm)");
  CudaContext& context = cuda_context();
  if (comm.stream() == context.stream) return;  // one stream: issue order is the order
  SFM_CUDA_CHECK(cudaEventRecord(context.marker, context.stream));
  SFM_CUDA_CHECK(cudaStreamWaitEvent(comm.stream(), context.marker, 0));
}

template <class Handle>
void finish_collective(Cuda, Handle& handle) {
  static_assert(requires(cudaStream_t s) { handle.wait_on(s); },
                "the Cuda backend needs a communicator whose handles order a stream (NcclComm)");
  handle.wait_on(cuda_context().stream);
}

}  // namespace sfm
