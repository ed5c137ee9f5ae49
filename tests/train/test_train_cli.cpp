// `sfm train` as users run it: every kind of bad input is one clear error line with exit status 2
// and leaves an existing run untouched; SIGTERM (and, under mpiexec, SIGUSR1 or Ctrl-C) writes a
// checkpoint and exits cleanly; `sfm eval
// --data` and `sfm bench train` print JSON.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <thread>

#include "io/servers/servers.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/writer.hpp"
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

// Whether the CUDA backend must work here: a GPU the driver lists, and sfm built with the CUDA
// half the command needs (`bench train`: CUDA; `train`: CUDA, NCCL and MPI).
bool gpu_listed() {
  static const bool listed = std::system("nvidia-smi -L 2>/dev/null | grep -q '^GPU '") == 0;
  return listed;
}
#ifdef SFM_TEST_CLI_HAS_CUDA_TRAIN
bool gpu_trains_here() { return gpu_listed(); }
#else
bool gpu_trains_here() { return false; }
#endif
#ifdef SFM_TEST_CLI_HAS_CUDA
bool gpu_benches_here() { return gpu_listed(); }
#else
bool gpu_benches_here() { return false; }
#endif

// A 2-step `tiny` run on a synthetic volume into `dir`, a checkpoint every step.
std::string quick_config(const std::string& name, const std::filesystem::path& dir, const std::string& output = "") {
  return write_config(name, R"({"model": "tiny", "data": {"source": "synthetic", "shape": [40, 40, 48]},
    "train": {"batch": 2, "micro_batch": 2, "steps": 2}, "output": {"dir": ")" + dir.string() +
                                R"(", "images_every": 0, "log_every": 1, "checkpoint_every": 1)" + output + "}}");
}

// The names of the checkpoint directories in `dir`, sorted.
std::vector<std::string> checkpoints(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().starts_with("checkpoint-")) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool one_line(const Outcome& o) { return std::count(o.err.begin(), o.err.end(), '\n') == 1; }

// Exactly one error line (after a run's own progress lines).
bool one_error_line(const Outcome& o) {
  size_t count = 0;
  for (size_t at = o.err.find("error: "); at != std::string::npos; at = o.err.find("error: ", at + 1)) ++count;
  return count == 1 && o.err.ends_with("\n") && o.err.rfind('\n', o.err.size() - 2) < o.err.find("error: ");
}

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
  const sfm::test::ClosedPort closed;  // a volume URL nothing answers at
  auto with = [&](const std::string& set) {
    return cli + " train " + write_config("good.json", good) + " --set output.overwrite=true " + set;
  };
  const std::vector<std::pair<std::string, std::string>> cases{
      {cli + " train " + write_config("bad.json", "{\"model\": \"tiny\",,}"), "invalid JSON"},
      {with("--set train.bacth=3"), "unknown key 'train.bacth'"},
      {with("--set train.steps='\"many\"'"), "train.steps: expected an integer"},
      {with("--set data.source=zarr --set data.url=" + closed.url() + "/none.mdio"), "cannot open the volume"},
      {with("--set data.shape=[40,20,48]"), "larger than the volume"},
      {with("--set data.shape=[40,40,4]"), "smaller than one patch"},
      {with("--set parallel.dp=2 --set train.micro_batch=2"), "1 process(es) were launched"},
      {with("--set output.overwrite=false"), "already holds a run"},
      {with("--set data.min_live_fraction=2.0"), "data.min_live_fraction must be in [0, 1], got 2"},
      {with("--set train.batch=1099511627776 --set train.micro_batch=1099511627776"), "train.micro_batch"},
      {with("--set 'model={\"crop\": [32, 32, 32], \"dim\": 64}'"), "config: model config: missing key 'patch'"},
      {with("--set 'model={\"crop\": [32, 32, 32], \"patch\": [8, 8, 8], \"dim\": \"wide\"}'"),
       "config: model config: dim: expected an integer, got \"wide\""},
  };
  for (const auto& [command, expected] : cases) {
    INFO(command);
    const Outcome o = run("SFM_HTTP_MAX_ATTEMPTS=1 " + command);
    CHECK(o.status == 2);
    CHECK(o.err.find(expected) != std::string::npos);
    CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
    CHECK(o.err.find("json.exception") == std::string::npos);
    INFO(o.err);
  }
  CHECK(std::filesystem::last_write_time(std::filesystem::path(run_dir) / "checkpoint-2" / "model.safetensors") == stamp);
  // The CUDA backend (in a directory of its own): it trains on a GPU machine; without a GPU (or a
  // CUDA build) one error line, status 2.
  const Outcome gpu = run(with("--set backend=cuda --set output.dir=" + (train_tmp("cli") / "cuda").string()));
  INFO("sfm train --set backend=cuda: status " << gpu.status << ", stderr " << gpu.err << "; GPU here: " << gpu_trains_here());
  if (gpu_trains_here()) {
    CHECK(gpu.status == 0);
  } else {
    CHECK(gpu.status == 2);
    CHECK(gpu.err.find("backend cuda: ") != std::string::npos);
    CHECK(std::count(gpu.err.begin(), gpu.err.end(), '\n') == 1);
  }

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
  const std::optional<int> status = sfm::test::reap_within(child, sfm::test::kHangLimit);
  if (!status) FAIL("sfm train was still running " << sfm::test::kHangLimit.count() << " s after SIGTERM (killed)");
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
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
  if (gpu_benches_here()) {
    REQUIRE(gpu.status == 0);
    CHECK(nlohmann::json::parse(gpu.out).at("backend") == "cuda");
  } else {
    CHECK(gpu.status == 2);
    CHECK(gpu.err.find("CUDA") != std::string::npos);
  }
}

