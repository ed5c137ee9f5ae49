// SIGINT, SIGTERM or SIGUSR1 → a flag the training loop polls at step boundaries, so an interrupted
// run writes a checkpoint of its last finished step and exits cleanly instead of dying mid-step.
// Installed for the lifetime of a StopSignal; the previous handlers come back afterwards. A second
// signal while stopping falls through to the previous handler (normally: terminate at once).
//
// Under a launcher (docs/training.md, "Stopping a run"):
//   mpirun (Open MPI 4)  forwards SIGUSR1 to every rank at once (`kill -USR1 <mpirun pid>`: the
//                        checkpoint comes after the current step, mpirun exits 0). On Ctrl-C or
//                        SIGTERM it sends the ranks SIGCONT, waits odls_base_sigkill_timeout
//                        seconds (default 1), sends SIGTERM, and SIGKILL as long again later: set it
//                        (`--mca odls_base_sigkill_timeout 30`) longer than a step plus a checkpoint.
//   srun / Slurm         SIGTERM at a time limit (`--signal=TERM@300`) or pre-emption, SIGKILL after
//                        KillWait / GraceTime; `--signal=USR1@300` works the same.
#pragma once

#include <csignal>

namespace sfm {

class StopSignal {
 public:
  StopSignal() {
    flag() = 0;
    for (size_t i = 0; i < count; ++i) previous_[i] = std::signal(signals[i], handle);
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  ~StopSignal() {
    for (size_t i = 0; i < count; ++i) std::signal(signals[i], previous_[i]);
  }

  bool requested() const { return flag() != 0; }

 private:
  static constexpr int signals[] = {SIGINT, SIGTERM, SIGUSR1};
  static constexpr size_t count = sizeof(signals) / sizeof(signals[0]);

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

  void (*previous_[count])(int) = {};
};

}  // namespace sfm
