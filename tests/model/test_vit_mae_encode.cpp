// VitMae::encode (every token visible, no decoder) against the PyTorch reference's forward_encoder at
// mask ratio 0 on the same checkpoint and volumes: the final-norm token features, cls dropped, in
// grid order, to fp32 tolerance; the bf16 model against the fp32 one; and encode beside training
// (a forward after it is unchanged, a backward after it is refused).
#include "sfm/core/npy.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm_test.hpp"

namespace {

std::vector<float> random_volumes(const sfm::ModelConfig& c, int64_t batch, uint64_t seed) {
  std::vector<float> volume(size_t(batch * c.grid().voxels()));
  sfm::Rng(seed, 0).fill_normal(volume, 0.0f, 1.0f);
  return volume;
}

// The reference's features [B, N, D] of `checkpoint` on `volume` (written to dir as .npy).
std::vector<float> reference_features(const std::filesystem::path& dir, const std::filesystem::path& checkpoint,
                                      const std::vector<float>& volume, const sfm::ModelConfig& c, int64_t batch) {
  sfm::write_npy(dir / "volume.npy", volume.data(), {batch, c.crop[0], c.crop[1], c.crop[2]});
  sfm::test::run_command(sfm::test::reference_command("encode --checkpoint " + checkpoint.string() + " --volume " +
                                                      (dir / "volume.npy").string() + " --out " +
                                                      (dir / "features.npy").string() + " > /dev/null"));
  const sfm::Tensor<float> features = sfm::read_npy_as<float>(dir / "features.npy");
  REQUIRE(features.shape() == sfm::Shape{batch, c.tokens(), c.dim});
  return {features.span().begin(), features.span().end()};
}

}  // namespace

TEST_CASE("encode equals the PyTorch encoder's final-norm features with every token visible") {
  const std::string name = GENERATE("tiny", "small");
  const int64_t batch = 2;
  const auto dir = sfm::test::scratch_dir(std::string("vit_mae_encode_") + name);
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config(name));
  model.init_weights(21);
  const sfm::ModelConfig& c = model.config();
  sfm::save_model(dir / "model.safetensors", model);
  const std::vector<float> volume = random_volumes(c, batch, 4);

  std::vector<float> ours(size_t(batch * c.tokens() * c.dim));
  model.encode(volume.data(), batch, ours);
  const std::vector<float> theirs = reference_features(dir, dir / "model.safetensors", volume, c, batch);
  const double diff = sfm::test::max_abs_diff<float, float>(ours, theirs);
  const double scale = sfm::test::max_abs<float>(theirs);
  INFO(name << ": max |sfm − PyTorch| " << diff << " of max |feature| " << scale);
  CHECK(scale > 0.5);  // LayerNorm outputs: order 1, not a degenerate all-zero answer
  CHECK(diff <= 1e-5 * scale);  // fp32: 3.3e-6 of 4.0 (tiny) and 5.5 (small) measured

  // A sample's features do not depend on the others in its batch.
  std::vector<float> alone(size_t(c.tokens() * c.dim));
  model.encode(volume.data() + c.grid().voxels(), 1, alone);
  CHECK(sfm::test::max_abs_diff<float, float>(alone, std::span<const float>(ours).subspan(alone.size())) <= 1e-5 * scale);
}

TEST_CASE("encode in bf16 mixed precision follows the fp32 features") {
  sfm::VitMae<sfm::Cpu> fp32(sfm::named_model_config("small"));
  fp32.init_weights(3);
  sfm::VitMae<sfm::Cpu, sfm::Bf16Mixed> bf16(fp32.config());
  bf16.params_from_host(fp32.params_to_host());
  const sfm::ModelConfig& c = fp32.config();
  const std::vector<float> volume = random_volumes(c, 2, 8);
  std::vector<float> a(size_t(2 * c.tokens() * c.dim)), b(a.size());
  fp32.encode(volume.data(), 2, a);
  bf16.encode(volume.data(), 2, b);
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  const double cosine = dot / std::sqrt(na * nb);
  const double diff = sfm::test::max_abs_diff<float, float>(a, b);
  INFO("cosine(bf16, fp32) = " << cosine << ", max diff " << diff);
  CHECK(cosine >= 0.9999);
}

TEST_CASE("encode beside training: the loss of a forward after it is unchanged, a backward after it is refused") {
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config("tiny"));
  model.init_weights(1);
  const sfm::ModelConfig& c = model.config();
  const std::vector<float> volume = random_volumes(c, 2, 5);
  const sfm::MaskPlan mask = sfm::mask_from_noise(sfm::mask_noise(2, 0, 0, 2, c.tokens()), 2, c.tokens(), c.default_len_keep());
  const double before = model.forward(volume.data(), mask);
  std::vector<float> features(size_t(2 * c.tokens() * c.dim));
  model.encode(volume.data(), 2, features);
  CHECK_THROWS_WITH(model.backward(), sfm::test::contains("before forward()"));
  CHECK(model.forward(volume.data(), mask) == before);
  CHECK_THROWS_WITH(model.encode(volume.data(), 3, features), sfm::test::contains("feature values for batch 3"));
}
