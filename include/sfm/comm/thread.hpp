// ThreadComm: ranks as threads of one process, for tests and for running parallel policies on one
// machine without MPI. `run_ranks(P, fn)` (or ThreadGroup) starts P threads, calls fn(ThreadComm&)
// in each, joins them and rethrows the first failure.
//
// Determinism invariant: every reduction is computed element by element in rank order, in the
// element type — acc = x₀; acc = acc + x₁; …; acc = acc + x_{P−1} — by every collective. So results
// are bitwise reproducible, and reduce_scatter followed by all_gather gives exactly the bits of
// all_reduce (ZeRO-2's sharded gradients equal ZeRO-0's all-reduced ones).
//
// Each ThreadComm owns a worker thread that runs its rank's operations in issue order; the
// synchronous operations are the async ones waited at once. So an async operation progresses while
// the caller computes. As with NCCL streams, every rank must issue a communicator's operations
// (send_recv included) in the same order. Different communicators (a world and its splits) run
// independently.
//
// Failure: when a rank's fn throws, the group is aborted: every rank waiting for a peer (now or
// later) throws CommAborted, so nothing hangs; run() rethrows the original error. Disagreeing ranks
// (different operations, sizes or types) all raise an sfm::Error saying who passed what.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sfm/comm/communicator.hpp"
#include "sfm/comm/thread_team.hpp"

namespace sfm {

namespace thread_detail {

// out[i] = in₀[offset+i] op in₁[offset+i] op … in rank order.
template <class T>
void reduce_in_rank_order(const std::vector<Post>& posts, std::size_t offset, T* out, std::size_t n,
                          ReduceOp op) {
  std::vector<const T*> in(posts.size());
  for (std::size_t r = 0; r < posts.size(); ++r) in[r] = static_cast<const T*>(posts[r].in) + offset;
  for (std::size_t i = 0; i < n; ++i) {
    T acc = in[0][i];
    if (op == ReduceOp::sum)
      for (std::size_t r = 1; r < in.size(); ++r) acc = T(acc + in[r][i]);
    else
      for (std::size_t r = 1; r < in.size(); ++r) acc = std::max(acc, in[r][i]);
    out[i] = acc;
  }
}

}  // namespace thread_detail

class ThreadGroup;

class ThreadComm : public AsyncCollectives<ThreadComm> {
 public:
  // Completion of an async operation. Destroying it unwaited waits (and, while an exception is
  // unwinding, first aborts the group so the wait cannot hang).
  class Handle {
   public:
    Handle() = default;  // complete
    Handle(Handle&&) noexcept = default;
    Handle& operator=(Handle&& other) noexcept {
      finish();
      done_ = std::move(other.done_);
      world_ = std::move(other.world_);
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { finish(); }

    // Blocks until the operation is done; rethrows its error. A second wait() returns at once.
    void wait() {
      if (done_.valid()) done_.get();
    }
    // True when wait() would not block.
    bool test() {
      return !done_.valid() || done_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }

   private:
    friend class ThreadComm;
    Handle(std::future<void> done, std::shared_ptr<thread_detail::World> world)
        : done_(std::move(done)), world_(std::move(world)) {}

    void finish() noexcept {
      if (!done_.valid()) return;
      if (std::uncaught_exceptions() > 0 && !test())
        world_->abort("a rank unwound an exception past an unfinished operation");
      done_.wait();
      done_ = {};
    }

    std::future<void> done_;
    std::shared_ptr<thread_detail::World> world_;
  };

  ThreadComm(ThreadComm&&) noexcept = default;
  ThreadComm& operator=(ThreadComm&&) noexcept = default;
  ~ThreadComm() {
    if (worker_ && std::uncaught_exceptions() > 0 && !worker_->idle())
      team_->world->abort("a rank unwound an exception past an unfinished operation");
  }

  int rank() const { return rank_; }
  int size() const { return team_->size(); }

  using AsyncCollectives<ThreadComm>::all_reduce_async;

