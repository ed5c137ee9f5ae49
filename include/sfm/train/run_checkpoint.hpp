// Training checkpoints: everything a run needs to continue exactly, at any world size.
//
//   OUTPUT/checkpoint-<step>/model.safetensors      the model (train/checkpoint.hpp: MAE names, config)
//   OUTPUT/checkpoint-<step>/optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name>; metadata "steps"
//   OUTPUT/checkpoint-<step>/trainer.json           {"step", "run", "samples_seen", "data", "world", "config"}
//   OUTPUT/latest                                   the name of the newest complete checkpoint
//
// A checkpoint is written into `checkpoint-<step>.partial-<pid>/`, each file synced, then renamed
// into place, and only then does `latest` (replaced atomically) point at it: a process killed at any
// moment leaves the previous checkpoint and `latest` intact. The newest `keep` checkpoints are kept.
// The optimizer state is the unsharded one (FullOptimizerState), so any world size can load it.
// "run" is the id a new run draws and its resumed parts keep (train/run_folder.hpp). Loading
// validates everything (trainer.json's fields, every tensor's name, shape and finiteness, the
// optimizer's step count) before the caller writes anything.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/file_io.hpp"
#include "sfm/core/safetensors.hpp"
#include "sfm/parallel/zero.hpp"
#include "sfm/train/checkpoint.hpp"

namespace sfm {

struct RunCheckpoint {
  std::filesystem::path dir;
  nlohmann::json trainer;  // trainer.json, validated: "step" >= 1, "config" an object with a "train" object
  FullOptimizerState state;

  int64_t step() const { return trainer.at("step").get<int64_t>(); }
  std::string run() const { return trainer.value("run", std::string()); }  // "" in checkpoints older than run ids
};

namespace run_checkpoint_detail {

namespace fs = std::filesystem;

inline std::vector<SafetensorsEntry> moment_entries(const ParamTable& table, const FullOptimizerState& s) {
  std::vector<SafetensorsEntry> entries;
  for (const ParamInfo& p : table.entries()) entries.push_back({"exp_avg." + p.name, DType::f32, p.shape, s.exp_avg.data() + p.offset});
  for (const ParamInfo& p : table.entries())
    entries.push_back({"exp_avg_sq." + p.name, DType::f32, p.shape, s.exp_avg_sq.data() + p.offset});
  return entries;
}

inline void write_text(const fs::path& path, const std::string& text) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(text.data()), text.size());
  const std::span<const std::byte> pieces[] = {bytes};
  write_file_atomically(path, pieces);
}

inline std::string read_text(const fs::path& path) {
  const std::vector<std::byte> bytes = read_file(path);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Steps of the complete checkpoints in `out`, ascending.
inline std::vector<int64_t> checkpoint_steps(const fs::path& out) {
  std::vector<int64_t> steps;
  if (!fs::is_directory(out)) return steps;
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !name.starts_with("checkpoint-")) continue;
    const std::string digits = name.substr(11);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    steps.push_back(std::stoll(digits));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

inline fs::path checkpoint_dir(const fs::path& out, int64_t step) { return out / ("checkpoint-" + std::to_string(step)); }

}  // namespace run_checkpoint_detail

// True when `out` already holds a checkpoint or a `latest` pointer.
inline bool has_run_checkpoints(const std::filesystem::path& out) {
  return std::filesystem::exists(out / "latest") || !run_checkpoint_detail::checkpoint_steps(out).empty();
}

// Writes checkpoint-<step> into `out`, points `latest` at it and prunes all but the newest `keep`.
// `trainer` is trainer.json's content without "step" (added here). Returns the checkpoint's path.
inline std::filesystem::path save_run_checkpoint(const std::filesystem::path& out, int64_t step, const ModelConfig& model,
                                                 const ParamTable& table, std::span<const float> pos_embed,
                                                 std::span<const float> decoder_pos_embed,
                                                 const FullOptimizerState& state, nlohmann::json trainer, int64_t keep) {
  namespace fs = std::filesystem;
  using namespace run_checkpoint_detail;
  fs::create_directories(out);
  for (const auto& entry : fs::directory_iterator(out))  // leftovers of a save that was killed
    if (entry.path().filename().string().find(".partial-") != std::string::npos) fs::remove_all(entry.path());
  const fs::path final_dir = checkpoint_dir(out, step);
  const fs::path temp = final_dir.string() + ".partial-" + std::to_string(::getpid());
  fs::create_directories(temp);
  save_model(temp / "model.safetensors", model, table, state.params, pos_embed, decoder_pos_embed);
  write_safetensors(temp / "optimizer.safetensors", moment_entries(table, state),
                    {{"steps", std::to_string(state.steps)}, {"format", "sfm-adamw"}});
  trainer["step"] = step;
  write_text(temp / "trainer.json", trainer.dump(2) + "\n");
  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(temp, final_dir);
  write_text(out / "latest", final_dir.filename().string() + "\n");
  const std::vector<int64_t> steps = checkpoint_steps(out);
  for (size_t i = 0; i + size_t(keep) < steps.size(); ++i)
    if (steps[i] != step) fs::remove_all(checkpoint_dir(out, steps[i]));
  return final_dir;
}

