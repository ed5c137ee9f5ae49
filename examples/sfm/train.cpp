// `sfm train CONFIG.json [--set key.path=value ...]`: trains a ViT-MAE on the CPU backend and
// writes metrics.jsonl and model.safetensors into output.dir.
//
// Data: random crops of a synthetic seismic volume generated in memory (data.source "synthetic").
// The config schema is documented in docs/training.md; unknown keys are errors.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.hpp"
#include "sfm/data/crop.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/optim/lr_schedule.hpp"
#include "sfm/train/checkpoint.hpp"

namespace sfm::cli {
namespace {

using nlohmann::json;

// The defaults; a config file and --set overrides are merged over them.
json default_config() {
  return json::parse(R"({
    "model": "tiny",
    "data": {"source": "synthetic", "shape": [64, 64, 128], "seed": 0, "normalize": "standard"},
    "train": {"batch": 8, "steps": 300, "lr": 1.5e-4, "warmup_steps": 20, "weight_decay": 0.05,
              "clip_grad": 1.0, "seed": 0},
    "output": {"dir": "runs/tiny", "log_every": 10, "checkpoint_every": 100}
  })");
}

// Merges `patch` into `base`, refusing keys the defaults do not have ("model" may be any value).
void merge_known(json& base, const json& patch, const std::string& where) {
  SFM_CHECK(patch.is_object(), where.empty() ? "config" : where, ": expected an object");
  for (const auto& [key, value] : patch.items()) {
    const std::string path = where.empty() ? key : where + "." + key;
    SFM_CHECK(base.contains(key), "config: unknown key '", path, "'");
    if (base[key].is_object() && key != "model")
      merge_known(base[key], value, path);
    else
      base[key] = value;
  }
}

// --set a.b.c=value: value parsed as JSON when it is JSON, else taken as a string.
void apply_override(json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  SFM_CHECK(eq != std::string::npos && eq > 0, "--set expects key.path=value, got '", assignment, "'");
  json value;
  try {
    value = json::parse(assignment.substr(eq + 1));
  } catch (const json::exception&) {
    value = assignment.substr(eq + 1);
  }
  json patch = value;
  std::string path = assignment.substr(0, eq);
  for (size_t dot; (dot = path.rfind('.')) != std::string::npos; path.resize(dot))
    patch = json{{path.substr(dot + 1), patch}};
  merge_known(config, json{{path, patch}}, "");
}

template <class T>
T get(const json& j, const char* section, const char* key) {
  try {
    return j.at(section).at(key).get<T>();
  } catch (const json::exception& e) {
    fail("config: ", section, ".", key, ": ", e.what());
  }
}

}  // namespace

