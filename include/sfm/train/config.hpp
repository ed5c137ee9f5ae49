// TrainConfig: the `sfm train` configuration (docs/training.md), from JSON merged over defaults.
//
// Unknown keys and values of the wrong type are sfm::Errors that name the key path; `--set
// a.b=value` overrides go through the same checks. Every choice is checked here, once, and carried
// as a type from then on (BackendKind, PrecisionKind, ZeroLevel, AttentionKind, MaskKind, ReadErrorPolicy). Cross-field checks that
// need the world size or the data (P = dp × cp, crop inside the volume) happen where those are known
// (train/trainer.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/core/memory.hpp"
#include "sfm/data/crop.hpp"
#include "sfm/data/normalize.hpp"
#include "sfm/data/read_error_policy.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/precision.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/config.hpp"
#include "sfm/parallel/attention_kind.hpp"
#include "sfm/parallel/zero_stage.hpp"

namespace sfm {

struct TrainConfig {
  nlohmann::json json;  // the effective configuration (defaults merged with the user's)
  ModelConfig model;
  // data
  std::string source;             // "zarr" or "synthetic"
  std::vector<std::string> urls;  // zarr
  std::string variable;           // zarr: array inside a group ("" = the MDIO default)
  Box3 synthetic_shape{};
  uint64_t synthetic_seed = 0;
  CropNormalization normalization;
  bool flip = false;
  double min_live_fraction = 0.5;
  int threads = 4, prefetch = 8;
  int64_t cache_mib = 256;        // zarr: decoded-chunk cache per volume, used when the volume fits in it
  ReadErrorPolicy on_error = ReadErrorPolicy::fail;  // a crop that cannot be read: stop, or redraw it
  double max_skip_fraction = 0.01;  // on_error skip: the most skipped reads per sample drawn before the run stops
  // train
  int64_t batch = 8, micro_batch = 8, steps = 300, warmup_steps = 20;
  int64_t skip_nonfinite = 0;     // steps in a row whose non-finite loss or gradient norm is skipped (0: stop at once)
  double lr = 1.5e-4, min_lr = 0, weight_decay = 0.05, clip_grad = 1.0;
  uint64_t seed = 0;
  Recompute recompute;
  PrecisionKind precision = PrecisionKind::fp32;  // train.precision; null in the JSON: bf16 on cuda, fp32 on cpu
  // parallel
  int dp = 1, cp = 1;
  ZeroLevel zero = ZeroStage<2>{};
  AttentionKind attention = AttentionKind::ring;
  MaskKind mask = MaskKind::adaptive;
  bool overlap = true;
  double timeout_s = 600;  // the longest a rank waits for a collective (MpiComm::set_timeout); 0: no limit
  BackendKind backend = BackendKind::cpu;
  // output
  std::string dir;
  int64_t log_every = 10, checkpoint_every = 100, images_every = 100, keep_checkpoints = 3;
  bool overwrite = false;
  bool tensorboard = true;  // TensorBoard event files beside metrics.jsonl (train/tensorboard.hpp)
};

// The most samples one optimizer step may take (train.batch): far beyond any run's (MAE trains at
// 4096), so a larger value is a typo or a step that would never end.
inline constexpr int64_t max_train_batch = int64_t(1) << 20;

inline nlohmann::json default_train_json() {
  return nlohmann::json::parse(R"({
    "model": "tiny",
    "data": {"source": "zarr", "url": null, "variable": null, "normalize": "robust", "clip_percentile": 0.5,
             "flip": true, "min_live_fraction": 0.5, "threads": 4, "prefetch": 8, "cache_mib": 256,
             "on_error": "fail", "max_skip_fraction": 0.01, "shape": [64, 64, 128], "seed": 0},
    "train": {"batch": 8, "micro_batch": 8, "steps": 300, "lr": 1.5e-4, "min_lr": 0.0, "warmup_steps": 20,
              "weight_decay": 0.05, "clip_grad": 1.0, "seed": 0, "recompute": "none",
              "skip_nonfinite": 0, "precision": null},
    "parallel": {"dp": 1, "cp": 1, "zero": 2, "attention": "ring", "mask": "adaptive", "overlap": true,
                 "timeout_s": 600},
    "backend": "cpu",
    "output": {"dir": "runs/tiny", "log_every": 10, "checkpoint_every": 100, "images_every": 100,
               "keep_checkpoints": 3, "overwrite": false, "tensorboard": true}
  })");
}

