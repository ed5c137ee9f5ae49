// `sfm train [CONFIG.json] [--set key.path=value ...] [--resume DIR]`: the trainer of
// include/sfm/train/trainer.hpp behind a command line (config schema: docs/training.md).
//
// Launched by mpirun/srun (detected from the launcher's environment, so a plain `sfm train` never
// initialises MPI) it runs on MpiComm over all ranks, else on SerialComm. With `"backend": "cuda"`
// that host world only bootstraps an NcclComm, one GPU per rank (train_cuda.cu). With --resume and no
// CONFIG the configuration stored in the checkpoint is used (--set still applies, e.g. another dp).
// Errors found before training starts, and a RunStopped (a non-finite step), are the same on every
// rank and printed by rank 0 only; any other error during training on one rank aborts the whole
// MPI job, so no rank waits forever. The resumed run writes into --resume's folder (train/run_folder.hpp).
#include <cstdio>

#include "cli.hpp"
#include "launcher.hpp"
#include "sfm/comm/serial.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/trainer.hpp"
#ifdef SFM_CLI_HAVE_CUDA_TRAIN
#include "train_cuda.hpp"
#endif
#if __has_include(<mpi.h>)
#include "sfm/comm/mpi.hpp"
#endif

namespace sfm::cli {
namespace {

nlohmann::json effective_config(const Args& args) {
  nlohmann::json config = default_train_json();
  if (!args.positional.empty()) {
    merge_train_json(config, read_json_file(args.positional[0]));
  } else if (args.has("resume")) {
    merge_train_json(config, read_trainer_json(resolve_run_checkpoint(args.get("resume"))).at("config"));
  }
  if (args.has("set"))
    for (const std::string& assignment : args.options.at("set")) apply_train_override(config, assignment);
  return config;
}

#ifndef SFM_CLI_HAVE_CUDA_TRAIN
template <class Comm>
TrainResult train_cuda(const TrainConfig&, Comm&, const TrainOptions&) {
#ifdef SFM_CLI_HAVE_CUDA
  fail("backend cuda: this sfm was built without NCCL or MPI, which the CUDA trainer runs on");
#else
  fail("backend cuda: this sfm was built without CUDA");
#endif
}
#endif

template <class Comm>
int train_on(const TrainConfig& config, Comm& world, const Args& args, bool& started) {
  TrainOptions options;
  if (args.has("resume")) options.resume = args.get("resume");
  options.console = world.rank() == 0 ? stderr : nullptr;
  options.started = [&] { started = true; };
  const TrainResult result =
      config.backend == BackendKind::cuda ? train_cuda(config, world, options) : train<Cpu>(config, world, options);
  if (world.rank() == 0 && !result.losses.empty())
    std::fprintf(stderr, "sfm train: %lld steps in %.1f s, loss %.4f → %.4f, data wait %.1f%%, output %s\n",
                 (long long)(result.end_step - result.first_step), result.seconds, result.losses.front(),
                 result.losses.back(), 100.0 * result.data_wait_s / result.seconds, result.checkpoint.parent_path().c_str());
  return 0;
}

}  // namespace

int run_train(int argc, char** argv) {
  const int rank = launcher_rank();
  [[maybe_unused]] const int size = launcher_size();
  bool started = false;
  try {
    const Args args = parse_args(argc, argv, 2, {"set", "resume"});
    SFM_CHECK(args.positional.size() <= 1, "expected one config file, got ", args.positional.size());
    SFM_CHECK(!args.positional.empty() || args.has("resume"), "expected a config file (or --resume DIR)");
    const TrainConfig config = parse_train_config(effective_config(args));
    if (rank < 0) {
      SerialComm world;
      return train_on(config, world, args, started);
    }
    share_cores();
#ifdef SFM_HAS_MPI_COMM
    MpiSession session;
    MpiComm world = MpiComm::world();
    world.set_timeout(config.timeout_s);  // a stalled rank ends the job instead of hanging it
    try {
      return train_on(config, world, args, started);
    } catch (const std::exception& e) {
      if (!started || world.size() == 1 || dynamic_cast<const RunStopped*>(&e)) throw;
      std::fprintf(stderr, "sfm train: error on rank %d: %s\n", world.rank(), e.what());
      MPI_Abort(MPI_COMM_WORLD, 2);
      return 2;
    }
#else
    SFM_CHECK(size <= 1, "launched as ", size, " ranks, but this sfm was built without MPI");
    SerialComm world;
    return train_on(config, world, args, started);
#endif
  } catch (const std::exception& e) {
    if (rank > 0 && (!started || dynamic_cast<const RunStopped*>(&e))) return 2;  // rank 0 reports the same error
    throw;
  }
}

}  // namespace sfm::cli
