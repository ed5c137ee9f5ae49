// The acceptance test of the CPU backend: VitMae<Cpu> against the PyTorch reference
// (tests/reference/mae_reference.py), which writes weights, volume, noise, loss, every gradient
// and the losses of 10 AdamW steps; the C++ model loads the same weights and inputs and must match.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sfm/core/npy.hpp"
#include "sfm/core/safetensors.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/optim/lr_schedule.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm_test.hpp"

namespace {

struct Case {
  std::string name;
  std::string model;  // --model argument of the reference
  int batch;
};

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::span<const float> noise_of_step(const sfm::Tensor<float>& noise, int64_t step) {
  const int64_t per_step = noise.shape()[1] * noise.shape()[2];
  return noise.span().subspan(size_t(step * per_step), size_t(per_step));
}

// The worst of `measure(p)` over the model's tensors p, printed as one JSON line named `what`.
struct WorstTensor {
  double value = 0;
  std::string tensor;

  template <class Measure>
  WorstTensor(const sfm::ParamTable& table, const char* what, const std::string& case_name, Measure measure) {
    for (const sfm::ParamInfo& p : table.entries()) {
      const double v = measure(p);
      if (v > value) value = v, tensor = p.name;
    }
    std::printf("{\"test\": \"%s\", \"case\": \"%s\", \"worst\": %.3e, \"tensor\": \"%s\"}\n", what,
                case_name.c_str(), value, tensor.c_str());
  }
};

void check_case(const Case& c) {
  const auto dir = sfm::test::scratch_dir("vit_mae_" + c.name);
  const int steps = 10, warmup = 3;
  const double lr = 1e-3, clip = 0.5, wd = 0.05;
  sfm::test::run_command(sfm::test::reference_command(
      "fixtures --model '" + c.model + "' --batch " + std::to_string(c.batch) + " --seed 3 --steps " +
      std::to_string(steps) + " --lr " + std::to_string(lr) + " --warmup " + std::to_string(warmup) + " --clip " +
      std::to_string(clip) + " --wd " + std::to_string(wd) + " --out " + dir.string()));

  const auto result = read_json(dir / "result.json");
  const sfm::ModelConfig config = sfm::model_config_from_json(read_json(dir / "config.json").at("model"));
  sfm::VitMae<sfm::Cpu> model(config);
  {  // sfm's own fixed sin-cos positional embeddings against the reference's buffers, before the
     // load replaces them with those
    const auto weights = sfm::SafetensorsFile::load(dir / "weights.safetensors");
    for (const auto& [name, mine] : {std::pair{"pos_embed", model.pos_embed()},
                                     std::pair{"decoder_pos_embed", model.decoder_pos_embed()}}) {
      const auto ref = weights.tensor_as<float>(name);
      REQUIRE(ref.span().size() == mine.size());
      const double diff = sfm::test::max_abs_diff<float, float>(mine, ref.span());
      INFO(name << ": max |sfm − reference| " << diff);
      CHECK(diff <= 1e-6);
    }
  }
  sfm::load_model_weights(model, sfm::SafetensorsFile::load(dir / "weights.safetensors"), "weights.safetensors");
  const auto volume = sfm::read_npy_as<float>(dir / "volume.npy");
  const auto noise = sfm::read_npy_as<float>(dir / "noise.npy");
  const int64_t B = c.batch, N = config.tokens();
  REQUIRE(volume.shape() == sfm::Shape{B, config.crop[0], config.crop[1], config.crop[2]});
  REQUIRE(noise.shape() == sfm::Shape{steps, B, N});

  {  // step 0: the loss and every gradient
    const sfm::MaskPlan mask = sfm::mask_from_noise(noise_of_step(noise, 0), B, N, sfm::RandomMask::len_keep(config));
    REQUIRE(mask.len_keep == result.at("len_keep").get<int64_t>());
    const double loss = model.forward(volume.data(), mask);
    const double ref_loss = result.at("loss").get<double>();
    INFO("sfm loss " << loss << ", reference " << ref_loss << ", fp64 reference " << result.at("loss64").get<double>()
                     << " (relative deviation " << std::abs(loss - ref_loss) / std::abs(ref_loss) << ")");
    CHECK(std::abs(loss - ref_loss) <= 1e-5 * std::abs(ref_loss));

    model.zero_grad();
    model.backward();
    const auto grads = sfm::SafetensorsFile::load(dir / "grads.safetensors");
    for (const sfm::ParamInfo& p : model.table().entries()) {
      const auto ref = grads.tensor_as<float>(p.name);
      REQUIRE(ref.shape() == p.shape);
      const auto mine = model.grad(p.name);
      const double scale = sfm::test::max_abs(ref.span());
      const double diff = sfm::test::max_abs_diff<float, float>(mine, ref.span());
      INFO(p.name << ": max |diff| " << diff << ", max |reference| " << scale);
      CHECK(diff <= 1e-4 * scale);
    }
    // And against the float64 reference (the same model and inputs in double): the fp32 rounding
    // error of sfm's own gradients, apart from PyTorch's fp32 arithmetic, and the fp64 loss.
    CHECK(std::abs(loss - result.at("loss64").get<double>()) <= 1e-5 * std::abs(loss));
    const auto grads64 = sfm::SafetensorsFile::load(dir / "grads64.safetensors");
    const WorstTensor worst(model.table(), "vit_mae_grads_vs_fp64", c.name, [&](const sfm::ParamInfo& p) {
      const auto ref = grads64.tensor_as<double>(p.name);
      REQUIRE(ref.shape() == p.shape);
      const auto mine = model.grad(p.name);
      double scale = 0, diff = 0;
      for (size_t i = 0; i < mine.size(); ++i) {
        scale = std::max(scale, std::abs(ref.span()[i]));
        diff = std::max(diff, std::abs(double(mine[i]) - ref.span()[i]));
      }
      return scale > 0 ? diff / scale : diff;
    });
    INFO("worst tensor " << worst.tensor);
    CHECK(worst.value <= 1e-5);  // measured ≤ 7.9e-7
  }

  {  // 10 AdamW steps with warmup, cosine and clipping track the reference losses
    sfm::load_model_weights(model, sfm::SafetensorsFile::load(dir / "weights.safetensors"), "weights.safetensors");
    const auto losses = result.at("losses").get<std::vector<double>>();
    const auto grad_norms = result.at("grad_norms").get<std::vector<double>>();
    REQUIRE(losses.size() == size_t(steps));
    sfm::AdamW<sfm::Cpu> optimizer(model.table(), sfm::AdamWConfig{0.9, 0.95, 1e-8, wd});
    const sfm::LrSchedule schedule{lr, 0.0, warmup, steps};
    std::vector<double> sfm_losses;
    for (int step = 0; step < steps; ++step) {
      const sfm::MaskPlan mask =
          sfm::mask_from_noise(noise_of_step(noise, step), B, N, sfm::RandomMask::len_keep(config));
      model.zero_grad();
      const double loss = model.forward(volume.data(), mask);
      model.backward();
      const double norm = std::sqrt(sfm::squared_norm(model.grads()));
      INFO("step " << step << ": loss " << loss << " vs " << losses[size_t(step)] << ", grad norm " << norm << " vs "
                   << grad_norms[size_t(step)] << " (relative deviations "
                   << std::abs(loss - losses[size_t(step)]) / std::abs(losses[size_t(step)]) << ", "
                   << std::abs(norm - grad_norms[size_t(step)]) / grad_norms[size_t(step)] << ")");
      CHECK(std::abs(loss - losses[size_t(step)]) <= 1e-4 * std::abs(losses[size_t(step)]));
      CHECK(std::abs(norm - grad_norms[size_t(step)]) <= 1e-3 * grad_norms[size_t(step)]);
      optimizer.step(model.params(), model.grads(), schedule.at(step), sfm::clip_coefficient(norm, clip));
      sfm_losses.push_back(loss);
    }
    CHECK(sfm_losses.back() < sfm_losses.front());
    // The weights after the AdamW steps, tensor by tensor, against torch.optim.AdamW's: a wrong
    // weight-decay mask (LayerNorm weights start at 1 and would move by lr·wd per step) or a wrong
    // bias correction shows here long before it shows in the losses. The key bias (the middle third
    // of attn.qkv.bias) is left out: softmax is invariant to it, so its gradient is exactly zero
    // and only rounding noise, which AdamW's normalised step turns into moves of up to lr per step.
    const auto final_weights = sfm::SafetensorsFile::load(dir / "final_weights.safetensors");
    const WorstTensor worst(model.table(), "vit_mae_final_weights", c.name, [&](const sfm::ParamInfo& p) {
      const auto ref = final_weights.tensor_as<float>(p.name);
      REQUIRE(ref.shape() == p.shape);
      const auto mine = model.param(p.name);
      const bool qkv_bias = p.name.ends_with("attn.qkv.bias");
      const size_t third = mine.size() / 3;
      double diff = 0;
      for (size_t i = 0; i < mine.size(); ++i)
        if (!qkv_bias || i < third || i >= 2 * third) diff = std::max(diff, std::abs(double(mine[i]) - ref.span()[i]));
      return diff;
    });
    INFO("worst tensor " << worst.tensor);
    CHECK(worst.value <= 2e-5);
  }
}

}  // namespace

TEST_CASE("VitMae<Cpu> matches the PyTorch reference on tiny (batch 2)") { check_case({"tiny", "tiny", 2}); }

TEST_CASE("VitMae<Cpu> matches the PyTorch reference on small (batch 2)") { check_case({"small", "small", 2}); }

TEST_CASE("VitMae<Cpu> matches the PyTorch reference on a non-cubic crop and patch (batch 3)") {
  check_case({"noncube",
              R"({"model":{"crop":[16,32,24],"patch":[4,8,6],"dim":48,"depth":2,"heads":4,"decoder_dim":32,)"
              R"("decoder_depth":1,"decoder_heads":2,"mlp_ratio":4,"mask_ratio":0.75,"norm_pix_loss":true}})",
              3});
}