// The checkpoint name `out`/latest holds.
inline std::string latest_checkpoint_name(const std::filesystem::path& out) {
  std::string name = run_checkpoint_detail::read_text(out / "latest");
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name;
}

// The checkpoint `path` names: a checkpoint directory, or an output directory (its `latest`).
inline std::filesystem::path resolve_run_checkpoint(const std::filesystem::path& path) {
  if (std::filesystem::exists(path / "trainer.json")) return path;
  SFM_CHECK(std::filesystem::exists(path / "latest"), "--resume ", path.string(),
            ": neither a checkpoint (no trainer.json) nor an output directory with a 'latest' checkpoint");
  const std::string name = latest_checkpoint_name(path);
  const auto dir = path / name;
  SFM_CHECK(std::filesystem::exists(dir / "trainer.json"), path.string(), "/latest names '", name,
            "', which is not a complete checkpoint");
  return dir;
}

// trainer.json of `dir`, checked: the fields a resume reads, in sfm's words.
inline nlohmann::json read_trainer_json(const std::filesystem::path& dir) {
  using namespace run_checkpoint_detail;
  const std::string where = (dir / "trainer.json").string();
  nlohmann::json t;
  try {
    t = nlohmann::json::parse(read_text(dir / "trainer.json"));
  } catch (const nlohmann::json::exception&) {
    fail(where, ": not valid JSON");
  }
  SFM_CHECK(t.is_object(), where, ": expected a JSON object");
  SFM_CHECK(t.contains("step") && t["step"].is_number_integer() && t["step"].get<int64_t>() >= 1, where,
            ": \"step\" must be a positive integer, got ", t.value("step", nlohmann::json()).dump());
  SFM_CHECK(!t.contains("run") || t["run"].is_string(), where, ": \"run\" must be a string, got ", t["run"].dump());
  // A resume compares the saved train.batch and train.seed with its own (Trainer::check_resumable).
  SFM_CHECK(t.contains("config") && t["config"].is_object() && t["config"].contains("train") &&
                t["config"]["train"].is_object() && t["config"]["train"].contains("batch") &&
                t["config"]["train"].contains("seed"),
            where, ": no \"config\" object with a \"train\" section holding \"batch\" and \"seed\"");
  return t;
}

// Loads a checkpoint for `model`/`table` (strict names and shapes, finite values).
inline RunCheckpoint load_run_checkpoint(const std::filesystem::path& path, const ModelConfig& model,
                                         const ParamTable& table) {
  using namespace run_checkpoint_detail;
  RunCheckpoint c;
  c.dir = resolve_run_checkpoint(path);
  c.trainer = read_trainer_json(c.dir);
  const auto model_file = SafetensorsFile::load(c.dir / "model.safetensors");
  c.state.params = read_checkpoint_tensors(model_file, model, table, (c.dir / "model.safetensors").string()).params;
  const std::string opt_path = (c.dir / "optimizer.safetensors").string();
  const auto opt = SafetensorsFile::load(opt_path);
  c.state.exp_avg.assign(size_t(table.size()), 0.0f);
  c.state.exp_avg_sq.assign(size_t(table.size()), 0.0f);
  for (const ParamInfo& p : table.entries())
    for (auto [prefix, target] : {std::pair{"exp_avg.", &c.state.exp_avg}, std::pair{"exp_avg_sq.", &c.state.exp_avg_sq}}) {
      const std::string name = prefix + p.name;
      SFM_CHECK(opt.contains(name), opt_path, ": missing tensor '", name, "'");
      const Tensor<float> t = opt.tensor_as<float>(name);
      SFM_CHECK(t.shape() == p.shape, opt_path, ": tensor '", name, "' has shape ", shape_string(t.shape()),
                ", the model expects ", shape_string(p.shape));
      check_finite(t.span(), opt_path + ": tensor '" + name + "'");
      std::copy(t.span().begin(), t.span().end(), target->begin() + p.offset);
    }
  const auto steps = opt.metadata().find("steps");
  SFM_CHECK(steps != opt.metadata().end(), opt_path, ": no \"steps\" in __metadata__");
  const std::string& text = steps->second;
  SFM_CHECK(!text.empty() && text.size() < 19 && std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }),
            opt_path, ": __metadata__ \"steps\" must be a non-negative integer, got '", text, "'");
  c.state.steps = std::stoll(text);
  SFM_CHECK(c.state.steps <= c.step(), opt_path, ": ", c.state.steps, " optimizer steps, more than the checkpoint's step ",
            c.step());
  return c;
}

}  // namespace sfm