TEST_CASE("under mpiexec, SIGUSR1 and Ctrl-C (with the shipped launcher setting) end with a checkpoint of the last step") {
  // Open MPI forwards SIGUSR1 to the ranks at once; on SIGINT it sends them SIGTERM only after
  // odls_base_sigkill_timeout seconds and SIGKILL as long again later (train/stop_signal.hpp).
  struct Case {
    int signal;
    const char* name;
    const char* launcher;
  };
  for (const Case c : {Case{SIGUSR1, "usr1", ""}, Case{SIGINT, "int", "--mca odls_base_sigkill_timeout 3"}}) {
    INFO("signal " << c.name);
    const auto dir = train_tmp("cli") / (std::string("mpirun-") + c.name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(train_tmp("cli"));
    const std::string config = write_config(std::string("mpirun-") + c.name + ".json",
        R"({"model": "small", "data": {"source": "synthetic", "shape": [64, 64, 64]},
            "train": {"batch": 8, "micro_batch": 4, "steps": 100000}, "parallel": {"dp": 2},
            "output": {"dir": ")" + dir.string() + R"(", "log_every": 1, "images_every": 0, "checkpoint_every": 0}})");
    const std::string command = std::string(SFM_MPIEXEC) + " -n 2 --oversubscribe " + c.launcher + " " + cli +
                                " train " + config + " 2>" + (dir.string() + ".err");
    const pid_t child = ::fork();
    if (child == 0) {
      ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1200 && sfm::test::logged_losses(dir).size() < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(sfm::test::logged_losses(dir).size() >= 3);
    ::kill(child, c.signal);
    const std::optional<int> status = sfm::test::reap_within(child, sfm::test::kHangLimit);
    const std::string err = read_text(dir.string() + ".err");
    INFO("stderr: " << err);
    if (!status) FAIL("mpiexec was still running " << sfm::test::kHangLimit.count() << " s after the signal (killed)");
    if (c.signal == SIGUSR1) CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
    // The checkpoint is of the last step whose metrics were logged, and the run says how to go on.
    const size_t logged = sfm::test::logged_losses(dir).size();
    CHECK(checkpoints(dir) == std::vector<std::string>{"checkpoint-" + std::to_string(logged)});
    CHECK(read_text(dir / "latest").starts_with("checkpoint-" + std::to_string(logged)));
    CHECK(err.find("interrupted after step " + std::to_string(logged) + "; continue with --resume") != std::string::npos);
  }
}

TEST_CASE("under mpiexec, a stalled rank ends the job after parallel.timeout_s with one line naming the wait") {
  const auto dir = train_tmp("cli") / "mpirun-stall";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(train_tmp("cli"));
  const std::string config = write_config("mpirun-stall.json",
      R"({"model": "tiny", "data": {"source": "synthetic", "shape": [40, 40, 48]},
          "train": {"batch": 8, "micro_batch": 4, "steps": 100000}, "parallel": {"dp": 2, "timeout_s": 2},
          "output": {"dir": ")" + dir.string() + R"(", "log_every": 1, "images_every": 0, "checkpoint_every": 0}})");
  const pid_t child = ::fork();
  if (child == 0) {
    const std::string command = std::string("exec ") + SFM_MPIEXEC + " -n 2 --oversubscribe " + cli + " train " + config +
                                " 2>" + dir.string() + ".err";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 1200 && sfm::test::logged_losses(dir).size() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(sfm::test::logged_losses(dir).size() >= 3);
  // Stop one rank (a child of mpiexec) as a hung node would; the other must give up on its own.
  const Outcome ranks = run("pgrep -P " + std::to_string(child));
  const pid_t stalled = pid_t(std::stol(ranks.out));
  const auto stopped_at = std::chrono::steady_clock::now();
  ::kill(stalled, SIGSTOP);
  int status = 0;
  for (int i = 0; i < 600 && ::waitpid(child, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  if (::waitpid(child, &status, WNOHANG) == 0 && seconds >= 30) {  // still hanging: clean up, then fail
    ::kill(stalled, SIGKILL);
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  const std::string err = read_text(dir.string() + ".err");
  INFO("stderr: " << err << "; ended " << seconds << " s after the stop");
  CHECK(seconds < 30);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) != 0));
  CHECK(err.find("waited longer than parallel.timeout_s = 2 s for ") != std::string::npos);
}

TEST_CASE("a run's folder is its own: resume writes where it was resumed from, foreign folders are refused") {
  const auto base = train_tmp("cli") / "own";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  const auto a = base / "a", b = base / "b";
  REQUIRE(run(cli + " train " + quick_config("a.json", a)).status == 0);
  std::filesystem::rename(a, b);  // the run moves; another run takes its old folder
  REQUIRE(run(cli + " train " + quick_config("a.json", a)).status == 0);
  const std::string a_config = read_text(a / "config.json"), a_metrics = read_text(a / "metrics.jsonl"),
                    a_latest = read_text(a / "latest");

  const Outcome resumed = run(cli + " train --resume " + b.string() + " --set train.steps=3");
  INFO(resumed.err);
  CHECK(resumed.status == 0);
  CHECK(std::filesystem::exists(b / "checkpoint-3" / "trainer.json"));
  CHECK(read_text(b / "latest") == "checkpoint-3\n");
  CHECK(nlohmann::json::parse(read_text(b / "config.json")).at("output").at("dir") == b.string());
  CHECK(sfm::test::logged_losses(b).size() == 3);
  CHECK(!std::filesystem::exists(a / "checkpoint-3"));
  CHECK(read_text(a / "config.json") == a_config);
  CHECK(read_text(a / "metrics.jsonl") == a_metrics);
  CHECK(read_text(a / "latest") == a_latest);

  // A checkpoint of the other run dropped into b: resuming it would write into b, which holds another run.
  std::filesystem::copy(a / "checkpoint-2", b / "foreign", std::filesystem::copy_options::recursive);
  const std::string b_metrics = read_text(b / "metrics.jsonl");
  const Outcome foreign = run(cli + " train --resume " + (b / "foreign").string() + " --set train.steps=3");
  INFO(foreign.err);
  CHECK(foreign.status == 2);
  CHECK(one_line(foreign));
  CHECK(foreign.err.find("holds another run") != std::string::npos);
  CHECK(read_text(b / "metrics.jsonl") == b_metrics);
  CHECK(read_text(b / "latest") == "checkpoint-3\n");
  CHECK(!std::filesystem::exists(a / "checkpoint-3"));
}

TEST_CASE("a folder holding files is refused unless output.overwrite, which clears the old run first") {
  const auto base = train_tmp("cli") / "reuse";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  // A run that died before its first checkpoint; a folder of the user's own files.
  const auto died = base / "died", mine = base / "mine";
  std::filesystem::create_directories(died);
  std::ofstream(died / "config.json") << "{}\n";
  std::ofstream(died / "metrics.jsonl") << "{\"step\": 1, \"loss\": 1.0}\n";
  std::filesystem::create_directories(mine);
  std::ofstream(mine / "notes.txt") << "mine\n";
  for (const auto& dir : {died, mine}) {
    const Outcome o = run(cli + " train " + quick_config("reuse.json", dir));
    INFO(dir << ": " << o.err);
    CHECK(o.status == 2);
    CHECK(one_line(o));
    CHECK(o.err.find("is not empty") != std::string::npos);
  }
  CHECK(read_text(died / "metrics.jsonl") == "{\"step\": 1, \"loss\": 1.0}\n");
  CHECK(read_text(died / "config.json") == "{}\n");
  REQUIRE(run(cli + " train " + quick_config("reuse.json", mine, R"(, "overwrite": true)")).status == 0);
  CHECK(read_text(mine / "notes.txt") == "mine\n");

  // Overwriting a run with checkpoints 3 and 4: the new run's checkpoints 1 and 2 are all that remain.
  const auto old = base / "old";
  REQUIRE(run(cli + " train " + quick_config("old.json", old, R"(, "keep_checkpoints": 2)") +
              " --set train.steps=4").status == 0);
  REQUIRE(checkpoints(old) == std::vector<std::string>{"checkpoint-3", "checkpoint-4"});
  REQUIRE(run(cli + " train " + quick_config("old.json", old, R"(, "keep_checkpoints": 2, "overwrite": true)")).status == 0);
  CHECK(checkpoints(old) == std::vector<std::string>{"checkpoint-1", "checkpoint-2"});
  CHECK(read_text(old / "latest") == "checkpoint-2\n");
  CHECK(sfm::test::logged_losses(old).size() == 2);
}

TEST_CASE("a tampered checkpoint is refused before anything is written") {
  const auto dir = train_tmp("cli") / "tampered";
  std::filesystem::remove_all(dir);
  REQUIRE(run(cli + " train " + quick_config("tampered.json", dir)).status == 0);
  const std::string metrics = read_text(dir / "metrics.jsonl"), config = read_text(dir / "config.json");
  const auto trainer_path = dir / "checkpoint-2" / "trainer.json";
  const nlohmann::json trainer = nlohmann::json::parse(read_text(trainer_path));
  for (const nlohmann::json& step : {nlohmann::json(-7), nlohmann::json("two"), nlohmann::json(nullptr)}) {
    nlohmann::json tampered = trainer;
    tampered["step"] = step;
    std::ofstream(trainer_path) << tampered.dump(2);
    const Outcome o = run(cli + " train --resume " + dir.string() + " --set train.steps=4");
    INFO(step.dump() << ": " << o.err);
    CHECK(o.status == 2);
    CHECK(one_line(o));
    CHECK(o.err.find("\"step\"") != std::string::npos);
    CHECK(o.err.find("json.exception") == std::string::npos);
    CHECK(read_text(dir / "metrics.jsonl") == metrics);
    CHECK(read_text(dir / "config.json") == config);
  }
}

TEST_CASE("a non-finite loss stops the run at that step, keeping the last good checkpoint") {
  const auto base = train_tmp("cli") / "nonfinite";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  // Amplitudes near the float maximum (normalisation off): the forward overflows. (NaN amplitudes
  // would not do: the crop normalisation sets non-finite values to 0.)
  const std::string huge_volume = (base / "huge.zarr").string();
  sfm::io::zarr::WriteOptions options;
  options.chunks = {40, 40, 48};
  const std::vector<int64_t> shape{40, 40, 48};
  sfm::io::zarr::write_array<float>(sfm::io::open_store(huge_volume), "", shape,
                                    std::vector<float>(40 * 40 * 48, 0.9f * std::numeric_limits<float>::max()), options);
  const auto dir = base / "run";
  REQUIRE(run(cli + " train " + quick_config("nonfinite.json", dir)).status == 0);
  const std::string resume = cli + " train --resume " + dir.string() +
                             " --set train.steps=4 --set data.source=zarr --set data.normalize=none --set data.url=" +
                             huge_volume;
  const Outcome stopped = run(resume);
  INFO(stopped.err);
  CHECK(stopped.status == 2);
  CHECK(one_error_line(stopped));
  CHECK(stopped.err.find("step 3: the loss is ") != std::string::npos);
  CHECK(read_text(dir / "latest") == "checkpoint-2\n");
  CHECK(checkpoints(dir) == std::vector<std::string>{"checkpoint-1", "checkpoint-2"});

  // train.skip_nonfinite = 1: step 3 is skipped (counted; its checkpoint holds step 2's weights), step 4
  // is the second in a row.
  const Outcome skipped = run(resume + " --set train.skip_nonfinite=1");
  INFO(skipped.err);
  CHECK(skipped.status == 2);
  CHECK(one_error_line(skipped));
  CHECK(skipped.err.find("step 4: the loss is ") != std::string::npos);
  CHECK(skipped.err.find("2 steps in a row") != std::string::npos);
  CHECK(read_text(dir / "latest") == "checkpoint-3\n");
  CHECK(!std::filesystem::exists(dir / "checkpoint-4"));
  std::ifstream in(dir / "metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  REQUIRE(records.size() == 3);
  CHECK(records[1].at("skipped_steps") == 0);
  CHECK(records[2].at("step") == 3);
  CHECK(records[2].at("skipped_steps") == 1);
}

TEST_CASE("every subcommand's --help prints its usage and exits 0") {
  for (const std::string command : {"", "train", "eval", "synth", "zarr", "zarr read", "bench", "bench train"}) {
    const Outcome o = run(cli + " " + command + " --help");
    INFO("sfm " << command << " --help: " << o.err);
    CHECK(o.status == 0);
    CHECK(o.out.starts_with("usage: sfm " + (command.empty() ? std::string("<command>") : command.substr(0, command.find(' ')))));
    CHECK(o.err.empty());
  }
}
