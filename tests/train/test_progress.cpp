// train/progress.hpp: the progress line and metrics.jsonl records for given reports, against
// lines written out by hand from the documented format (printf rounding, h:mm:ss / m:ss ETA),
// the edge cases of an empty window and a finished run, and metrics.jsonl's trim on resume.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "sfm/train/progress.hpp"
#include "sfm_test.hpp"

namespace {

// Mid-run: 50 of 200 steps, half a second of data wait in a 2 s window, 3,725 s (1 h 2 min 5 s) to go.
sfm::StepReport mid_run() {
  sfm::StepReport r;
  r.step = 50, r.total = 200;
  r.loss = 0.123456, r.lr = 1.5e-4, r.grad_norm = 0.75, r.mask_ratio = 0.75;
  r.samples_per_s = 12.34, r.tokens_per_s = 6318.08;
  r.data_wait_s = 0.5, r.window_s = 2.0;
  r.elapsed_s = 1241.7, r.eta_s = 3725;
  return r;
}

std::vector<std::string> lines_of(std::istream& in) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// What a (non-terminal) console received.
std::string contents(std::FILE* file) {
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text += char(c);
  return text;
}

}  // namespace

TEST_CASE("progress_line formats step, loss, lr, rates, data-wait share and ETA") {
  // loss to 4 decimals, lr as %.2e, samples/s to 1 decimal, tokens/s whole, wait 0.5 / 2 s = 25 %.
  CHECK(sfm::progress_line(mid_run()) ==
        "step 50/200 | loss 0.1235 | lr 1.50e-04 | 12.3 samples/s | 6318 tokens/s | data-wait 25.0% | ETA 1:02:05");
}

TEST_CASE("progress_line edge cases: nothing measured yet, and the run done") {
  // Step 0 with an empty window: no division by the zero window (0 %, not nan).
  sfm::StepReport start;
  start.total = 10;
  CHECK(sfm::progress_line(start) ==
        "step 0/10 | loss 0.0000 | lr 0.00e+00 | 0.0 samples/s | 0 tokens/s | data-wait 0.0% | ETA 0:00");
  // done == total: nothing left, ETA 0:00.
  sfm::StepReport done = mid_run();
  done.step = done.total = 200;
  done.eta_s = 0;
  CHECK(sfm::progress_line(done) ==
        "step 200/200 | loss 0.1235 | lr 1.50e-04 | 12.3 samples/s | 6318 tokens/s | data-wait 25.0% | ETA 0:00");
}

TEST_CASE("format_duration rounds to whole seconds: m:ss below an hour, h:mm:ss from one") {
  CHECK(sfm::format_duration(0) == "0:00");
  CHECK(sfm::format_duration(59.4) == "0:59");
  CHECK(sfm::format_duration(59.5) == "1:00");
  CHECK(sfm::format_duration(605) == "10:05");
  CHECK(sfm::format_duration(3599.4) == "59:59");
  CHECK(sfm::format_duration(3599.5) == "1:00:00");
  CHECK(sfm::format_duration(25 * 3600 + 61) == "25:01:01");  // hours do not wrap at a day
}

TEST_CASE("to_json: the record metrics.jsonl holds, data_wait_pct guarded against an empty window") {
  const nlohmann::json j = sfm::to_json(mid_run());
  CHECK(j.at("step") == 50);
  CHECK(j.at("loss").get<double>() == 0.123456);
  CHECK(j.at("lr").get<double>() == 1.5e-4);
  CHECK(j.at("grad_norm").get<double>() == 0.75);
  CHECK(j.at("samples_per_s").get<double>() == 12.34);
  CHECK(j.at("tokens_per_s").get<double>() == 6318.08);
  CHECK(j.at("data_wait_s").get<double>() == 0.5);
  CHECK(j.at("data_wait_pct").get<double>() == 25.0);
  CHECK(j.at("mask_ratio").get<double>() == 0.75);
  CHECK(j.at("elapsed_s").get<double>() == 1241.7);
  CHECK(j.at("skipped_steps") == 0);
  CHECK(sfm::to_json(sfm::StepReport{}).at("data_wait_pct").get<double>() == 0.0);
}

TEST_CASE("ProgressLog: one record per report, the console line, and the trim on resume") {
  const auto dir = sfm::test::scratch_dir("progress-log");
  {  // A run of 5 steps killed while writing a sixth record.
    std::ofstream out(dir / "metrics.jsonl");
    for (int step = 1; step <= 5; ++step) out << nlohmann::json{{"step", step}, {"loss", 1.0 / step}}.dump() << "\n";
    out << R"({"step": 6, "lo)";
  }
  std::FILE* console = std::tmpfile();
  REQUIRE(console != nullptr);
  {  // Resumed from checkpoint 3: records 4, 5 and the torn line go; the new step 4 follows.
    sfm::ProgressLog log(dir, 3, console);
    sfm::StepReport r = mid_run();
    r.step = 4;
    log.report(r);
    log.note("a note");
    log.finish();
    std::ifstream in(dir / "metrics.jsonl");
    const std::vector<std::string> lines = lines_of(in);
    REQUIRE(lines.size() == 4);
    for (int i = 0; i < 4; ++i) CHECK(nlohmann::json::parse(lines[size_t(i)]).at("step") == i + 1);
    CHECK(nlohmann::json::parse(lines[1]).at("loss").get<double>() == 0.5);  // kept as written
    CHECK(nlohmann::json::parse(lines[3]) == sfm::to_json(r));
    // Not a terminal: one plain line per report and per note, no carriage returns.
    CHECK(contents(console) == sfm::progress_line(r) + "\na note\n");
  }
  std::fclose(console);
  {  // keep_through 0: a new run starts an empty file.
    sfm::ProgressLog log(dir, 0, nullptr);
    std::ifstream in(dir / "metrics.jsonl");
    CHECK(lines_of(in).empty());
  }
}
