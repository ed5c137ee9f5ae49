// MpiComm: CPU ranks under mpirun/srun, and MpiSession, the RAII owner of MPI_Init_thread and
// MPI_Finalize. Compiled only where <mpi.h> is found (SFM_HAS_MPI_COMM is then 1); link MPI::MPI_CXX.
//
// An MpiComm owns a duplicate of the MPI_Comm it wraps (its own matching space), with errors
// returned rather than fatal, so a failing MPI call raises sfm::Error. Destroy communicators before
// the session ends. Async operations map to MPI_Iallreduce, MPI_Ireduce_scatter_block,
// MPI_Iallgather and MPI_Irecv + MPI_Isend; Open MPI advances them inside MPI calls, so calling
// test() now and then while computing helps them along. No bitwise promise across algorithms:
// MPI's reduction order is its own (unlike ThreadComm's rank order).
//
// Stalls: with set_timeout(s) (the trainer's parallel.timeout_s; splits inherit it), waiting for an
// operation — a Handle's wait(), and every blocking collective including barrier and broadcast —
// polls it and raises an sfm::Error naming this rank, the operation and the limit once s seconds
// pass, instead of waiting forever for a rank that stopped or died. The operation stays posted (its
// buffers belong to MPI until it completes), so the error ends the job: the CLI calls MPI_Abort.
#pragma once

#if __has_include(<mpi.h>)
#define SFM_HAS_MPI_COMM 1

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "sfm/comm/communicator.hpp"

namespace sfm {

namespace mpi_detail {

inline void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("MpiComm: ", call, " failed: ", std::string(text, length));
}

template <CommElement T>
MPI_Datatype datatype() {
  if constexpr (std::same_as<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::same_as<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::same_as<T, std::int32_t>)
    return MPI_INT32_T;
  else if constexpr (std::same_as<T, std::int64_t>)
    return MPI_INT64_T;
  else
    return MPI_UINT16_T;  // bf16: moved as its 16 bits, never reduced (ReducibleElement)
}

inline MPI_Op reduction(ReduceOp op) { return op == ReduceOp::sum ? MPI_SUM : MPI_MAX; }

inline int count(std::size_t n, const char* op) {
  SFM_CHECK(n <= std::size_t(INT_MAX), "MpiComm ", op, ": ", n, " elements exceed MPI's int count");
  return int(n);
}

}  // namespace mpi_detail

// Initializes MPI (unless already initialized) and finalizes it on destruction if it initialized it.
class MpiSession {
 public:
  explicit MpiSession(int* argc = nullptr, char*** argv = nullptr, int required = MPI_THREAD_FUNNELED) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
      MPI_Query_thread(&provided_);
    } else {
      mpi_detail::check(MPI_Init_thread(argc, argv, required, &provided_), "MPI_Init_thread");
      owner_ = true;
    }
    SFM_CHECK(provided_ >= required, "MpiSession: MPI provides thread level ", provided_, " < required ",
              required);
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }
  int thread_level() const { return provided_; }

 private:
  int provided_ = MPI_THREAD_SINGLE;
  bool owner_ = false;
};

