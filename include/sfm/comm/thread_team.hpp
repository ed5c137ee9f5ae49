// The machinery under ThreadComm (thread.hpp): the state shared by the rank threads of one
// ThreadGroup run (a lock and the abort flag), a team (one communicator's ranks: a two-phase
// rendezvous and point-to-point mailboxes), and the per-rank worker thread that runs a rank's
// operations in issue order, which is what lets the async operations overlap the caller's work.
//
// A collective is: every rank posts its arguments, waits until all have posted (abortable), computes
// its own result reading the others' inputs, then waits until all have finished reading (not
// abortable: every rank is past the first wait and only computes, so it always completes) and only
// then may overwrite a buffer that others read.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sfm/comm/communicator.hpp"

namespace sfm {

// Raised in every rank of a ThreadGroup once one rank has failed.
class CommAborted : public Error {
 public:
  using Error::Error;
};

namespace thread_detail {

// Shared by every communicator (the world and its splits) of one ThreadGroup run.
struct World {
  std::mutex mutex;
  std::condition_variable changed;
  bool aborted = false;
  std::string reason;

  void abort(const std::string& why) {
    {
      std::lock_guard lock(mutex);
      if (aborted) return;
      aborted = true;
      reason = why;
    }
    changed.notify_all();
  }

  // Waits, `lock` held, until ready(); throws CommAborted if the group is aborted first.
  template <class Ready>
  void wait(std::unique_lock<std::mutex>& lock, Ready ready) {
    changed.wait(lock, [&] { return aborted || ready(); });
    if (!ready()) raise_aborted();
  }

  [[noreturn]] void raise_aborted() const {
    throw CommAborted("ThreadComm: the rank group was aborted: " + reason);
  }
};

enum class OpKind { all_reduce, reduce_scatter, all_gather, broadcast, split, barrier };

inline const char* op_name(OpKind kind) {
  constexpr const char* names[] = {"all_reduce", "reduce_scatter", "all_gather",
                                   "broadcast",  "split",          "barrier"};
  return names[int(kind)];
}

// What one rank brings to a collective.
struct Post {
  OpKind kind = OpKind::barrier;
  ElementKind type = ElementKind::f32;
  std::size_t count = 0;  // elements of the rank's input (all_gather: in; others: in / data)
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  const void* in = nullptr;
  int color = 0, key = 0;
};

struct Message {
  int source;
  ElementKind type;
  std::size_t count;
  std::vector<std::byte> bytes;
};

// The ranks of one communicator.
struct Team {
  Team(std::shared_ptr<World> world_, int size) : world(std::move(world_)), posts(size), mailboxes(size) {}

  std::shared_ptr<World> world;
  std::vector<Post> posts;                       // by rank, valid between the two phases
  int arrived = 0;                               // ranks in the current phase
  std::uint64_t phase = 0;                       // completed phases
  std::vector<std::deque<Message>> mailboxes;    // by destination rank
  std::map<int, std::shared_ptr<Team>> forming;  // during split: color -> new team

  int size() const { return int(posts.size()); }

  // An abortable phase completes for all its ranks or for none: after an abort nobody arrives.
  void arrive_and_wait(bool abortable) {
    std::unique_lock lock(world->mutex);
    if (abortable && world->aborted) world->raise_aborted();
    const std::uint64_t mine = phase;
    if (++arrived == size()) {
      arrived = 0;
      ++phase;
      world->changed.notify_all();
      return;
    }
    if (abortable)
      world->wait(lock, [&] { return phase != mine; });
    else
      world->changed.wait(lock, [&] { return phase != mine; });
  }

  // Why the posts disagree (each rank finds the same answer), or "" when they match.
  std::string disagreement() const {
    const Post& first = posts[0];
    for (int r = 1; r < size(); ++r) {
      const Post& p = posts[r];
      const bool data = first.kind != OpKind::split && first.kind != OpKind::barrier;
      if (p.kind == first.kind && (!data || (p.type == first.type && p.count == first.count &&
                                             p.op == first.op && p.root == first.root)))
        continue;
      std::ostringstream why;
      why << "ThreadComm " << op_name(first.kind) << ": the ranks disagree: rank 0 called " << describe(first)
          << ", rank " << r << " called " << describe(p);
      return why.str();
    }
    return {};
  }

  static std::string describe(const Post& p) {
    std::ostringstream text;
    text << op_name(p.kind);
    if (p.kind != OpKind::split && p.kind != OpKind::barrier)
      text << " with " << p.count << " " << element_name(p.type)
           << (p.kind == OpKind::broadcast ? " from root " + std::to_string(p.root) : std::string())
           << (p.op == ReduceOp::max ? " (max)" : "");
    return text.str();
  }

  // Runs one collective for `rank`: post, wait for all, compute (reads the posts), wait for all.
  template <class Compute>
  void collective(int rank, const Post& post, Compute&& compute) {
    {
      std::lock_guard lock(world->mutex);
      posts[rank] = post;
    }
    arrive_and_wait(true);
    const std::string why = disagreement();
    if (why.empty()) compute();
    arrive_and_wait(false);
    SFM_CHECK(why.empty(), why);
  }

  void post_message(int dest, Message message) {
    {
      std::lock_guard lock(world->mutex);
      mailboxes[dest].push_back(std::move(message));
    }
    world->changed.notify_all();
  }

  Message take_message(int rank, int source) {
    std::unique_lock lock(world->mutex);
    auto& box = mailboxes[rank];
    auto from_source = [&] {
      for (auto it = box.begin(); it != box.end(); ++it)
        if (it->source == source) return it;
      return box.end();
    };
    world->wait(lock, [&] { return from_source() != box.end(); });
    const auto it = from_source();
    Message message = std::move(*it);
    box.erase(it);
    return message;
  }
};

// Runs one rank's operations, in the order submitted, on a thread of its own.
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Finishes what was submitted, then stops.
  ~Worker() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  std::future<void> submit(std::packaged_task<void()> task) {
    std::future<void> done = task.get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(task));
      ++pending_;
    }
    wake_.notify_one();
    return done;
  }

  bool idle() {
    std::lock_guard lock(mutex_);
    return pending_ == 0;
  }

  // Reused by the operations that need a private result buffer (only this thread touches it).
  std::vector<std::byte> scratch;

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::packaged_task<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();  // an exception lands in the task's future
      lock.lock();
      --pending_;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>> queue_;
  int pending_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace thread_detail
}  // namespace sfm
