// ModelConfig: the shape of a ViT-MAE (crop, patch, encoder and decoder widths/depths/heads, mask
// ratio, loss), the named configs of DESIGN.md, and its JSON form; and Recompute, the run-time
// choice of blocks that recompute their activations (not part of the shape: checkpoints ignore it).
//
// JSON accepts either a name — {"model": "tiny"} — or the full object
// {"model": {"crop": [z,y,x], "patch": [pz,py,px], "dim", "depth", "heads", "decoder_dim",
// "decoder_depth", "decoder_heads", "mlp_ratio", "mask_ratio", "norm_pix_loss"}}. Unknown keys,
// wrong types and inconsistent shapes are sfm::Errors naming the key.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/kernels/patch_grid.hpp"

namespace sfm {

struct ModelConfig {
  std::string name = "custom";
  std::array<int64_t, 3> crop{};
  std::array<int64_t, 3> patch{};
  int64_t dim = 0, depth = 0, heads = 0;
  int64_t decoder_dim = 0, decoder_depth = 0, decoder_heads = 0;
  int64_t mlp_ratio = 4;
  double mask_ratio = 0.75;
  bool norm_pix_loss = true;

  PatchGrid grid() const { return {crop, patch}; }
  int64_t tokens() const { return grid().tokens(); }
  int64_t patch_size() const { return grid().patch_size(); }
  // MAE's len_keep = int(N · (1 − mask_ratio)), in double as Python computes it.
  int64_t default_len_keep() const { return int64_t(double(tokens()) * (1.0 - mask_ratio)); }

  void validate() const {
    for (int i = 0; i < 3; ++i) {
      SFM_CHECK(patch[i] > 0 && crop[i] > 0, "model config: crop and patch must be positive (axis ", i, ")");
      SFM_CHECK(crop[i] % patch[i] == 0, "model config: patch ", patch[i], " does not divide crop ", crop[i],
                " on axis ", i);
    }
    SFM_CHECK(dim > 0 && depth > 0 && heads > 0, "model config: dim, depth and heads must be positive");
    SFM_CHECK(decoder_dim > 0 && decoder_depth > 0 && decoder_heads > 0,
              "model config: decoder_dim, decoder_depth and decoder_heads must be positive");
    SFM_CHECK(dim % heads == 0, "model config: dim ", dim, " is not divisible by heads ", heads);
    SFM_CHECK(decoder_dim % decoder_heads == 0, "model config: decoder_dim ", decoder_dim,
              " is not divisible by decoder_heads ", decoder_heads);
    SFM_CHECK(dim % 2 == 0 && decoder_dim % 2 == 0, "model config: dim and decoder_dim must be even (sin-cos embedding)");
    SFM_CHECK(mlp_ratio > 0, "model config: mlp_ratio must be positive");
    SFM_CHECK(mask_ratio >= 0 && mask_ratio < 1, "model config: mask_ratio must be in [0, 1)");
    SFM_CHECK(default_len_keep() >= 1, "model config: mask_ratio ", mask_ratio, " leaves no visible token of ", tokens());
    SFM_CHECK(default_len_keep() < tokens(), "model config: mask_ratio ", mask_ratio, " leaves no hidden token of ",
              tokens(), " (the loss is over hidden tokens)");
    SFM_CHECK(!norm_pix_loss || patch_size() > 1, "model config: norm_pix_loss needs patches of more than one voxel");
  }
};

// The named configs of DESIGN.md.
inline ModelConfig named_model_config(const std::string& name) {
  auto make = [&](std::array<int64_t, 3> crop, int64_t p, int64_t d, int64_t depth, int64_t h, int64_t dd,
                  int64_t ddepth, int64_t dh) {
    ModelConfig c;
    c.name = name;
    c.crop = crop;
    c.patch = {p, p, p};
    c.dim = d, c.depth = depth, c.heads = h;
    c.decoder_dim = dd, c.decoder_depth = ddepth, c.decoder_heads = dh;
    return c;
  };
  if (name == "tiny") return make({32, 32, 32}, 8, 64, 2, 4, 32, 1, 4);
  if (name == "small") return make({64, 64, 64}, 8, 192, 4, 3, 128, 2, 4);
  if (name == "base") return make({128, 128, 128}, 16, 768, 12, 12, 512, 8, 16);
  if (name == "long") return make({256, 256, 512}, 16, 768, 12, 12, 512, 8, 16);
  if (name == "seed") return make({640, 640, 1024}, 16, 768, 12, 12, 512, 8, 16);
  fail("unknown model config '", name, "' (known: tiny, small, base, long, seed)");
}

inline nlohmann::json to_json(const ModelConfig& c) {
  return {{"name", c.name},          {"crop", c.crop},
          {"patch", c.patch},        {"dim", c.dim},
          {"depth", c.depth},        {"heads", c.heads},
          {"decoder_dim", c.decoder_dim}, {"decoder_depth", c.decoder_depth},
          {"decoder_heads", c.decoder_heads}, {"mlp_ratio", c.mlp_ratio},
          {"mask_ratio", c.mask_ratio}, {"norm_pix_loss", c.norm_pix_loss}};
}

namespace config_detail {
template <class T>
T get(const nlohmann::json& j, const char* key) {
  SFM_CHECK(j.contains(key), "model config: missing key '", key, "'");
  return json_value<T>(j.at(key), std::string("model config: ") + key);
}
}  // namespace config_detail

// Activation recomputation (gradient checkpointing): the first `encoder` blocks of the encoder and
// the first `decoder` blocks of the decoder keep only their input (the residual stream, which the
// next block needs anyway); their internals go to one scratch set per stack and are recomputed from
// that input in the backward (model/activations.hpp, model/vit_mae.hpp). A count per stack rather
// than a list or a stride: blocks of a stack all cost the same, so only how many matters, and the
// two stacks differ (the decoder's rows are every token, the encoder's the visible ones). k
// recomputed blocks of a stack save k − 1 blocks' internals (the scratch holds one) for k − 1 extra
// block forwards (the last of them to run still has its internals in the scratch at its backward).
struct Recompute {
  int64_t encoder = 0, decoder = 0;