class MpiComm : public AsyncCollectives<MpiComm> {
 public:
  // Completion of an async operation: up to two requests, and a staging buffer copied out at the
  // end (reduce_scatter in place, which MPI cannot express as "out is chunk rank() of in").
  class Handle {
   public:
    Handle() = default;  // complete
    Handle(Handle&& other) noexcept { *this = std::move(other); }
    Handle& operator=(Handle&& other) noexcept {
      finish_quietly();
      requests_ = std::exchange(other.requests_, {MPI_REQUEST_NULL, MPI_REQUEST_NULL});
      staging_ = std::move(other.staging_);
      copy_to_ = std::exchange(other.copy_to_, nullptr);
      limit_ = other.limit_;
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { finish_quietly(); }

    // Blocks until the operation is done; past the communicator's timeout, raises an sfm::Error
    // (the operation stays posted: a later wait() may still complete it).
    void wait() {
      if (limit_.seconds <= 0) {
        mpi_detail::check(MPI_Waitall(2, requests_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
        copy_out();
        return;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_.seconds);
      for (unsigned polls = 0; !test(); ++polls)
        if (polls % 256 == 255 && std::chrono::steady_clock::now() > deadline)
          fail("MpiComm: rank ", limit_.rank, " waited longer than parallel.timeout_s = ", limit_.seconds, " s for ",
               limit_.operation, " (of ", limit_.size, " ranks): a rank has stalled or died");
    }
    bool test() {
      int done = 0;
      mpi_detail::check(MPI_Testall(2, requests_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done) copy_out();
      return done != 0;
    }

   private:
    friend class MpiComm;
    void copy_out() {
      if (copy_to_) std::memcpy(copy_to_, staging_.data(), staging_.size());
      copy_to_ = nullptr;
    }
    void finish_quietly() noexcept {
      if (requests_[0] == MPI_REQUEST_NULL && requests_[1] == MPI_REQUEST_NULL) return;
      try {
        wait();
      } catch (...) {  // a destructor cannot report; wait() is where errors are seen
      }
    }

    // What a timed-out wait reports, and when it gives up (seconds <= 0: never).
    struct Limit {
      double seconds = 0;
      const char* operation = "";
      int rank = 0, size = 1;
    };

    std::array<MPI_Request, 2> requests_{MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    std::vector<std::byte> staging_;
    void* copy_to_ = nullptr;
    Limit limit_;
  };

  // A duplicate of MPI_COMM_WORLD (collective over the world).
  static MpiComm world() { return MpiComm(MPI_COMM_WORLD); }

  // A duplicate of `comm` (collective over it); the caller keeps `comm`.
  explicit MpiComm(MPI_Comm comm) {
    MPI_Comm dup = MPI_COMM_NULL;
    mpi_detail::check(MPI_Comm_dup(comm, &dup), "MPI_Comm_dup");
    adopt(dup);
  }
  MpiComm(MpiComm&& other) noexcept
      : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
        rank_(other.rank_),
        size_(other.size_),
        timeout_s_(other.timeout_s_),
        stats_(other.stats_) {}
  MpiComm& operator=(MpiComm&& other) noexcept {
    std::swap(comm_, other.comm_);
    std::swap(rank_, other.rank_);
    std::swap(size_, other.size_);
    std::swap(timeout_s_, other.timeout_s_);
    std::swap(stats_, other.stats_);
    return *this;
  }
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  ~MpiComm() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
  }

  MPI_Comm native() const { return comm_; }

  // The longest any wait for an operation may take, in seconds (<= 0: no limit, the default).
  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  // This rank's index among the ranks on its node (to pick a GPU); collective.
  int local_rank() const {
    MPI_Comm node = MPI_COMM_NULL;
    mpi_detail::check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                      "MPI_Comm_split_type");
    int local = 0;
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    return local;
  }

  using AsyncCollectives<MpiComm>::all_reduce_async;

  template <ReducibleElement T>
  Handle all_reduce_async(const_span<T> in, std::span<T> out, ReduceOp op = ReduceOp::sum) {
    comm_detail::check_all_reduce<T>(name, in, out);
    comm_traffic::record(stats_, comm_traffic::all_reduce(out.size_bytes(), size_));
    Handle handle = start("all_reduce");
    const void* send = in.data() == out.data() ? MPI_IN_PLACE : in.data();
    mpi_detail::check(
        MPI_Iallreduce(send, out.data(), mpi_detail::count(out.size(), "all_reduce"),
                       mpi_detail::datatype<T>(), mpi_detail::reduction(op), comm_, &handle.requests_[0]),
        "MPI_Iallreduce");
    return handle;
  }

  template <ReducibleElement T>
  Handle reduce_scatter_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_reduce_scatter<T>(name, in, out, rank_, size_);
    comm_traffic::record(stats_, comm_traffic::reduce_scatter(in.size_bytes(), size_));
    Handle handle = start("reduce_scatter");
    T* result = out.data();
    if (!out.empty() && out.data() == in.data() + rank_ * out.size()) {  // in place: stage the result
      handle.staging_.resize(out.size_bytes());
      handle.copy_to_ = out.data();
      result = reinterpret_cast<T*>(handle.staging_.data());
    }
    mpi_detail::check(
        MPI_Ireduce_scatter_block(in.data(), result, mpi_detail::count(out.size(), "reduce_scatter"),
                                  mpi_detail::datatype<T>(), MPI_SUM, comm_, &handle.requests_[0]),
        "MPI_Ireduce_scatter_block");
    return handle;
  }

  template <CommElement T>
  Handle all_gather_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_all_gather<T>(name, in, out, rank_, size_);
    comm_traffic::record(stats_, comm_traffic::all_gather(out.size_bytes(), size_));
    Handle handle = start("all_gather");
    const bool in_place = !in.empty() && in.data() == out.data() + rank_ * in.size();
    const int n = mpi_detail::count(in.size(), "all_gather");
    mpi_detail::check(MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data(), n, mpi_detail::datatype<T>(),
                                     out.data(), n, mpi_detail::datatype<T>(), comm_, &handle.requests_[0]),
                      "MPI_Iallgather");
    return handle;
  }

