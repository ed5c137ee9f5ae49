// The ZeRO training loop both sides of the CUDA ZeRO test run (test_zero_cuda.cu), written once
// against the backend and the communicator: VitMae<Backend> on a ZeroOptimizer<ZeroStage<k>, Comm,
// Backend>, micro-batches of synthetic crops and MAE masks that depend only on (seed, step, sample).
// The CPU side (SerialComm, Cpu) is compiled by the host compiler in zero_cpu_reference.cpp, so
// Eigen stays out of nvcc.
#pragma once

#include <cstdint>
#include <vector>

#include "sample_volumes.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/parallel/zero.hpp"

namespace sfm::test {

struct ZeroBackendSpec {
  ModelConfig config;
  int micro_batches = 2;  // per step: the accumulator adds two reduced micro-batches
  int micro_batch = 2;
  int steps = 4;
  double lr = 1e-3;
  double clip = 0.05;     // small enough that clipping is active (the global norm matters)
  uint64_t seed = 9;
};

struct ZeroBackendRun {
  std::vector<double> losses;      // loss of each step (the sum over its micro-batches)
  std::vector<double> grad_norms;  // ZeroOptimizer::step's global norm, before clipping
  bool state_round_trip = false;   // gather_state → load_state (fresh optimizer) → gather_state is exact
};

template <int Stage, class Backend, class Comm>
ZeroBackendRun train_zero_backend(Comm& comm, const ZeroBackendSpec& spec) {
  SFM_CHECK(comm.size() == 1, "train_zero_backend: one rank (the CPU reference is a single rank), got ", comm.size());
  const ModelConfig& c = spec.config;
  VitMae<Backend> model(c, /*resident=*/false);
  ZeroOptimizer<ZeroStage<Stage>, Comm, Backend> zero(model.table(), comm);
  model.use_param_store(zero);
  zero.init_params(spec.seed);
  const int64_t N = c.tokens(), len_keep = RandomMask::len_keep(c);
  const double hidden = double(spec.micro_batches * spec.micro_batch) * double(N - len_keep);
  typename Backend::template Array<float> volumes;
  ZeroBackendRun run;
  for (int step = 0; step < spec.steps; ++step) {
    double loss = 0;
    for (int m = 0; m < spec.micro_batches; ++m) {
      const int first = m * spec.micro_batch;
      const auto host = sample_volumes(c, step, first, spec.micro_batch);
      volumes.assign(host.begin(), host.end());
      const MaskPlan mask = mask_from_noise(mask_noise(spec.seed, uint64_t(step), uint64_t(first), spec.micro_batch, N),
                                            spec.micro_batch, N, len_keep);
      loss += model.forward(volumes.data(), mask, hidden);
      model.backward();
    }
    run.losses.push_back(loss);
    run.grad_norms.push_back(zero.step(spec.lr, spec.clip));
  }
  const FullOptimizerState state = zero.gather_state();
  ZeroOptimizer<ZeroStage<Stage>, Comm, Backend> reloaded(model.table(), comm);
  reloaded.load_state(state);
  const FullOptimizerState again = reloaded.gather_state();
  run.state_round_trip = again.steps == state.steps && again.params == state.params &&
                         again.exp_avg == state.exp_avg && again.exp_avg_sq == state.exp_avg_sq;
  return run;
}

// ZeroOptimizer<ZeroStage<stage>, SerialComm, Cpu> with VitMae<Cpu> (zero_cpu_reference.cpp).
ZeroBackendRun run_zero_cpu(int stage, const ZeroBackendSpec& spec);

}  // namespace sfm::test
