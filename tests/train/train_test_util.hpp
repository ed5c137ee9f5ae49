// Shared by the trainer tests: a small synthetic-data config, fresh output directories, and the
// losses a run wrote to metrics.jsonl.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sfm/train/config.hpp"

namespace sfm::test {

inline std::filesystem::path train_tmp(const std::string& name) {
  const char* base = std::getenv("SFM_TEST_TMP");
  return std::filesystem::path(base ? base : "/tmp") / ("train-" + name);
}

// `tiny`, synthetic volume, every step logged; `patch` is merged over it.
inline TrainConfig small_run(const std::string& dir, const nlohmann::json& patch = nlohmann::json::object()) {
  nlohmann::json j = default_train_json();
  merge_train_json(j, nlohmann::json::parse(R"({
    "data": {"source": "synthetic", "shape": [40, 40, 48], "threads": 2, "prefetch": 4},
    "train": {"batch": 8, "micro_batch": 4, "steps": 6, "lr": 0.05, "warmup_steps": 2},
    "parallel": {"dp": 1, "zero": 2},
    "output": {"log_every": 1, "checkpoint_every": 3, "images_every": 0, "overwrite": true}
  })"));
  j["output"]["dir"] = dir;
  merge_train_json(j, patch);
  return parse_train_config(j);
}

inline std::vector<double> logged_losses(const std::filesystem::path& dir) {
  std::vector<double> losses;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) losses.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return losses;
}

}  // namespace sfm::test
