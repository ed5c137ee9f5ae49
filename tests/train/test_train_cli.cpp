// `sfm train` as users run it: every kind of bad input is one clear error line with exit status 2
// and leaves an existing run untouched; SIGTERM writes a checkpoint and exits cleanly; `sfm eval
// --data` and `sfm bench train` print JSON.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "sfm_test.hpp"
#include "train_test_util.hpp"

using sfm::test::train_tmp;

namespace {

struct Outcome {
  int status = -1;
  std::string out, err;
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `command` through the shell, capturing stdout and stderr.
Outcome run(const std::string& command) {
  const auto out_path = train_tmp("cli") / "stdout.txt", err_path = train_tmp("cli") / "stderr.txt";
  const int raw = std::system((command + " >" + out_path.string() + " 2>" + err_path.string()).c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_text(out_path), read_text(err_path)};
}

std::string write_config(const std::string& name, const std::string& text) {
  const auto path = train_tmp("cli") / name;
  std::ofstream(path) << text;
  return path.string();
}

const std::string cli = SFM_CLI;

}  // namespace

TEST_CASE("bad input: one error line, exit status 2, nothing overwritten") {
  std::filesystem::remove_all(train_tmp("cli"));
  std::filesystem::create_directories(train_tmp("cli"));
  const std::string run_dir = (train_tmp("cli") / "run").string();
  const std::string good = R"({"model": "tiny", "data": {"source": "synthetic", "shape": [40, 40, 48]},
    "train": {"batch": 4, "micro_batch": 4, "steps": 2}, "output": {"dir": ")" + run_dir + R"(", "images_every": 0}})";
  REQUIRE(run(cli + " train " + write_config("good.json", good)).status == 0);
  const auto stamp = std::filesystem::last_write_time(std::filesystem::path(run_dir) / "checkpoint-2" / "model.safetensors");

  // Overwriting is allowed (except in its own case), so each error must come before any write.
  auto with = [&](const std::string& set) {
    return cli + " train " + write_config("good.json", good) + " --set output.overwrite=true " + set;
  };
  const std::vector<std::pair<std::string, std::string>> cases{
      {cli + " train " + write_config("bad.json", "{\"model\": \"tiny\",,}"), "invalid JSON"},
      {with("--set train.bacth=3"), "unknown key 'train.bacth'"},
      {with("--set train.steps='\"many\"'"), "train.steps: expected an integer"},
      {with("--set data.source=zarr --set data.url=http://127.0.0.1:9/none.mdio"), "cannot open the volume"},
      {with("--set data.shape=[40,20,48]"), "larger than the volume"},
      {with("--set data.shape=[40,40,4]"), "smaller than one patch"},
      {with("--set parallel.dp=2 --set train.micro_batch=2"), "1 process(es) were launched"},
      {with("--set output.overwrite=false"), "already holds a run"},
  };
  for (const auto& [command, expected] : cases) {
    INFO(command);
    const Outcome o = run("SFM_HTTP_MAX_ATTEMPTS=1 " + command);
    CHECK(o.status == 2);
    CHECK(o.err.find(expected) != std::string::npos);
    CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
    INFO(o.err);
  }
  CHECK(std::filesystem::last_write_time(std::filesystem::path(run_dir) / "checkpoint-2" / "model.safetensors") == stamp);
  // The CUDA backend (in a directory of its own): it trains on a GPU machine; without a GPU (or a
  // CUDA build) one error line, status 2.
  const Outcome gpu = run(with("--set backend=cuda --set output.dir=" + (train_tmp("cli") / "cuda").string()));
  INFO("sfm train --set backend=cuda: status " << gpu.status << ", stderr " << gpu.err);
  if (gpu.status != 0)
    CHECK((gpu.status == 2 && gpu.err.find("backend cuda: ") != std::string::npos &&
           std::count(gpu.err.begin(), gpu.err.end(), '\n') == 1));

  // Under mpiexec: P = 2 but dp × cp = 1 — still one line from sfm (rank 0), status 2.
  const Outcome mpi = run(std::string(SFM_MPIEXEC) + " -n 2 --oversubscribe " + with(""));
  INFO("mpiexec stderr: " << mpi.err);
  CHECK(mpi.status == 2);
  CHECK(mpi.err.find("parallel.dp × parallel.cp = 1 × 1 = 1 ranks, but 2 process(es)") != std::string::npos);
  CHECK(mpi.err.find("sfm train: error") == mpi.err.rfind("sfm train: error"));
}

TEST_CASE("SIGTERM writes a checkpoint and exits cleanly; eval --data and bench print JSON") {
  const std::string run_dir = (train_tmp("cli") / "sigterm").string();
  std::filesystem::remove_all(run_dir);
  const std::string config = write_config("long.json", R"({"model": "tiny", "data": {"source": "synthetic"},
    "train": {"batch": 8, "micro_batch": 8, "steps": 100000}, "output": {"dir": ")" + run_dir +
                                                              R"(", "log_every": 1, "images_every": 0}})");
  const pid_t child = ::fork();
  if (child == 0) {
    ::freopen("/dev/null", "w", stderr);
    ::execl(cli.c_str(), cli.c_str(), "train", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto metrics = std::filesystem::path(run_dir) / "metrics.jsonl";
  for (int i = 0; i < 600 && sfm::test::logged_losses(run_dir).size() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream latest(std::filesystem::path(run_dir) / "latest");
  std::string name;
  latest >> name;
  CHECK(name.starts_with("checkpoint-"));

  const std::string volume = (train_tmp("cli") / "v.mdio").string();
  REQUIRE(run(cli + " synth --out " + volume + " --shape 40,40,48").status == 0);
  CHECK(run(cli + " eval --checkpoint " + run_dir + " --data " + volume + " --crops 4").status == 0);
  const Outcome missing = run(cli + " eval --checkpoint " + run_dir + " --data " + volume + "-missing");
  CHECK(missing.status == 2);
  CHECK(missing.err.find("cannot open the volume") != std::string::npos);
  const Outcome bench = run(cli + " bench train --config tiny --steps 2 --batch 2");
  REQUIRE(bench.status == 0);
  const nlohmann::json timing = nlohmann::json::parse(bench.out);
  CHECK(timing.at("backend") == "cpu");
  CHECK(timing.at("samples_per_s").get<double>() > 0);
  CHECK(timing.at("step_ms").get<double>() > 0);
  // The CUDA backend: JSON on a GPU machine; without a GPU (or a CUDA build) one error line, status 2.
  const Outcome gpu = run(cli + " bench train --backend cuda --config tiny --steps 1 --batch 2");
  INFO("sfm bench train --backend cuda: status " << gpu.status << ", stderr " << gpu.err);
  if (gpu.status == 0) CHECK(nlohmann::json::parse(gpu.out).at("backend") == "cuda");
  else CHECK((gpu.status == 2 && gpu.err.find("CUDA") != std::string::npos));
}
