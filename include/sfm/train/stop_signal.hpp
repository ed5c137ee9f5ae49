// SIGINT/SIGTERM → a flag the training loop polls at step boundaries, so an interrupted run writes a
// checkpoint and exits cleanly instead of dying mid-step. Installed for the lifetime of a
// StopSignal; the previous handlers come back afterwards. A second signal while stopping falls
// through to the previous handler (normally: terminate at once).
#pragma once

#include <csignal>

namespace sfm {

class StopSignal {
 public:
  StopSignal() {
    flag() = 0;
    previous_int_ = std::signal(SIGINT, handle);
    previous_term_ = std::signal(SIGTERM, handle);
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  ~StopSignal() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

  bool requested() const { return flag() != 0; }

 private:
  static volatile std::sig_atomic_t& flag() {
    static volatile std::sig_atomic_t value = 0;
    return value;
  }
  static void handle(int signal) {
    if (flag() != 0) {
      std::signal(signal, SIG_DFL);
      std::raise(signal);
    }
    flag() = signal;
  }

  void (*previous_int_)(int) = SIG_DFL;
  void (*previous_term_)(int) = SIG_DFL;
};

}  // namespace sfm
