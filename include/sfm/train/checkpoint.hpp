// Model checkpoints: model.safetensors with the public MAE names (the names PyTorch's MAE
// state_dict uses, so `load_state_dict(strict=True)` accepts it), float32, and the model config as
// a JSON string {"model": {...}} under __metadata__["config"]. Loading is strict the other way too: every tensor the
// model has must be present with its exact shape and finite values, and no unknown tensor may be.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/core/safetensors.hpp"
#include "sfm/core/tensor.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/model/config.hpp"
#include "sfm/model/vit_mae.hpp"

namespace sfm {

// Everything a checkpoint holds, as (name, shape, host values): the parameters in the flat layout
// of `table`, then the fixed positional embeddings (buffers in PyTorch, but part of its state_dict).
// Float is float (reading into) or const float (writing from).
template <class Float>
struct CheckpointTensor {
  std::string name;
  Shape shape;
  Float* values;
};

template <class Float>
std::vector<CheckpointTensor<Float>> checkpoint_tensors(const ModelConfig& c, const ParamTable& table,
                                                        std::span<Float> params, std::span<Float> pos_embed,
                                                        std::span<Float> decoder_pos_embed) {
  const int64_t rows = c.tokens() + 1;
  SFM_CHECK(int64_t(params.size()) == table.size() && int64_t(pos_embed.size()) == rows * c.dim &&
                int64_t(decoder_pos_embed.size()) == rows * c.decoder_dim,
            "checkpoint: buffers do not match the model's layout");
  std::vector<CheckpointTensor<Float>> tensors;
  for (const ParamInfo& p : table.entries()) tensors.push_back({p.name, p.shape, params.data() + p.offset});
  tensors.push_back({"pos_embed", {1, rows, c.dim}, pos_embed.data()});
  tensors.push_back({"decoder_pos_embed", {1, rows, c.decoder_dim}, decoder_pos_embed.data()});
  return tensors;
}

inline std::vector<SafetensorsEntry> checkpoint_entries(const ModelConfig& c, const ParamTable& table,
                                                        std::span<const float> params,
                                                        std::span<const float> pos_embed,
                                                        std::span<const float> decoder_pos_embed) {
  std::vector<SafetensorsEntry> entries;
  for (const auto& t : checkpoint_tensors(c, table, params, pos_embed, decoder_pos_embed))
    entries.push_back({t.name, DType::f32, t.shape, t.values});
  return entries;
}

inline std::map<std::string, std::string> checkpoint_metadata(const ModelConfig& c) {
  return {{"config", nlohmann::json{{"model", to_json(c)}}.dump()}, {"format", "sfm-vit-mae"}};
}

// Writes model.safetensors for full host parameters (e.g. gathered from a ZeRO optimizer).
inline void save_model(const std::filesystem::path& path, const ModelConfig& c, const ParamTable& table,
                       std::span<const float> params, std::span<const float> pos_embed,
                       std::span<const float> decoder_pos_embed) {
  write_safetensors(path, checkpoint_entries(c, table, params, pos_embed, decoder_pos_embed), checkpoint_metadata(c));
}

template <KernelBackend Backend, Precision Prec>
void save_model(const std::filesystem::path& path, VitMae<Backend, Prec>& model) {
  const std::vector<float> params = model.params_to_host();
  save_model(path, model.config(), model.table(), params, model.pos_embed(), model.decoder_pos_embed());
}

// The model config stored in a checkpoint's metadata.
inline ModelConfig checkpoint_config(const SafetensorsFile& file, const std::string& source) {
  const auto found = file.metadata().find("config");
  SFM_CHECK(found != file.metadata().end(), source, ": no model config in __metadata__ (pass one with --config)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(found->second);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": __metadata__[\"config\"] is not valid JSON: ", json_error_text(e));
  }
  return model_config_from_json(j.contains("model") ? j.at("model") : j);
}

// Refuses NaN and ±inf: "`what` holds a non-finite value (nan at element i)".
inline void check_finite(std::span<const float> values, const std::string& what) {
  const auto bad = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  SFM_CHECK(bad == values.end(), what, " holds a non-finite value (", *bad, " at element ", bad - values.begin(), ")");
}

// The checkpoint's tensors as host arrays in the model's layout (strict: same names, same shapes).
struct CheckpointTensors {
  std::vector<float> params, pos_embed, decoder_pos_embed;
};

inline CheckpointTensors read_checkpoint_tensors(const SafetensorsFile& file, const ModelConfig& c,
                                                 const ParamTable& table, const std::string& source) {
  const int64_t rows = c.tokens() + 1;
  CheckpointTensors t{std::vector<float>(size_t(table.size())), std::vector<float>(size_t(rows * c.dim)),
                      std::vector<float>(size_t(rows * c.decoder_dim))};
  std::set<std::string> expected;
  for (const auto& e : checkpoint_tensors<float>(c, table, t.params, t.pos_embed, t.decoder_pos_embed)) {
    expected.insert(e.name);
    SFM_CHECK(file.contains(e.name), source, ": missing tensor '", e.name, "'");
    const Tensor<float> values = file.tensor_as<float>(e.name);
    SFM_CHECK(values.shape() == e.shape, source, ": tensor '", e.name, "' has shape ", shape_string(values.shape()),
              ", the model expects ", shape_string(e.shape));
    check_finite(values.span(), source + ": tensor '" + e.name + "'");
    std::copy(values.span().begin(), values.span().end(), e.values);
  }
  for (const std::string& name : file.names())
    SFM_CHECK(expected.count(name), source, ": unexpected tensor '", name, "' (not part of this model)");
  return t;
}

// Loads a checkpoint into a model with resident parameters.
template <KernelBackend Backend, Precision Prec>
void load_model_weights(VitMae<Backend, Prec>& model, const SafetensorsFile& file, const std::string& source) {
  CheckpointTensors t = read_checkpoint_tensors(file, model.config(), model.table(), source);
  model.params_from_host(t.params);
  model.set_pos_embeds(std::move(t.pos_embed), std::move(t.decoder_pos_embed));
}

}  // namespace sfm
