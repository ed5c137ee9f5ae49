// Composes an sfm ViT-MAE in user code: model, mask policy, optimizer and schedule; trains a few
// steps on synthetic seismic crops and saves a checkpoint that PyTorch's MAE code can load.
#include <cstdio>

#include <sfm/data/synthetic.hpp>
#include <sfm/kernels/cpu/kernels.hpp>  // the backend this program runs (sfm::Cpu)
#include <sfm/model/vit_mae.hpp>
#include <sfm/optim/adamw.hpp>
#include <sfm/optim/clip.hpp>
#include <sfm/optim/lr_schedule.hpp>
#include <sfm/train/checkpoint.hpp>

int main() {
  const sfm::ModelConfig config = sfm::named_model_config("tiny");
  const int64_t batch = 4, steps = 5, N = config.tokens();

  sfm::VitMae<sfm::Cpu> model(config);
  model.init_weights(/*seed=*/0);
  sfm::AdamW<sfm::Cpu> optimizer(model.table(), sfm::AdamWConfig{});
  const sfm::LrSchedule schedule{/*base_lr=*/1e-3, /*min_lr=*/0.0, /*warmup_steps=*/1, steps};

  // Four 32³ crops stacked along z: exactly the [batch, Z, Y, X] layout the model takes.
  const std::vector<float> crops = sfm::synthesize_seismic({{batch * config.crop[0], config.crop[1], config.crop[2]}, 7});
  for (int64_t step = 0; step < steps; ++step) {
    const sfm::MaskPlan mask = sfm::mask_from_noise(sfm::mask_noise(0, uint64_t(step), 0, batch, N), batch, N,
                                                    sfm::RandomMask::len_keep(config));
    model.zero_grad();
    const double loss = model.forward(crops.data(), mask);
    model.backward();
    const double norm = std::sqrt(sfm::squared_norm(model.grads()));
    optimizer.step(model.params(), model.grads(), schedule.at(step), sfm::clip_coefficient(norm, 1.0));
    std::printf("step %lld loss %.4f\n", (long long)step, loss);
  }
  sfm::save_model("consumer.safetensors", model);
  std::printf("saved consumer.safetensors\n");
  return 0;
}
