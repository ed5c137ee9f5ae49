// Who owns an output folder. A run writes only into a folder that is its own, so no run ever
// overwrites or prunes another's work:
//   - a new run takes an absent or empty folder; one that holds anything (a run's checkpoints, a
//     run that died before its first checkpoint, a user's files) needs output.overwrite, and then
//     the old run's files are deleted before the new run writes (other files stay);
//   - a resumed run writes into the folder it was resumed from (an output directory, or the parent
//     of a checkpoint-N/), never into the output.dir stored in the checkpoint, and refuses that
//     folder when its `latest` checkpoint belongs to another run (the "run" id of trainer.json).
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/train/run_checkpoint.hpp"

namespace sfm {

namespace run_folder_detail {

namespace fs = std::filesystem;

// Files of a run in its folder: checkpoints (and their leftovers), `latest`, the metrics (JSON
// lines and TensorBoard events), the config and the preview images.
inline bool is_run_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return (name.starts_with("checkpoint-") && name.size() > 11 && name[11] >= '0' && name[11] <= '9') ||
         name == "latest" || name == "metrics.jsonl" || name == "config.json" || name.starts_with("events.out.tfevents.");
}

inline bool is_preview(const fs::path& path) {
  const std::string name = path.filename().string(), ext = path.extension().string();
  return name.starts_with("step-") && (ext == ".png" || ext == ".pgm");
}

}  // namespace run_folder_detail

// The output folder a resumed run writes into: `resume` itself, or the folder around a checkpoint-N/.
inline std::filesystem::path resumed_run_folder(std::filesystem::path resume) {
  if (!resume.has_filename()) resume = resume.parent_path();  // "runs/tiny/"
  const auto checkpoint = resolve_run_checkpoint(resume);
  if (checkpoint != resume) return resume;
  return resume.has_parent_path() ? resume.parent_path() : std::filesystem::path(".");
}

// A fresh run id: 16 hex digits.
inline std::string new_run_id() {
  std::random_device device;
  const uint64_t id = (uint64_t(device()) << 32) ^ uint64_t(device());
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)id);
  return text;
}

// Checks that a new run may write into `dir` (see the top of this file).
inline void check_new_run_folder(const std::filesystem::path& dir, bool overwrite) {
  namespace fs = std::filesystem;
  if (overwrite || !fs::exists(dir)) return;
  SFM_CHECK(fs::is_directory(dir), "output.dir ", dir.string(), " is a file, not a folder");
  SFM_CHECK(!has_run_checkpoints(dir), "output.dir ", dir.string(), " already holds a run; continue it with --resume ",
            dir.string(), ", pick another output.dir, or set output.overwrite=true");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string listed;
  for (size_t i = 0; i < names.size() && i < 3; ++i) listed += (i ? ", " : "") + names[i];
  if (names.size() > 3) listed += ", …";
  SFM_CHECK(names.empty(), "output.dir ", dir.string(), " is not empty (", listed, "); pick another output.dir, or ",
            "set output.overwrite=true to replace a run's files there");
}

// output.overwrite: deletes the files of the run `dir` held, so that pruning and `latest` see only
// the new run's checkpoints. Anything else in `dir` stays.
inline void clear_previous_run(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  using namespace run_folder_detail;
  if (!fs::is_directory(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir))
    if (is_run_file(entry.path())) fs::remove_all(entry.path());
  if (!fs::is_directory(dir / "images")) return;
  for (const auto& entry : fs::directory_iterator(dir / "images"))
    if (is_preview(entry.path())) fs::remove(entry.path());
}

// Refuses to resume the checkpoint of run `run` into `dir` when dir's `latest` is another run's (a
// `latest` naming no complete checkpoint says nothing: the next save replaces it).
inline void check_resumed_run_folder(const std::filesystem::path& dir, const std::string& run) {
  if (run.empty() || !std::filesystem::exists(dir / "latest")) return;
  const auto latest = dir / latest_checkpoint_name(dir);
  if (!std::filesystem::exists(latest / "trainer.json")) return;
  const std::string held = read_trainer_json(latest).value("run", std::string());
  SFM_CHECK(held.empty() || held == run, "--resume: ", dir.string(), " holds another run (run ", held,
            ", the checkpoint is of run ", run, "); resume a run from its own folder");
}

}  // namespace sfm