namespace train_config_detail {

using nlohmann::json;

// Keys whose value may be of another JSON type than the default's (checked when read).
inline bool free_form(const std::string& path) {
  return path == "model" || path == "data.url" || path == "data.variable" || path == "train.recompute" ||
         path == "train.precision";
}

inline void merge(json& base, const json& patch, const std::string& where) {
  SFM_CHECK(patch.is_object(), "config", where.empty() ? "" : ": " + where, ": expected an object, got ",
            patch.type_name());
  for (const auto& [key, value] : patch.items()) {
    const std::string path = where.empty() ? key : where + "." + key;
    SFM_CHECK(base.contains(key), "config: unknown key '", path, "'");
    if (base[key].is_object() && !free_form(path))
      merge(base[key], value, path);
    else
      base[key] = value;
  }
}

// An effective config holds every key of the defaults (merge_train_json), so `at` cannot miss.
template <class T>
T get(const json& root, const std::string& section, const std::string& key) {
  return json_value<T>(root.at(section).at(key), "config: " + section + "." + key);
}

}  // namespace train_config_detail

// Merges `patch` (a user's config or an override) into `config`, refusing unknown keys.
inline void merge_train_json(nlohmann::json& config, const nlohmann::json& patch) {
  train_config_detail::merge(config, patch, "");
}

// Applies `--set a.b.c=value`: the value is parsed as JSON when it is JSON, else taken as a string.
inline void apply_train_override(nlohmann::json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  SFM_CHECK(eq != std::string::npos && eq > 0, "--set expects key.path=value, got '", assignment, "'");
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(assignment.substr(eq + 1));
  } catch (const nlohmann::json::exception&) {
    value = assignment.substr(eq + 1);
  }
  std::string path = assignment.substr(0, eq);
  for (size_t dot; (dot = path.rfind('.')) != std::string::npos; path.resize(dot))
    value = nlohmann::json{{path.substr(dot + 1), value}};
  merge_train_json(config, nlohmann::json{{path, value}});
}

