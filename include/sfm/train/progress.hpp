// What a training run reports on rank 0: a progress line (step/total, loss, lr, samples/s,
// tokens/s, data-wait %, ETA) — rewritten in place on a terminal, one line per report otherwise —
// and metrics.jsonl, one JSON object per logged step. On resume the records of the steps after the
// checkpoint are dropped, so the file reads like one uninterrupted run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "sfm/core/error.hpp"

namespace sfm {

// The averages over the steps since the previous report.
struct StepReport {
  int64_t step = 0, total = 0;  // completed steps, planned steps
  double loss = 0, lr = 0, grad_norm = 0, mask_ratio = 0;
  double samples_per_s = 0, tokens_per_s = 0;
  double data_wait_s = 0;  // summed over the window (the slowest rank's per step)
  double window_s = 0;     // wall time of the window
  double elapsed_s = 0, eta_s = 0;
  int64_t skipped_steps = 0;  // steps skipped (non-finite loss or gradient norm) since this process started or resumed the run
  int64_t data_skips = 0;     // crop reads skipped (data.on_error skip), all ranks, since this process started or resumed the run
};

inline nlohmann::json to_json(const StepReport& r) {
  return {{"step", r.step},
          {"loss", r.loss},
          {"lr", r.lr},
          {"grad_norm", r.grad_norm},
          {"samples_per_s", r.samples_per_s},
          {"tokens_per_s", r.tokens_per_s},
          {"data_wait_s", r.data_wait_s},
          {"data_wait_pct", r.window_s > 0 ? 100.0 * r.data_wait_s / r.window_s : 0.0},
          {"mask_ratio", r.mask_ratio},
          {"elapsed_s", r.elapsed_s},
          {"skipped_steps", r.skipped_steps},
          {"data_skips", r.data_skips}};
}

inline std::string format_duration(double seconds) {
  const auto s = int64_t(seconds + 0.5);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return text;
}

inline std::string progress_line(const StepReport& r) {
  char text[256];
  std::snprintf(text, sizeof text,
                "step %lld/%lld | loss %.4f | lr %.2e | %.1f samples/s | %.0f tokens/s | data-wait %.1f%% | ETA %s",
                (long long)r.step, (long long)r.total, r.loss, r.lr, r.samples_per_s, r.tokens_per_s,
                r.window_s > 0 ? 100.0 * r.data_wait_s / r.window_s : 0.0, format_duration(r.eta_s).c_str());
  return text;
}

class ProgressLog {
 public:
  // Opens `dir`/metrics.jsonl, keeping only the records of steps <= `keep_through` (0: a new file).
  ProgressLog(const std::filesystem::path& dir, int64_t keep_through, std::FILE* console)
      : console_(console), live_(console != nullptr && ::isatty(::fileno(console))) {
    const auto path = dir / "metrics.jsonl";
    std::vector<std::string> kept;
    if (keep_through > 0) {
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) {
        try {
          if (nlohmann::json::parse(line).at("step").get<int64_t>() <= keep_through) kept.push_back(line);
        } catch (const nlohmann::json::exception&) {  // a torn last line of a killed run
        }
      }
    }
    out_.open(path, std::ios::trunc);
    SFM_CHECK(out_.good(), "cannot write ", path.string());
    for (const std::string& line : kept) out_ << line << "\n";
    out_.flush();
  }

  void report(const StepReport& r) {
    out_ << to_json(r).dump() << "\n" << std::flush;
    if (!console_) return;
    std::fprintf(console_, live_ ? "\r\033[K%s" : "%s\n", progress_line(r).c_str());
    std::fflush(console_);
  }

  // A message on its own line (ends a live progress line first).
  void note(const std::string& text) {
    if (!console_) return;
    std::fprintf(console_, live_ ? "\r\033[K%s\n" : "%s\n", text.c_str());
    std::fflush(console_);
  }

  void finish() {
    if (console_ && live_) std::fputc('\n', console_);
  }

 private:
  std::ofstream out_;
  std::FILE* console_;
  bool live_;
};

}  // namespace sfm
