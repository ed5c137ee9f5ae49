// The CPU side of the CUDA model test, compiled by the host compiler (Eigen stays out of nvcc):
// trains VitMae<Cpu> from given weights on given volumes and masks, recording what the CUDA run is
// compared with.
#pragma once

#include <vector>

#include "sfm/model/config.hpp"

namespace sfm::test {

struct ModelRun {
  std::vector<double> losses;       // loss of each step, before its update
  std::vector<double> grad_norms;   // global gradient norm of each step, before clipping
  std::vector<float> first_grads;   // every gradient of step 0 (flat layout)
};

struct ModelRunSpec {
  ModelConfig config;
  std::vector<float> params;        // initial weights (flat layout)
  std::vector<float> volumes;       // [batch, Z, Y, X]
  int batch = 2;
  int steps = 20;
  double lr = 1e-3;
  double clip = 1.0;
  uint64_t mask_seed = 5;           // masks: mask_noise(mask_seed, step, 0, batch, N)
  Recompute recompute{};            // the model's activation recomputation
};

ModelRun run_cpu_model(const ModelRunSpec& spec);

}  // namespace sfm::test
