// NcclComm: GPU ranks, one per GPU, bootstrapped through MPI (rank 0's ncclGetUniqueId is
// broadcast with MPI_Bcast, then ncclCommInitRank on the current device), or one rank alone
// (ncclCommInitAll, no MPI). Spans are device memory.
//
// Operations are enqueued on the communicator's stream (a communication stream the caller gives).
// The synchronous forms return once the stream has finished them; the async forms return a Handle
// holding an event recorded after the operation: wait() blocks the host on it, wait_on(stream)
// makes another (compute) stream wait for it without blocking the host, test() polls it.
//
// Compiled only where nccl.h, cuda_runtime.h and mpi.h exist and the translation unit can use the
// CUDA runtime: compiled by nvcc, or with SFM_WITH_CUDART defined by a build that links
// CUDA::cudart. SFM_HAS_NCCL_COMM is then 1. Link NCCL, CUDA::cudart and MPI::MPI_CXX.
#pragma once

#include "sfm/comm/mpi.hpp"

#if defined(SFM_HAS_MPI_COMM) && __has_include(<nccl.h>) && __has_include(<cuda_runtime.h>) && \
    (defined(__CUDACC__) || defined(SFM_WITH_CUDART))
#define SFM_HAS_NCCL_COMM 1

#include <cuda_runtime.h>
#include <nccl.h>

#include <span>
#include <utility>

#include "sfm/comm/communicator.hpp"

namespace sfm {

namespace nccl_detail {

inline void check(ncclResult_t result, const char* call) {
  if (result != ncclSuccess) fail("NcclComm: ", call, " failed: ", ncclGetErrorString(result));
}
inline void check(cudaError_t result, const char* call) {
  if (result != cudaSuccess) fail("NcclComm: ", call, " failed: ", cudaGetErrorString(result));
}

template <CommElement T>
ncclDataType_t datatype() {
  if constexpr (std::same_as<T, float>)
    return ncclFloat32;
  else if constexpr (std::same_as<T, double>)
    return ncclFloat64;
  else if constexpr (std::same_as<T, std::int32_t>)
    return ncclInt32;
  else if constexpr (std::same_as<T, std::int64_t>)
    return ncclInt64;
  else
    return ncclBfloat16;
}

inline ncclRedOp_t reduction(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : ncclMax; }

}  // namespace nccl_detail

class NcclComm : public AsyncCollectives<NcclComm> {
 public:
  // An event recorded on the communication stream after the operation.
  class Handle {
   public:
    Handle() = default;  // complete
    Handle(Handle&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
      finish_quietly();
      event_ = std::exchange(other.event_, nullptr);
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { finish_quietly(); }

    // Blocks the host until the operation is done.
    void wait() {
      if (!event_) return;
      nccl_detail::check(cudaEventSynchronize(event_), "cudaEventSynchronize");
      release();
    }
    // Makes `stream` wait for the operation (the host goes on); the handle is then spent.
    void wait_on(cudaStream_t stream) {
      if (!event_) return;
      nccl_detail::check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent");
      release();
    }
    bool test() {
      if (!event_) return true;
      const cudaError_t state = cudaEventQuery(event_);
      if (state == cudaErrorNotReady) return false;
      nccl_detail::check(state, "cudaEventQuery");
      release();
      return true;
    }

   private:
    friend class NcclComm;
    explicit Handle(cudaStream_t stream) {
      nccl_detail::check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
      nccl_detail::check(cudaEventRecord(event_, stream), "cudaEventRecord");
    }
    void release() noexcept {
      cudaEventDestroy(event_);
      event_ = nullptr;
    }
    void finish_quietly() noexcept {
      if (!event_) return;
      cudaEventSynchronize(event_);
      release();
    }

    cudaEvent_t event_ = nullptr;
  };

