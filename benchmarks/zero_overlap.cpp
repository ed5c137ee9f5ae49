// ZeRO step time with the gradient reductions overlapped with the backward (launched per bucket as
// soon as it is ready) versus waited for right after launch. Run under MPI:
//
//   mpiexec -n 2 bench_zero_overlap [--config small] [--stage 2] [--batch 4] [--steps 5]
//
// Rank 0 prints one JSON object: step_ms for both modes and their ratio. Open MPI progresses
// non-blocking collectives only inside MPI calls unless it has an asynchronous progress thread, so
// the gain depends on the MPI build and on spare cores.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "sfm/comm/mpi.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/parallel/zero.hpp"

namespace {

struct Options {
  std::string config = "small";
  int stage = 2;
  int64_t batch = 4;  // per rank
  int steps = 5;
};

template <int Stage>
double step_ms(sfm::MpiComm& comm, const Options& o, bool overlap) {
  const sfm::ModelConfig config = sfm::named_model_config(o.config);
  sfm::VitMae<sfm::Cpu> model(config, /*resident=*/false);
  sfm::ZeroOptimizer<sfm::ZeroStage<Stage>, sfm::MpiComm, sfm::Cpu> zero(model.table(), comm, {sfm::AdamWConfig{}, overlap});
  model.use_param_store(zero);
  zero.init_params(0);
  const auto volumes = sfm::synthesize_seismic(
      {{o.batch * config.crop[0], config.crop[1], config.crop[2]}, uint64_t(comm.rank())});
  const int64_t N = config.tokens(), K = sfm::RandomMask::len_keep(config);
  double total = 0;
  for (int step = 0; step <= o.steps; ++step) {  // step 0 warms up
    const auto mask = sfm::mask_from_noise(
        sfm::mask_noise(0, uint64_t(step), uint64_t(comm.rank() * o.batch), o.batch, N), o.batch, N, K);
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    model.forward(volumes.data(), mask, double(comm.size() * o.batch * (N - K)));
    model.backward();
    zero.step(1e-4, 1.0);
    comm.barrier();
    if (step > 0) total += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return total / o.steps;
}

template <int Stage>
nlohmann::json measure(sfm::MpiComm& comm, const Options& o) {
  const double on = step_ms<Stage>(comm, o, true), off = step_ms<Stage>(comm, o, false);
  return {{"bench", "zero_overlap"}, {"ranks", comm.size()}, {"stage", Stage},   {"model", o.config},
          {"batch_per_rank", o.batch},  {"step_ms_overlap", on}, {"step_ms_no_overlap", off},
          {"speedup", off / on}};
}

}  // namespace

int main(int argc, char** argv) try {
  sfm::MpiSession session(&argc, &argv);
  sfm::MpiComm comm = sfm::MpiComm::world();
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config") o.config = value;
    else if (key == "--stage") o.stage = std::stoi(value);
    else if (key == "--batch") o.batch = std::stoll(value);
    else if (key == "--steps") o.steps = std::stoi(value);
    else sfm::fail("unknown option ", key);
  }
  nlohmann::json result;
  switch (o.stage) {
    case 0: result = measure<0>(comm, o); break;
    case 1: result = measure<1>(comm, o); break;
    case 2: result = measure<2>(comm, o); break;
    case 3: result = measure<3>(comm, o); break;
    default: sfm::fail("--stage must be 0, 1, 2 or 3");
  }
  if (comm.rank() == 0) std::printf("%s\n", result.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_zero_overlap: error: %s\n", e.what());
  return 2;
}