  static Recompute all(const ModelConfig& c) { return {c.depth, c.decoder_depth}; }
  void validate(const ModelConfig& c) const {
    SFM_CHECK(encoder >= 0 && encoder <= c.depth, "recompute: ", encoder, " encoder blocks, the model has ", c.depth);
    SFM_CHECK(decoder >= 0 && decoder <= c.decoder_depth, "recompute: ", decoder, " decoder blocks, the model has ",
              c.decoder_depth);
  }
  bool operator==(const Recompute&) const = default;
};

// "none", "all", or {"encoder": blocks, "decoder": blocks} (a missing count is 0), checked against `c`.
inline Recompute recompute_from_json(const nlohmann::json& j, const ModelConfig& c) {
  Recompute r;
  if (j == "all") {
    r = Recompute::all(c);
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      SFM_CHECK(key == "encoder" || key == "decoder", "recompute: unknown key '", key, "' (known: encoder, decoder)");
      SFM_CHECK(value.is_number_integer(), "recompute: ", key, ": expected a number of blocks, got ", value.dump());
      (key == "encoder" ? r.encoder : r.decoder) = value.get<int64_t>();
    }
  } else {
    SFM_CHECK(j == "none", "recompute: expected \"none\", \"all\" or {\"encoder\": blocks, \"decoder\": blocks}, got ",
              j.dump());
  }
  r.validate(c);
  return r;
}

// Parses the value of "model": a name or a full object.
inline ModelConfig model_config_from_json(const nlohmann::json& j) {
  using config_detail::get;
  if (j.is_string()) return named_model_config(j.get<std::string>());
  SFM_CHECK(j.is_object(), "model config: expected a name or an object, got ", j.type_name());
  static const char* known[] = {"name", "crop", "patch", "dim", "depth", "heads", "decoder_dim", "decoder_depth",
                                "decoder_heads", "mlp_ratio", "mask_ratio", "norm_pix_loss"};
  for (const auto& item : j.items()) {
    bool found = false;
    for (const char* k : known) found = found || item.key() == k;
    SFM_CHECK(found, "model config: unknown key '", item.key(), "'");
  }
  ModelConfig c;
  if (j.contains("name")) c.name = get<std::string>(j, "name");
  c.crop = get<std::array<int64_t, 3>>(j, "crop");
  c.patch = get<std::array<int64_t, 3>>(j, "patch");
  c.dim = get<int64_t>(j, "dim");
  c.depth = get<int64_t>(j, "depth");
  c.heads = get<int64_t>(j, "heads");
  c.decoder_dim = get<int64_t>(j, "decoder_dim");
  c.decoder_depth = get<int64_t>(j, "decoder_depth");
  c.decoder_heads = get<int64_t>(j, "decoder_heads");
  if (j.contains("mlp_ratio")) c.mlp_ratio = get<int64_t>(j, "mlp_ratio");
  if (j.contains("mask_ratio")) c.mask_ratio = get<double>(j, "mask_ratio");
  if (j.contains("norm_pix_loss")) c.norm_pix_loss = get<bool>(j, "norm_pix_loss");
  c.validate();
  return c;
}

}  // namespace sfm
