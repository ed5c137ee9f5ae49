// SerialComm: the communicator of a world of one rank, so that parallel code runs unchanged on a
// single process. Collectives reduce to copies (or nothing when in place); async handles are born
// complete. The argument checks are those of every communicator.
#pragma once

#include <algorithm>
#include <span>

#include "sfm/comm/communicator.hpp"

namespace sfm {

class SerialComm {
 public:
  // Already complete: there is no one to wait for.
  class Handle {
   public:
    Handle() = default;  // complete
    Handle(Handle&&) noexcept = default;
    Handle& operator=(Handle&&) noexcept = default;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    void wait() {}
    bool test() { return true; }
  };

  SerialComm() = default;

  int rank() const { return 0; }
  int size() const { return 1; }

  template <ReducibleElement T>
  void all_reduce(std::span<T> inout, ReduceOp = ReduceOp::sum) {
    comm_traffic::record(stats_, 0);
    (void)inout;
  }
  template <ReducibleElement T>
  void all_reduce(const_span<T> in, std::span<T> out, ReduceOp = ReduceOp::sum) {
    comm_detail::check_all_reduce<T>(name, in, out);
    comm_traffic::record(stats_, 0);
    copy(in, out);
  }
  template <ReducibleElement T>
  void reduce_scatter(const_span<T> in, std::span<T> out) {
    comm_detail::check_reduce_scatter<T>(name, in, out, 0, 1);
    comm_traffic::record(stats_, 0);
    copy(in, out);
  }
  template <CommElement T>
  void all_gather(const_span<T> in, std::span<T> out) {
    comm_detail::check_all_gather<T>(name, in, out, 0, 1);
    comm_traffic::record(stats_, 0);
    copy(in, out);
  }
  template <CommElement T>
  void broadcast(std::span<T> data, int root) {
    comm_detail::check_rank(name, "broadcast", "root", root, 1);
    comm_traffic::record(stats_, comm_traffic::broadcast(data.size_bytes(), true));
  }
  template <CommElement T>
  void send_recv(const_span<T> send, int dest, std::span<T> recv, int source) {
    comm_detail::check_send_recv<T>(name, send, dest, recv, source, 1);
    SFM_CHECK(send.size() == recv.size(), name, " send_recv: rank 0 sends ", send.size(),
              " elements to itself but receives ", recv.size());
    comm_traffic::record(stats_, 0);
    copy(send, recv);
  }

  template <ReducibleElement T>
  Handle all_reduce_async(std::span<T> inout, ReduceOp op = ReduceOp::sum) {
    all_reduce(inout, op);
    return {};
  }
  template <ReducibleElement T>
  Handle all_reduce_async(const_span<T> in, std::span<T> out, ReduceOp op = ReduceOp::sum) {
    all_reduce(in, out, op);
    return {};
  }
  template <ReducibleElement T>
  Handle reduce_scatter_async(const_span<T> in, std::span<T> out) {
    reduce_scatter(in, out);
    return {};
  }
  template <CommElement T>
  Handle all_gather_async(const_span<T> in, std::span<T> out) {
    all_gather(in, out);
    return {};
  }
  template <CommElement T>
  Handle send_recv_async(const_span<T> send, int dest, std::span<T> recv, int source) {
    send_recv(send, dest, recv, source);
    return {};
  }

  SerialComm split(int color, int /*key*/) const {
    comm_detail::check_split(name, color);
    return {};
  }
  void barrier() {}

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  static constexpr const char* name = "SerialComm";

  template <class T>
  static void copy(std::span<const T> from, std::span<T> to) {
    if (from.data() != to.data()) std::copy(from.begin(), from.end(), to.begin());
  }

  CommStats stats_;
};

}  // namespace sfm
