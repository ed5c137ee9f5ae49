// Model checkpoints: model.safetensors with the public MAE names (the names PyTorch's MAE
// state_dict uses, so `load_state_dict(strict=True)` accepts it), float32, and the model config as
// a JSON string {"model": {...}} under __metadata__["config"]. Loading is strict the other way too: every tensor the
// model has must be present with its exact shape, and no unknown tensor may be.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/safetensors.hpp"
#include "sfm/core/tensor.hpp"
#include "sfm/model/config.hpp"
#include "sfm/model/vit_mae.hpp"

namespace sfm {

// The (name, shape, values) of everything a checkpoint holds: parameters, then the fixed
// positional embeddings (buffers in PyTorch, but part of its state_dict).
template <class Backend>
std::vector<SafetensorsEntry> model_tensors(VitMae<Backend>& model) {
  const ModelConfig& c = model.config();
  std::vector<SafetensorsEntry> entries;
  for (const ParamInfo& p : model.table().entries())
    entries.push_back({p.name, DType::f32, p.shape, model.params().data() + p.offset});
  entries.push_back({"pos_embed", DType::f32, {1, c.tokens() + 1, c.dim}, model.pos_embed().data()});
  entries.push_back(
      {"decoder_pos_embed", DType::f32, {1, c.tokens() + 1, c.decoder_dim}, model.decoder_pos_embed().data()});
  return entries;
}

template <class Backend>
void save_model(const std::filesystem::path& path, VitMae<Backend>& model) {
  write_safetensors(path, model_tensors(model),
                    {{"config", nlohmann::json{{"model", to_json(model.config())}}.dump()}, {"format", "sfm-vit-mae"}});
}

// The model config stored in a checkpoint's metadata.
inline ModelConfig checkpoint_config(const SafetensorsFile& file, const std::string& source) {
  const auto found = file.metadata().find("config");
  SFM_CHECK(found != file.metadata().end(), source, ": no model config in __metadata__ (pass one with --config)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(found->second);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": __metadata__[\"config\"] is not valid JSON: ", e.what());
  }
  return model_config_from_json(j.contains("model") ? j.at("model") : j);
}

// Copies the checkpoint's tensors into the model (strict: same names, same shapes).
template <class Backend>
void load_model_weights(VitMae<Backend>& model, const SafetensorsFile& file, const std::string& source) {
  std::set<std::string> expected;
  for (const SafetensorsEntry& e : model_tensors(model)) {
    expected.insert(e.name);
    SFM_CHECK(file.contains(e.name), source, ": missing tensor '", e.name, "'");
    const Tensor<float> values = file.tensor_as<float>(e.name);
    SFM_CHECK(values.shape() == e.shape, source, ": tensor '", e.name, "' has shape ", shape_string(values.shape()),
              ", the model expects ", shape_string(e.shape));
    std::copy(values.span().begin(), values.span().end(), static_cast<float*>(const_cast<void*>(e.data)));
  }
  for (const std::string& name : file.names())
    SFM_CHECK(expected.count(name), source, ": unexpected tensor '", name, "' (not part of this model)");
}

}  // namespace sfm