// Reads and checks every field of an effective (merged) configuration.
inline TrainConfig parse_train_config(const nlohmann::json& j) {
  using train_config_detail::get;
  TrainConfig c;
  c.json = j;
  try {
    c.model = model_config_from_json(j.at("model"));
  } catch (const Error& e) {
    fail("config: ", e.what());
  }
  c.source = get<std::string>(j, "data", "source");
  SFM_CHECK(c.source == "zarr" || c.source == "synthetic", "config: data.source: '", c.source,
            "' is not a source (known: zarr, synthetic)");
  const auto& url = j["data"]["url"];
  if (url.is_string()) {
    c.urls = {url.get<std::string>()};
  } else if (url.is_array()) {
    for (const auto& u : url) {
      SFM_CHECK(u.is_string(), "config: data.url: expected a string or a list of strings, got ", url.dump());
      c.urls.push_back(u.get<std::string>());
    }
  } else {
    SFM_CHECK(url.is_null(), "config: data.url: expected a string or a list of strings, got ", url.dump());
  }
  SFM_CHECK(c.source != "zarr" || !c.urls.empty(), "config: data.url: required for data.source \"zarr\" (a local path, ",
            "file://, http(s):// or s3:// URL of an MDIO dataset or a 3D Zarr array)");
  const auto& variable = j["data"]["variable"];
  SFM_CHECK(variable.is_null() || variable.is_string(), "config: data.variable: expected a string or null, got ",
            variable.dump());
  if (variable.is_string()) c.variable = variable.get<std::string>();
  c.synthetic_shape = get<Box3>(j, "data", "shape");
  c.synthetic_seed = get<uint64_t>(j, "data", "seed");
  try {
    c.normalization.kind = normalization_kind_from_string(get<std::string>(j, "data", "normalize"));
  } catch (const Error& e) {
    fail("config: data.normalize: ", e.what());
  }
  c.normalization.clip_percentile = get<double>(j, "data", "clip_percentile");
  SFM_CHECK(c.normalization.clip_percentile >= 0 && c.normalization.clip_percentile < 50,
            "config: data.clip_percentile must be in [0, 50)");
  c.flip = get<bool>(j, "data", "flip");
  c.min_live_fraction = get<double>(j, "data", "min_live_fraction");
  SFM_CHECK(c.min_live_fraction >= 0 && c.min_live_fraction <= 1, "config: data.min_live_fraction must be in [0, 1], got ",
            c.min_live_fraction);
  c.threads = get<int>(j, "data", "threads");
  c.prefetch = get<int>(j, "data", "prefetch");
  SFM_CHECK(c.threads >= 1 && c.prefetch >= 1, "config: data.threads and data.prefetch must be at least 1");
  c.cache_mib = get<int64_t>(j, "data", "cache_mib");
  SFM_CHECK(c.cache_mib >= 0 && c.cache_mib <= (int64_t(1) << 30), "config: data.cache_mib must be between 0 and 2^30, got ",
            c.cache_mib);
  c.on_error = parse_read_error_policy(get<std::string>(j, "data", "on_error"), "config: data.on_error");
  c.max_skip_fraction = get<double>(j, "data", "max_skip_fraction");
  SFM_CHECK(c.max_skip_fraction >= 0 && c.max_skip_fraction <= 1, "config: data.max_skip_fraction must be in [0, 1], got ",
            c.max_skip_fraction);

  c.batch = get<int64_t>(j, "train", "batch");
  c.micro_batch = get<int64_t>(j, "train", "micro_batch");
  c.steps = get<int64_t>(j, "train", "steps");
  c.warmup_steps = get<int64_t>(j, "train", "warmup_steps");
  c.lr = get<double>(j, "train", "lr");
  c.min_lr = get<double>(j, "train", "min_lr");
  c.weight_decay = get<double>(j, "train", "weight_decay");
  c.clip_grad = get<double>(j, "train", "clip_grad");
  c.seed = get<uint64_t>(j, "train", "seed");
  c.skip_nonfinite = get<int64_t>(j, "train", "skip_nonfinite");
  SFM_CHECK(c.batch >= 1 && c.micro_batch >= 1 && c.steps >= 1, "config: train.batch, train.micro_batch and ",
            "train.steps must be positive");
  SFM_CHECK(c.skip_nonfinite >= 0, "config: train.skip_nonfinite must be >= 0 (0: stop at the first non-finite step)");
  // The loader holds prefetch + 1 micro-batches of crops: they must fit in this machine's memory.
  check_fits_in_memory(bytes_of(std::array{c.micro_batch, c.model.crop[0], c.model.crop[1], c.model.crop[2]},
                                sizeof(float) * uint64_t(c.prefetch + 1)),
                       "config: train.micro_batch " + std::to_string(c.micro_batch) + " (the loader's " +
                           std::to_string(c.prefetch + 1) + " micro-batches of " + extents_string(c.model.crop) +
                           " float32 crops)");
  SFM_CHECK(c.batch <= max_train_batch, "config: train.batch ", c.batch, " is more than ", max_train_batch,
            " samples per step (the most sfm accepts: a typo, or a run that would never finish a step)");
  SFM_CHECK(c.warmup_steps >= 0 && c.lr > 0, "config: train.warmup_steps must be >= 0 and train.lr > 0");
  try {
    c.recompute = recompute_from_json(j.at("train").at("recompute"), c.model);
  } catch (const Error& e) {
    fail("config: train.", e.what());
  }

  c.dp = get<int>(j, "parallel", "dp");
  c.cp = get<int>(j, "parallel", "cp");
  c.zero = ZeroLevel::parse(get<int>(j, "parallel", "zero"), "config: parallel.zero");
  c.attention = parse_attention_kind(get<std::string>(j, "parallel", "attention"), "config: parallel.attention");
  c.mask = parse_mask_kind(get<std::string>(j, "parallel", "mask"), "config: parallel.mask");
  c.overlap = get<bool>(j, "parallel", "overlap");
  c.timeout_s = get<double>(j, "parallel", "timeout_s");
  SFM_CHECK(c.timeout_s >= 0 && std::isfinite(c.timeout_s), "config: parallel.timeout_s must be >= 0 seconds (0: no ",
            "limit), got ", c.timeout_s);
  SFM_CHECK(c.dp >= 1 && c.cp >= 1, "config: parallel.dp and parallel.cp must be at least 1");
  SFM_CHECK(c.attention != AttentionKind::local || c.cp == 1, "config: parallel.attention: 'local' keeps each ",
            "sequence on one rank, so it needs parallel.cp = 1 (got ", c.cp, "); use ring or all_gather");
  SFM_CHECK(c.batch % (int64_t(c.dp) * c.micro_batch) == 0, "config: train.batch ", c.batch,
            " is not a multiple of parallel.dp × train.micro_batch = ", c.dp, " × ", c.micro_batch,
            " (gradient accumulation steps = batch / (dp × micro_batch) must be whole)");
  SFM_CHECK(j.at("backend").is_string(), "config: backend: expected a string, got ", j.at("backend").dump());
  c.backend = parse_backend_kind(j.at("backend").get<std::string>(), "config: backend");
  SFM_CHECK(c.cp == 1 || c.backend == BackendKind::cpu, "config: parallel.cp = ", c.cp, " with backend \"cuda\": ",
            "context parallelism (", attention_kind_name(c.attention), " attention) is not wired to NCCL yet; use ",
            "parallel.cp = 1 (dp and ZeRO work on the GPU)");
  // train.precision: what the model computes in (fp32 master weights either way); the default is
  // the backend's fast one. The resolved value goes into the effective config (config.json).
  const auto& precision = j.at("train").at("precision");
  SFM_CHECK(precision.is_null() || precision.is_string(), "config: train.precision: expected \"fp32\", \"bf16\" or ",
            "null (the backend's default), got ", precision.dump());
  c.precision = precision.is_null() ? (c.backend == BackendKind::cuda ? PrecisionKind::bf16 : PrecisionKind::fp32)
                                    : parse_precision_kind(precision.get<std::string>(), "config: train.precision");
  c.json["train"]["precision"] = precision_name(c.precision);
  SFM_CHECK(c.cp == 1 || c.precision == PrecisionKind::fp32, "config: train.precision bf16 with parallel.cp = ", c.cp,
            ": context parallelism runs in fp32 only for now; set train.precision to fp32");

  c.dir = get<std::string>(j, "output", "dir");
  SFM_CHECK(!c.dir.empty(), "config: output.dir must not be empty");
  c.log_every = get<int64_t>(j, "output", "log_every");
  c.checkpoint_every = get<int64_t>(j, "output", "checkpoint_every");
  c.images_every = get<int64_t>(j, "output", "images_every");
  c.keep_checkpoints = get<int64_t>(j, "output", "keep_checkpoints");
  c.overwrite = get<bool>(j, "output", "overwrite");
  c.tensorboard = get<bool>(j, "output", "tensorboard");
  SFM_CHECK(c.log_every >= 1 && c.keep_checkpoints >= 1, "config: output.log_every and output.keep_checkpoints ",
            "must be at least 1");
  return c;
}

}  // namespace sfm
