// One include for every test: Catch2 2.x (Debian 12, catch2/catch.hpp) or 3.x (Ubuntu 24.04),
// plus small helpers for comparing float arrays against a reference with a stated tolerance, and
// assertions that threads (ThreadComm ranks) may make.
#pragma once

#include <string>

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
using Catch::Approx;
namespace sfm::test {
// A matcher for CHECK_THROWS_WITH: the message contains `text`.
inline auto contains(const std::string& text) { return Catch::Matchers::ContainsSubstring(text); }
}  // namespace sfm::test
#else
#include <catch2/catch.hpp>
namespace sfm::test {
inline auto contains(const std::string& text) { return Catch::Matchers::Contains(text); }
}  // namespace sfm::test
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <span>
#include <thread>

namespace sfm::test {

// Catch2 2.x assertions are not thread-safe: ranks of run_ranks (threads) that assert go through
// RANK_CHECK / RANK_CHECK_THROWS_WITH, which take this lock. Never hold it across a collective.
inline std::mutex& assertion_mutex() {
  static std::mutex mutex;
  return mutex;
}
#define RANK_CHECK(...)                                                    \
  do {                                                                     \
    const std::lock_guard<std::mutex> rank_lock(sfm::test::assertion_mutex()); \
    CHECK(__VA_ARGS__);                                                    \
  } while (0)
#define RANK_CHECK_THROWS_WITH(expression, matcher)                        \
  do {                                                                     \
    const std::lock_guard<std::mutex> rank_lock(sfm::test::assertion_mutex()); \
    CHECK_THROWS_WITH(expression, matcher);                                \
  } while (0)

// How long a wait that should take milliseconds may last before the test calls it a hang. Tests
// share the machine with builds and other tests, so no assertion may depend on how fast a wait
// ends; a bound this generous only fails when something never ends.
inline constexpr std::chrono::seconds kHangLimit{60};

// Ends the process (std::abort, after a line on stderr naming `what`) if it is still alive
// `limit` after its construction: for code that, when broken, blocks threads that can then never
// be joined (a ThreadComm group whose ranks wait for each other), so that a hang fails at once,
// saying where, rather than at ctest's timeout.
class Watchdog {
 public:
  explicit Watchdog(std::string what, std::chrono::seconds limit = kHangLimit)
      : thread_([this, what = std::move(what), limit] {
          std::unique_lock lock(mutex_);
          if (done_.wait_for(lock, limit, [this] { return disarmed_; })) return;
          std::cerr << "sfm test: " << what << " still running after " << limit.count() << " s: a hang\n"
                    << std::flush;
          std::abort();
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      const std::lock_guard lock(mutex_);
      disarmed_ = true;
    }
    done_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  bool disarmed_ = false;
  std::thread thread_;  // last: it starts once the members it uses exist
};

// Largest |a[i] - b[i]| over the arrays (which must have equal length).
template <class A, class B>
double max_abs_diff(std::span<const A> a, std::span<const B> b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

template <class T>
double max_abs(std::span<const T> a) {
  double worst = 0;
  for (const T& v : a) worst = std::max(worst, std::abs(double(v)));
  return worst;
}

// A fresh empty directory under the build tree's temp area, removed first if it exists.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const char* root = std::getenv("SFM_TEST_TMP");
  std::filesystem::path dir = std::filesystem::path(root ? root : std::filesystem::temp_directory_path().string()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs a shell command (a reference script, a peer implementation); the test fails when it does.
inline void run_command(const std::string& command) {
  INFO("command: " << command);
  const int status = std::system(command.c_str());
  REQUIRE(status == 0);
}

// The PyTorch reference script with Debian's Python (torch + numpy), e.g. reference_command("fixtures ...").
inline std::string reference_command(const std::string& arguments) {
  return std::string(SFM_TORCH_PYTHON) + " " + SFM_SOURCE_DIR + "/tests/reference/mae_reference.py " + arguments;
}

}  // namespace sfm::test
