// Checkpoint interop with PyTorch: an sfm checkpoint loads into the reference with
// load_state_dict(strict=True) and gives the same loss, also one a bf16 model trained; a PyTorch
// state dict loads into sfm. Broken checkpoints are clear errors.
#include <fstream>
#include <nlohmann/json.hpp>

#include "sfm/core/npy.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm_test.hpp"

namespace {

// Runs the reference's `eval` and returns the loss it prints.
double reference_loss(const std::filesystem::path& dir, const std::string& checkpoint) {
  const auto out = dir / "eval.json";
  sfm::test::run_command(sfm::test::reference_command("eval --checkpoint " + (dir / checkpoint).string() +
                                                      " --volume " + (dir / "volume.npy").string() + " --noise " +
                                                      (dir / "noise.npy").string() + " > " + out.string()));
  std::ifstream in(out);
  return nlohmann::json::parse(in).at("loss").get<double>();
}

struct Inputs {
  std::vector<float> volume;
  std::vector<float> noise;
};

Inputs write_inputs(const std::filesystem::path& dir, const sfm::ModelConfig& c, int64_t batch) {
  Inputs in{std::vector<float>(size_t(batch * c.grid().voxels())), sfm::mask_noise(7, 0, 0, batch, c.tokens())};
  sfm::Rng(11, 0).fill_normal(in.volume, 0.0f, 1.0f);
  sfm::write_npy(dir / "volume.npy", in.volume.data(), {batch, c.crop[0], c.crop[1], c.crop[2]});
  sfm::write_npy(dir / "noise.npy", in.noise.data(), {batch, c.tokens()});
  return in;
}

template <class Prec>
double sfm_loss(sfm::VitMae<sfm::Cpu, Prec>& model, const Inputs& in, int64_t batch) {
  const auto& c = model.config();
  return model.forward(in.volume.data(), sfm::mask_from_noise(in.noise, batch, c.tokens(), c.default_len_keep()));
}

}  // namespace

TEST_CASE("an sfm checkpoint loads into PyTorch (strict) and gives the same loss") {
  const auto dir = sfm::test::scratch_dir("checkpoint_to_torch");
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config("tiny"));
  model.init_weights(5);
  const Inputs in = write_inputs(dir, model.config(), 2);
  sfm::save_model(dir / "model.safetensors", model);
  const double ours = sfm_loss(model, in, 2);
  const double theirs = reference_loss(dir, "model.safetensors");
  INFO("sfm " << ours << ", PyTorch " << theirs);
  CHECK(std::abs(ours - theirs) <= 1e-5 * std::abs(theirs));

  // Reloading our own checkpoint (config from its metadata) reproduces the loss exactly.
  const auto file = sfm::SafetensorsFile::load(dir / "model.safetensors");
  sfm::VitMae<sfm::Cpu> reloaded(sfm::checkpoint_config(file, "model.safetensors"));
  sfm::load_model_weights(reloaded, file, "model.safetensors");
  CHECK(sfm_loss(reloaded, in, 2) == ours);
}

TEST_CASE("a bf16 model's checkpoint holds its fp32 master weights and loads into PyTorch (strict)") {
  const auto dir = sfm::test::scratch_dir("checkpoint_bf16_to_torch");
  sfm::VitMae<sfm::Cpu, sfm::Bf16Mixed> model(sfm::named_model_config("tiny"));
  model.init_weights(5);
  const Inputs in = write_inputs(dir, model.config(), 2);
  sfm::AdamW<sfm::Cpu> optimizer(model.table(), sfm::AdamWConfig{});
  for (int step = 0; step < 3; ++step) {  // trained in bf16, so the weights are not the init's
    model.zero_grad();
    sfm_loss(model, in, 2);
    model.backward();
    optimizer.step(model.params(), model.grads(), 1e-3, sfm::clip_coefficient(std::sqrt(sfm::squared_norm(model.grads())), 1.0));
  }
  sfm::save_model(dir / "model.safetensors", model);
  const auto file = sfm::SafetensorsFile::load(dir / "model.safetensors");
  sfm::VitMae<sfm::Cpu> fp32(sfm::checkpoint_config(file, "model.safetensors"));
  sfm::load_model_weights(fp32, file, "model.safetensors");
  const std::vector<float> master = model.params_to_host(), loaded = fp32.params_to_host();
  CHECK(master == loaded);  // the fp32 master, not the bf16 compute copy
  const double ours = sfm_loss(fp32, in, 2), theirs = reference_loss(dir, "model.safetensors");
  INFO("sfm fp32 " << ours << ", PyTorch " << theirs);
  CHECK(std::abs(ours - theirs) <= 1e-5 * std::abs(theirs));
}

TEST_CASE("a PyTorch state dict saved as safetensors loads into sfm") {
  const auto dir = sfm::test::scratch_dir("checkpoint_from_torch");
  sfm::test::run_command(sfm::test::reference_command("export --model small --seed 4 --out " +
                                                      (dir / "torch.safetensors").string()));
  const auto file = sfm::SafetensorsFile::load(dir / "torch.safetensors");
  sfm::VitMae<sfm::Cpu> model(sfm::checkpoint_config(file, "torch.safetensors"));
  REQUIRE(model.config().dim == 192);
  sfm::load_model_weights(model, file, "torch.safetensors");
  const Inputs in = write_inputs(dir, model.config(), 1);
  const double ours = sfm_loss(model, in, 1);
  const double theirs = reference_loss(dir, "torch.safetensors");
  INFO("sfm " << ours << ", PyTorch " << theirs);
  CHECK(std::abs(ours - theirs) <= 1e-5 * std::abs(theirs));
}

TEST_CASE("broken checkpoints are clear errors") {
  const auto dir = sfm::test::scratch_dir("checkpoint_broken");
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config("tiny"));
  model.init_weights(1);
  sfm::save_model(dir / "model.safetensors", model);

  SECTION("truncated") {
    const auto size = std::filesystem::file_size(dir / "model.safetensors");
    std::filesystem::resize_file(dir / "model.safetensors", size - 100);
    CHECK_THROWS_AS(sfm::SafetensorsFile::load(dir / "model.safetensors"), sfm::Error);
  }
  SECTION("a checkpoint of another model") {
    sfm::VitMae<sfm::Cpu> other(sfm::named_model_config("small"));
    const auto file = sfm::SafetensorsFile::load(dir / "model.safetensors");
    CHECK_THROWS_WITH(sfm::load_model_weights(other, file, "model.safetensors"),
                      sfm::test::contains("has shape") || sfm::test::contains("missing tensor"));
  }
  SECTION("a missing tensor") {
    const auto params = model.params_to_host();
    auto entries =
        sfm::checkpoint_entries(model.config(), model.table(), params, model.pos_embed(), model.decoder_pos_embed());
    entries.erase(entries.begin() + 3);
    sfm::write_safetensors(dir / "partial.safetensors", entries);
    const auto file = sfm::SafetensorsFile::load(dir / "partial.safetensors");
    CHECK_THROWS_WITH(sfm::load_model_weights(model, file, "partial.safetensors"), sfm::test::contains("missing tensor"));
  }
  SECTION("no config in the metadata") {
    const auto params = model.params_to_host();
    sfm::write_safetensors(dir / "bare.safetensors", sfm::checkpoint_entries(model.config(), model.table(), params,
                                                                             model.pos_embed(), model.decoder_pos_embed()));
    const auto file = sfm::SafetensorsFile::load(dir / "bare.safetensors");
    CHECK_THROWS_WITH(sfm::checkpoint_config(file, "bare.safetensors"), sfm::test::contains("no model config"));
  }
}
