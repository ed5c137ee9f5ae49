// A small fixed-size thread pool for I/O work (decoding chunks, copying them into a read box).
//
// RAII: the destructor finishes the queued work and joins the threads. parallel_for(n, fn) runs
// fn(0..n-1) on the pool plus the calling thread and returns when all are done, rethrowing the
// first exception a task raised. Calls from inside a pool task run inline, so nesting cannot deadlock.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace sfm::io {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads = std::max(1u, std::thread::hardware_concurrency())) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }

  // Runs fn(i) for i in [0, n); blocks until all finish; rethrows the first exception.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
    if (n == 0) return;
    if (n == 1 || workers_.empty() || inside_pool()) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    struct Job {
      std::atomic<size_t> next{0};
      std::atomic<size_t> done{0};
      std::exception_ptr error;
      std::mutex error_mutex;
      std::mutex done_mutex;
      std::condition_variable finished;
    };
    auto job = std::make_shared<Job>();
    const auto run = [job, n, &fn] {
      size_t i;
      while ((i = job->next.fetch_add(1)) < n) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard lock(job->error_mutex);
          if (!job->error) job->error = std::current_exception();
        }
        if (job->done.fetch_add(1) + 1 == n) {
          std::lock_guard lock(job->done_mutex);
          job->finished.notify_all();
        }
      }
    };
    const size_t helpers = std::min(workers_.size(), n - 1);
    {
      std::lock_guard lock(mutex_);
      for (size_t h = 0; h < helpers; ++h) tasks_.push(run);
    }
    wake_.notify_all();
    run();  // the caller works too
    std::unique_lock lock(job->done_mutex);
    job->finished.wait(lock, [&] { return job->done.load() == n; });
    if (job->error) std::rethrow_exception(job->error);
  }

  // A process-wide pool for callers that do not bring their own.
  static ThreadPool& shared() {
    static ThreadPool pool;
    return pool;
  }

 private:
  static bool& inside_pool() {
    thread_local bool inside = false;
    return inside;
  }
  void work() {
    inside_pool() = true;
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop();
      }
      task();
    }
  }

  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace sfm::io