  // Collective over `bootstrap`; the rank keeps its MPI rank. Uses the current CUDA device.
  NcclComm(const MpiComm& bootstrap, cudaStream_t stream) : stream_(stream) {
    ncclUniqueId id{};
    if (bootstrap.rank() == 0) nccl_detail::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    mpi_detail::check(MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, bootstrap.native()), "MPI_Bcast");
    nccl_detail::check(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()), "ncclCommInitRank");
    init();
  }
  // One rank alone, without MPI (a single-GPU run with no launcher). Uses the current CUDA device.
  explicit NcclComm(cudaStream_t stream) : stream_(stream) {
    int device = 0;
    nccl_detail::check(cudaGetDevice(&device), "cudaGetDevice");
    nccl_detail::check(ncclCommInitAll(&comm_, 1, &device), "ncclCommInitAll");
    init();
  }
  NcclComm(NcclComm&& other) noexcept { swap(other); }
  NcclComm& operator=(NcclComm&& other) noexcept {
    swap(other);
    return *this;
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  ~NcclComm() {
    if (token_) cudaFree(token_);
    if (comm_) ncclCommDestroy(comm_);
  }

  ncclComm_t native() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  using AsyncCollectives<NcclComm>::all_reduce_async;

  // NCCL takes in == out as in place.
  template <ReducibleElement T>
  Handle all_reduce_async(const_span<T> in, std::span<T> out, ReduceOp op = ReduceOp::sum) {
    comm_detail::check_all_reduce<T>(name, in, out);
    comm_traffic::record(stats_, comm_traffic::all_reduce(out.size_bytes(), size_));
    nccl_detail::check(ncclAllReduce(in.data(), out.data(), out.size(), nccl_detail::datatype<T>(),
                                     nccl_detail::reduction(op), comm_, stream_),
                       "ncclAllReduce");
    return Handle(stream_);
  }
  // NCCL takes out == in + rank·m as in place.
  template <ReducibleElement T>
  Handle reduce_scatter_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_reduce_scatter<T>(name, in, out, rank_, size_);
    comm_traffic::record(stats_, comm_traffic::reduce_scatter(in.size_bytes(), size_));
    nccl_detail::check(ncclReduceScatter(in.data(), out.data(), out.size(), nccl_detail::datatype<T>(),
                                         ncclSum, comm_, stream_),
                       "ncclReduceScatter");
    return Handle(stream_);
  }
  // NCCL takes in == out + rank·m as in place.
  template <CommElement T>
  Handle all_gather_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_all_gather<T>(name, in, out, rank_, size_);
    comm_traffic::record(stats_, comm_traffic::all_gather(out.size_bytes(), size_));
    nccl_detail::check(
        ncclAllGather(in.data(), out.data(), in.size(), nccl_detail::datatype<T>(), comm_, stream_),
        "ncclAllGather");
    return Handle(stream_);
  }
  template <CommElement T>
  Handle send_recv_async(const_span<T> send, int dest, std::span<T> recv, int source) {
    comm_detail::check_send_recv<T>(name, send, dest, recv, source, size_);
    comm_traffic::record(stats_, comm_traffic::send_recv(send.size_bytes(), dest == rank_));
    nccl_detail::check(ncclGroupStart(), "ncclGroupStart");
    const ncclResult_t sent =
        ncclSend(send.data(), send.size(), nccl_detail::datatype<T>(), dest, comm_, stream_);
    const ncclResult_t received =
        ncclRecv(recv.data(), recv.size(), nccl_detail::datatype<T>(), source, comm_, stream_);
    nccl_detail::check(ncclGroupEnd(), "ncclGroupEnd");
    nccl_detail::check(sent, "ncclSend");
    nccl_detail::check(received, "ncclRecv");
    return Handle(stream_);
  }

  template <CommElement T>
  void broadcast(std::span<T> data, int root) {
    comm_detail::check_rank(name, "broadcast", "root", root, size_);
    comm_traffic::record(stats_, comm_traffic::broadcast(data.size_bytes(), rank_ == root));
    nccl_detail::check(ncclBroadcast(data.data(), data.data(), data.size(), nccl_detail::datatype<T>(), root,
                                     comm_, stream_),
                       "ncclBroadcast");
    synchronize();
  }

  // ncclCommSplit; the new communicator enqueues on the same stream.
  NcclComm split(int color, int key) const {
    comm_detail::check_split(name, color);
    NcclComm part;
    part.stream_ = stream_;
    nccl_detail::check(ncclCommSplit(comm_, color, key, &part.comm_, nullptr), "ncclCommSplit");
    part.init();
    return part;
  }

  // A one-element all-reduce on the stream, then the host waits for it.
  void barrier() {
    nccl_detail::check(ncclAllReduce(token_, token_, 1, ncclInt32, ncclSum, comm_, stream_), "ncclAllReduce");
    synchronize();
  }

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  static constexpr const char* name = "NcclComm";

  NcclComm() = default;

  void init() {
    nccl_detail::check(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    nccl_detail::check(ncclCommCount(comm_, &size_), "ncclCommCount");
    nccl_detail::check(cudaMalloc(&token_, sizeof(int)), "cudaMalloc");
    nccl_detail::check(cudaMemset(token_, 0, sizeof(int)), "cudaMemset");
  }
  void synchronize() { nccl_detail::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  void swap(NcclComm& other) noexcept {
    std::swap(comm_, other.comm_);
    std::swap(stream_, other.stream_);
    std::swap(token_, other.token_);
    std::swap(rank_, other.rank_);
    std::swap(size_, other.size_);
    std::swap(stats_, other.stats_);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int* token_ = nullptr;  // device scratch for barrier()
  int rank_ = 0;
  int size_ = 1;
  CommStats stats_;
};

}  // namespace sfm

#endif