  template <ReducibleElement T>
  Handle all_reduce_async(const_span<T> in, std::span<T> out, ReduceOp op = ReduceOp::sum) {
    comm_detail::check_all_reduce<T>(name, in, out);
    comm_traffic::record(stats_, comm_traffic::all_reduce(out.size_bytes(), size()));
    return submit([team = team_, rank = rank_, in, out, op] {
      const thread_detail::Post post{
          thread_detail::OpKind::all_reduce, element_kind<T>(), in.size(), op, 0, in.data()};
      std::vector<T> result(out.size());  // others still read `in`, which may be `out`
      team->collective(rank, post, [&] {
        thread_detail::reduce_in_rank_order(team->posts, 0, result.data(), result.size(), op);
      });
      std::copy(result.begin(), result.end(), out.begin());
    });
  }

  template <ReducibleElement T>
  Handle reduce_scatter_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_reduce_scatter<T>(name, in, out, rank_, size());
    comm_traffic::record(stats_, comm_traffic::reduce_scatter(in.size_bytes(), size()));
    return submit([team = team_, rank = rank_, in, out] {
      const thread_detail::Post post{
          thread_detail::OpKind::reduce_scatter, element_kind<T>(), in.size(), ReduceOp::sum, 0, in.data()};
      // Element by element, so an `out` that is chunk `rank` of `in` is read before it is written;
      // no other rank reads that chunk.
      team->collective(rank, post, [&] {
        thread_detail::reduce_in_rank_order(team->posts, rank * out.size(), out.data(), out.size(),
                                            ReduceOp::sum);
      });
    });
  }

  template <CommElement T>
  Handle all_gather_async(const_span<T> in, std::span<T> out) {
    comm_detail::check_all_gather<T>(name, in, out, rank_, size());
    comm_traffic::record(stats_, comm_traffic::all_gather(out.size_bytes(), size()));
    return submit([team = team_, rank = rank_, in, out] {
      const thread_detail::Post post{
          thread_detail::OpKind::all_gather, element_kind<T>(), in.size(), ReduceOp::sum, 0, in.data()};
      team->collective(rank, post, [&] {
        const std::size_t m = in.size();
        for (int r = 0; r < team->size(); ++r) {
          const T* chunk = static_cast<const T*>(team->posts[r].in);
          if (chunk != out.data() + r * m) std::copy(chunk, chunk + m, out.data() + r * m);
        }
      });
    });
  }

  template <CommElement T>
  Handle send_recv_async(const_span<T> send, int dest, std::span<T> recv, int source) {
    comm_detail::check_send_recv<T>(name, send, dest, recv, source, size());
    comm_traffic::record(stats_, comm_traffic::send_recv(send.size_bytes(), dest == rank_));
    // The message is copied when posted (an eager send), so the send never waits for the receiver.
    return submit([team = team_, rank = rank_, send, dest, recv, source] {
      thread_detail::Message message{rank, element_kind<T>(), send.size(),
                                     std::vector<std::byte>(send.size_bytes())};
      if (!send.empty()) std::memcpy(message.bytes.data(), send.data(), send.size_bytes());
      team->post_message(dest, std::move(message));
      const thread_detail::Message got = team->take_message(rank, source);
      SFM_CHECK(got.type == element_kind<T>() && got.count == recv.size(), "ThreadComm send_recv: rank ",
                rank, " receives ", recv.size(), " ", element_name(element_kind<T>()), " from rank ", source,
                ", which sent ", got.count, " ", element_name(got.type));
      if (!recv.empty()) std::memcpy(recv.data(), got.bytes.data(), got.bytes.size());
    });
  }

  template <CommElement T>
  void broadcast(std::span<T> data, int root) {
    comm_detail::check_rank(name, "broadcast", "root", root, size());
    comm_traffic::record(stats_, comm_traffic::broadcast(data.size_bytes(), rank_ == root));
    submit([team = team_, rank = rank_, data, root] {
      const thread_detail::Post post{
          thread_detail::OpKind::broadcast, element_kind<T>(), data.size(), ReduceOp::sum, root, data.data()};
      team->collective(rank, post, [&] {
        const T* from = static_cast<const T*>(team->posts[root].in);
        if (rank != root) std::copy(from, from + data.size(), data.begin());
      });
    }).wait();
  }

