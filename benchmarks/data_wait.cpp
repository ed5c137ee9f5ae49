// Does the loader keep up? Trains a model (default `small`) on the CPU for a few steps from a
// synthetic MDIO survey on disk, with the trainer's default data.threads and data.prefetch, logging
// every step, and prints one JSON object: the step time, the data wait per step, and the data-wait
// share of step time over the steady-state steps (all but the first, which waits while the
// pipeline fills) and over all steps. The target is a steady-state share under 5 %; with --check
// the exit status is 1 when it is missed.
//
// The survey is larger than the default data.cache_mib (512³ float32 = 512 MiB against 256 MiB,
// MDIO's 128³ chunks), so the trainer reads it without a chunk cache: every crop decodes from disk.
//
//   bench_data_wait [--model small] [--steps 12] [--batch 8] [--shape 512,512,512]
//                   [--dir build/data-wait] [--set key.path=value ...] [--check]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/comm/serial.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/trainer.hpp"
#include "bench_args.hpp"
#include "synthetic_survey.hpp"

int main(int argc, char** argv) try {
  std::string model = "small", dir = "build/data-wait";
  int64_t steps = 12, batch = 8;
  std::vector<int64_t> shape{512, 512, 512};
  bool check = false;
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--check") {
      check = true;
      continue;
    }
    SFM_CHECK(i + 1 < argc, key, " needs a value");
    const std::string value = argv[++i];
    if (key == "--model") model = value;
    else if (key == "--steps") steps = std::stoll(value);
    else if (key == "--batch") batch = std::stoll(value);
    else if (key == "--shape") shape = sfm::bench::int_list(key, value, 3);
    else if (key == "--dir") dir = value;
    else if (key == "--set") sets.push_back(value);
    else sfm::fail("unknown option ", key);
  }
  SFM_CHECK(steps >= 2, "--steps must be at least 2 (the first step is not steady state)");

  const std::filesystem::path root = std::filesystem::absolute(dir);
  const std::filesystem::path survey = sfm::bench::synthetic_survey(root, shape);

  nlohmann::json j = sfm::default_train_json();
  sfm::merge_train_json(j, {{"model", model},
                            {"data", {{"url", survey.string()}}},
                            {"train", {{"batch", batch}, {"micro_batch", batch}, {"steps", steps}}},
                            {"parallel", {{"dp", 1}, {"cp", 1}}},
                            {"output",
                             {{"dir", (root / "run").string()},
                              {"log_every", 1},
                              {"checkpoint_every", 0},
                              {"images_every", 0},
                              {"overwrite", true}}}});
  for (const std::string& assignment : sets) sfm::apply_train_override(j, assignment);
  const sfm::TrainConfig config = sfm::parse_train_config(j);
  std::filesystem::remove_all(config.dir);
  sfm::SerialComm world;
  sfm::TrainOptions options;
  options.console = nullptr;
  options.handle_signals = false;
  const sfm::TrainResult result = sfm::train<sfm::Cpu>(config, world, options);

  // Per-step records: metrics.jsonl has one per step (log_every 1).
  std::vector<double> step_s, wait_s;
  std::ifstream metrics(std::filesystem::path(config.dir) / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json r = nlohmann::json::parse(line);
    step_s.push_back(double(config.batch) / r.at("samples_per_s").get<double>());
    wait_s.push_back(r.at("data_wait_s").get<double>());
  }
  SFM_CHECK(int64_t(step_s.size()) == steps, "metrics.jsonl holds ", step_s.size(), " records, expected ", steps);
  double steady_step = 0, steady_wait = 0;
  for (size_t i = 1; i < step_s.size(); ++i) steady_step += step_s[i], steady_wait += wait_s[i];
  const double steady_pct = 100.0 * steady_wait / steady_step;
  const bool met = steady_pct < 5.0;
  std::printf("%s\n", nlohmann::json{{"benchmark", "data_wait"},
                                     {"model", model},
                                     {"survey", survey.string()},
                                     {"shape", shape},
                                     {"batch", batch},
                                     {"steps", steps},
                                     {"threads", config.threads},
                                     {"prefetch", config.prefetch},
                                     {"first_step_s", step_s.front()},
                                     {"first_step_wait_s", wait_s.front()},
                                     {"steady_step_s", steady_step / double(steps - 1)},
                                     {"steady_wait_s_per_step", steady_wait / double(steps - 1)},
                                     {"steady_data_wait_pct", steady_pct},
                                     {"all_steps_data_wait_pct", 100.0 * result.data_wait_s / result.seconds},
                                     {"target_pct", 5.0},
                                     {"target_met", met}}
                          .dump(1)
                          .c_str());
  return check && !met ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_data_wait: %s\n", e.what());
  return 2;
}
