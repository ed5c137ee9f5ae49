// The training loop both sides of the CUDA model test run, written once against the backend:
// load weights, then per step mask, forward, backward, clip by the global norm, AdamW.
#pragma once

#include <cmath>

#include "model_cpu_reference.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"

namespace sfm::test {

template <class Backend>
ModelRun train_model(const ModelRunSpec& spec) {
  VitMae<Backend> model(spec.config);
  model.params_from_host(spec.params);
  model.set_recompute(spec.recompute);
  AdamW<Backend> optimizer(model.table(), AdamWConfig{});
  typename Backend::template Array<float> volumes;
  volumes.assign(spec.volumes.begin(), spec.volumes.end());
  const int64_t N = spec.config.tokens();
  ModelRun run;
  for (int step = 0; step < spec.steps; ++step) {
    const MaskPlan mask = mask_from_noise(mask_noise(spec.mask_seed, uint64_t(step), 0, spec.batch, N), spec.batch, N,
                                          RandomMask::len_keep(spec.config));
    model.zero_grad();
    run.losses.push_back(model.forward(volumes.data(), mask));
    model.backward();
    const double norm = std::sqrt(squared_norm(Backend{}, model.grads().data(), int64_t(model.grads().size())));
    run.grad_norms.push_back(norm);
    if (step == 0) run.first_grads = model.grads_to_host();
    optimizer.step(model.params(), model.grads(), spec.lr, clip_coefficient(norm, spec.clip));
  }
  return run;
}

}  // namespace sfm::test