  ThreadComm split(int color, int key) {
    comm_detail::check_split(name, color);
    std::shared_ptr<thread_detail::Team> team;
    int new_rank = 0;
    submit([&] {
      thread_detail::Post post;
      post.kind = thread_detail::OpKind::split;
      post.color = color;
      post.key = key;
      team_->collective(rank_, post, [&] {
        std::vector<std::pair<int, int>> members;  // (key, parent rank), the new rank order
        for (int r = 0; r < size(); ++r)
          if (team_->posts[r].color == color) members.emplace_back(team_->posts[r].key, r);
        std::sort(members.begin(), members.end());
        new_rank = int(std::find(members.begin(), members.end(), std::pair{key, rank_}) - members.begin());
        std::lock_guard lock(team_->world->mutex);
        auto& forming = team_->forming[color];
        if (!forming) forming = std::make_shared<thread_detail::Team>(team_->world, int(members.size()));
        team = forming;
      });
      if (rank_ == 0) {  // every rank has its team now (second phase passed)
        std::lock_guard lock(team_->world->mutex);
        team_->forming.clear();
      }
    }).wait();
    return ThreadComm(std::move(team), new_rank);
  }

  void barrier() {
    submit([team = team_, rank = rank_] { team->collective(rank, thread_detail::Post{}, [] {}); }).wait();
  }

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  friend class ThreadGroup;
  static constexpr const char* name = "ThreadComm";

  ThreadComm(std::shared_ptr<thread_detail::Team> team, int rank)
      : team_(std::move(team)), rank_(rank), worker_(std::make_unique<thread_detail::Worker>()) {}

  template <class Fn>
  Handle submit(Fn&& fn) {
    return Handle(worker_->submit(std::packaged_task<void()>(std::forward<Fn>(fn))), team_->world);
  }

  std::shared_ptr<thread_detail::Team> team_;
  int rank_ = 0;
  CommStats stats_;
  std::unique_ptr<thread_detail::Worker> worker_;
};

// P ranks as threads. run(fn) calls fn(ThreadComm&) on each of P fresh threads with a fresh world
// communicator, joins them, and rethrows the first failure (an original error in preference to the
// CommAborted it caused in the other ranks).
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size) {
    SFM_CHECK(size >= 1, "ThreadGroup: size ", size, " must be at least 1");
  }
  int size() const { return size_; }

  template <class Fn>
  void run(Fn&& fn) const {
    auto world = std::make_shared<thread_detail::World>();
    auto team = std::make_shared<thread_detail::Team>(world, size_);
    std::mutex mutex;
    std::exception_ptr failure;
    bool failure_is_abort = false;
    auto record = [&](int rank, std::exception_ptr error) {
      const auto [is_abort, what] = describe(error);
      {
        std::lock_guard lock(mutex);
        if (!failure || (failure_is_abort && !is_abort)) {
          failure = error;
          failure_is_abort = is_abort;
        }
      }
      world->abort("rank " + std::to_string(rank) + " failed: " + what);
    };
    std::vector<std::thread> threads;
    threads.reserve(size_);
    for (int rank = 0; rank < size_; ++rank)
      threads.emplace_back([&, rank] {
        try {
          ThreadComm comm(team, rank);
          fn(comm);
        } catch (...) {
          record(rank, std::current_exception());
        }
      });
    for (auto& thread : threads) thread.join();
    if (failure) std::rethrow_exception(failure);
  }

 private:
  static std::pair<bool, std::string> describe(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const CommAborted& e) {
      return {true, e.what()};
    } catch (const std::exception& e) {
      return {false, e.what()};
    } catch (...) {
      return {false, "an exception that is not a std::exception"};
    }
  }

  int size_;
};

// run_ranks(P, fn): ThreadGroup(P).run(fn).
template <class Fn>
void run_ranks(int size, Fn&& fn) {
  ThreadGroup(size).run(std::forward<Fn>(fn));
}

}  // namespace sfm
