// VitMae::init_weights against PyTorch's initialisation of the same model (the reference's
// `export`: MAE's initialize_weights under torch.manual_seed): per tensor, the statistics an init
// fixes — xavier-uniform weights (|w| up to sqrt(6 / (fan_in + fan_out)), std bound/√3, mean 0),
// zero biases, LayerNorm weight 1 and bias 0, cls and mask tokens N(0, 0.02²) — and the fixed
// sin-cos positional embeddings, which must be equal. Different RNGs: values differ, statistics not.
#include <cmath>

#include "sfm/core/safetensors.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm_test.hpp"

namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
  bool all_zero = true, all_one = true;
};

Stats stats_of(std::span<const float> v) {
  Stats s;
  for (const float x : v) {
    s.mean += x;
    s.max_abs = std::max(s.max_abs, double(std::abs(x)));
    s.all_zero = s.all_zero && x == 0.0f;
    s.all_one = s.all_one && x == 1.0f;
  }
  s.mean /= double(v.size());
  for (const float x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / double(v.size()));
  return s;
}

}  // namespace

TEST_CASE("init_weights: per-tensor statistics equal PyTorch's MAE initialisation; positional embeddings equal") {
  const std::string name = GENERATE("small", "tiny");
  const auto dir = sfm::test::scratch_dir("vit_mae_init_" + name);
  sfm::test::run_command(sfm::test::reference_command("export --model " + name + " --seed 7 --out " +
                                                      (dir / "torch.safetensors").string()));
  const auto torch = sfm::SafetensorsFile::load(dir / "torch.safetensors");
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config(name));
  model.init_weights(7);

  int64_t checked = 0;
  for (const sfm::ParamInfo& p : model.table().entries()) {
    INFO(name << ": " << p.name << " " << sfm::shape_string(p.shape));
    const auto ref = torch.tensor_as<float>(p.name);
    REQUIRE(ref.shape() == p.shape);
    const Stats ours = stats_of(model.param(p.name)), theirs = stats_of(ref.span());
    const bool norm = p.name.find("norm") != std::string::npos;
    if (p.shape.size() == 1 || p.name.ends_with("bias")) {
      // Biases zero; LayerNorm weights one (both inits say so exactly).
      const bool ones = norm && p.name.ends_with("weight");
      CHECK((ones ? theirs.all_one : theirs.all_zero));
      CHECK((ones ? ours.all_one : ours.all_zero));
    } else if (p.name == "cls_token" || p.name == "mask_token") {
      // N(0, 0.02²) over D values: the sample std within 30 % of 0.02 for both (D ≥ 64).
      CHECK(theirs.std == Approx(0.02).epsilon(0.3));
      CHECK(ours.std == Approx(0.02).epsilon(0.3));
      CHECK(ours.max_abs < 0.02 * 6);
    } else {
      // Xavier uniform over the weight viewed as [out, in]: bound from the shape, the same for both.
      const int64_t out = p.shape[0], in = int64_t(p.numel) / out;
      const double bound = std::sqrt(6.0 / double(in + out));
      CHECK(ours.max_abs <= bound * (1 + 1e-6));
      CHECK(theirs.max_abs <= bound * (1 + 1e-6));
      // The std of U(−b, b) is b/√3; the sample std of n values has a relative error of
      // sqrt(0.2 / n) (uniform kurtosis 1.8): allow six of those, and the max past 95 % of the bound.
      REQUIRE(p.numel >= 1024);
      const double tolerance = 6 * std::sqrt(0.2 / double(p.numel));
      CHECK(ours.std == Approx(theirs.std).epsilon(tolerance));
      CHECK(ours.std == Approx(bound / std::sqrt(3.0)).epsilon(tolerance));
      CHECK(ours.max_abs > 0.95 * bound);
      CHECK(std::abs(ours.mean) < 0.05 * bound);
    }
    ++checked;
  }
  CHECK(checked == int64_t(model.table().entries().size()));

  // The fixed sin-cos positional embeddings: the reference's buffers, value for value.
  for (const auto& [buffer, mine] : {std::pair{"pos_embed", model.pos_embed()},
                                     std::pair{"decoder_pos_embed", model.decoder_pos_embed()}}) {
    const auto ref = torch.tensor_as<float>(buffer);
    REQUIRE(ref.span().size() == mine.size());
    const double diff = sfm::test::max_abs_diff<float, float>(mine, ref.span());
    INFO(buffer << ": max |sfm − PyTorch| " << diff);
    CHECK(diff <= 1e-6);
  }
}