int run_train(int argc, char** argv) {
  const Args args = parse_args(argc, argv, 2, {"set"});
  SFM_CHECK(args.positional.size() <= 1, "expected one config file, got ", args.positional.size());
  json config = default_config();
  if (!args.positional.empty()) merge_known(config, read_json_file(args.positional[0]), "");
  if (args.has("set"))
    for (const std::string& assignment : args.options.at("set")) apply_override(config, assignment);

  const ModelConfig model_config = model_config_from_json(config.at("model"));
  SFM_CHECK(get<std::string>(config, "data", "source") == "synthetic", "config: data.source: only \"synthetic\" is ",
            "supported by this trainer");
  const auto shape = get<std::array<int64_t, 3>>(config, "data", "shape");
  const auto normalization = crop_normalization_from_string(get<std::string>(config, "data", "normalize"));
  const int64_t batch = get<int64_t>(config, "train", "batch"), steps = get<int64_t>(config, "train", "steps");
  const uint64_t seed = get<uint64_t>(config, "train", "seed");
  const double clip = get<double>(config, "train", "clip_grad");
  SFM_CHECK(batch > 0 && steps > 0, "config: train.batch and train.steps must be positive");
  const LrSchedule schedule{scaled_lr(get<double>(config, "train", "lr"), batch), 0.0,
                            get<int64_t>(config, "train", "warmup_steps"), steps};
  const std::filesystem::path out_dir = get<std::string>(config, "output", "dir");
  const int64_t log_every = std::max<int64_t>(1, get<int64_t>(config, "output", "log_every"));
  const int64_t checkpoint_every = get<int64_t>(config, "output", "checkpoint_every");

  std::fprintf(stderr, "sfm train: model %s (%lld tokens), batch %lld, %lld steps, synthetic volume %lldx%lldx%lld\n",
               model_config.name.c_str(), (long long)model_config.tokens(), (long long)batch, (long long)steps,
               (long long)shape[0], (long long)shape[1], (long long)shape[2]);
  const std::vector<float> volume =
      synthesize_seismic({shape, get<uint64_t>(config, "data", "seed"), 0, 0.12, 0.05});
  VitMae<Cpu> model(model_config);
  model.init_weights(seed);
  AdamW<Cpu> optimizer(model.table(), AdamWConfig{0.9, 0.95, 1e-8, get<double>(config, "train", "weight_decay")});

  std::filesystem::create_directories(out_dir);
  std::ofstream metrics(out_dir / "metrics.jsonl");
  SFM_CHECK(metrics.good(), "cannot write ", (out_dir / "metrics.jsonl").string());
  {
    std::ofstream(out_dir / "config.json") << config.dump(2) << "\n";
  }

  const int64_t crop_voxels = model_config.grid().voxels(), N = model_config.tokens();
  std::vector<float> crops(size_t(batch * crop_voxels));
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto window_start = start;
  double window_data_s = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const auto data_start = clock::now();
    for (int64_t b = 0; b < batch; ++b) {
      std::span<float> crop(crops.data() + b * crop_voxels, size_t(crop_voxels));
      copy_crop(crop, volume, shape, random_crop_origin(seed, uint64_t(step), uint64_t(b), shape, model_config.crop),
                model_config.crop);
      normalize_crop(crop, normalization);
    }
    const MaskPlan mask = mask_from_noise(mask_noise(seed, uint64_t(step), 0, batch, N), batch, N,
                                          RandomMask::len_keep(model_config));
    window_data_s += std::chrono::duration<double>(clock::now() - data_start).count();

    model.zero_grad();
    const double loss = model.forward(crops.data(), mask);
    model.backward();
    const double grad_norm = std::sqrt(squared_norm(model.grads()));
    const double lr = schedule.at(step);
    optimizer.step(model.params(), model.grads(), lr, clip_coefficient(grad_norm, clip));

    const bool last = step + 1 == steps;
    if ((step + 1) % log_every == 0 || step == 0 || last) {
      const auto now = clock::now();
      const int64_t window_steps = step == 0 ? 1 : (step + 1) % log_every == 0 ? log_every : (step + 1) % log_every;
      const double seconds = std::chrono::duration<double>(now - window_start).count();
      const double samples_per_s = double(window_steps * batch) / seconds;
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const json line{{"step", step + 1},           {"loss", loss},
                      {"lr", lr},                   {"grad_norm", grad_norm},
                      {"samples_per_s", samples_per_s}, {"tokens_per_s", samples_per_s * double(N)},
                      {"data_wait_s", window_data_s}, {"mask_ratio", mask.ratio()},
                      {"elapsed_s", elapsed}};
      metrics << line.dump() << "\n" << std::flush;
      std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  %.1f samples/s  data %.1f%%  ETA %.0fs\n",
                   (long long)(step + 1), (long long)steps, loss, lr, samples_per_s,
                   100.0 * window_data_s / seconds, elapsed / double(step + 1) * double(steps - step - 1));
      window_start = now;
      window_data_s = 0;
    }
    if (last || (checkpoint_every > 0 && (step + 1) % checkpoint_every == 0))
      save_model(out_dir / "model.safetensors", model);
  }
  std::fprintf(stderr, "sfm train: wrote %s and %s\n", (out_dir / "model.safetensors").c_str(),
               (out_dir / "metrics.jsonl").c_str());
  return 0;
}

}  // namespace sfm::cli