  template <CommElement T>
  Handle send_recv_async(const_span<T> send, int dest, std::span<T> recv, int source) {
    comm_detail::check_send_recv<T>(name, send, dest, recv, source, size_);
    comm_traffic::record(stats_, comm_traffic::send_recv(send.size_bytes(), dest == rank_));
    Handle handle = start("send_recv");
    mpi_detail::check(
        MPI_Irecv(recv.data(), mpi_detail::count(recv.size(), "send_recv"), mpi_detail::datatype<T>(), source,
                  send_recv_tag, comm_, &handle.requests_[0]),
        "MPI_Irecv");
    mpi_detail::check(MPI_Isend(send.data(), mpi_detail::count(send.size(), "send_recv"),
                                mpi_detail::datatype<T>(), dest, send_recv_tag, comm_, &handle.requests_[1]),
                      "MPI_Isend");
    return handle;
  }

  template <CommElement T>
  void broadcast(std::span<T> data, int root) {
    comm_detail::check_rank(name, "broadcast", "root", root, size_);
    comm_traffic::record(stats_, comm_traffic::broadcast(data.size_bytes(), rank_ == root));
    Handle handle = start("broadcast");
    mpi_detail::check(MPI_Ibcast(data.data(), mpi_detail::count(data.size(), "broadcast"),
                                 mpi_detail::datatype<T>(), root, comm_, &handle.requests_[0]),
                      "MPI_Ibcast");
    handle.wait();
  }

  MpiComm split(int color, int key) const {
    comm_detail::check_split(name, color);
    MPI_Comm part = MPI_COMM_NULL;
    mpi_detail::check(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split");
    MpiComm result;
    result.adopt(part);
    result.timeout_s_ = timeout_s_;
    return result;
  }

  void barrier() {
    Handle handle = start("barrier");
    mpi_detail::check(MPI_Ibarrier(comm_, &handle.requests_[0]), "MPI_Ibarrier");
    handle.wait();
  }

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  static constexpr const char* name = "MpiComm";
  static constexpr int send_recv_tag = 0x5f3;

  MpiComm() = default;

  // An empty handle for `operation`, carrying this communicator's timeout.
  Handle start(const char* operation) const {
    Handle handle;
    handle.limit_ = {timeout_s_, operation, rank_, size_};
    return handle;
  }

  void adopt(MPI_Comm comm) {
    comm_ = comm;
    mpi_detail::check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_ = 0;
  CommStats stats_;
};

}  // namespace sfm

#endif  // __has_include(<mpi.h>)
