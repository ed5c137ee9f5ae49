// `sfm embed` end to end on an MDIO survey with dead traces, whose size is not a multiple of the
// stride: the features against the PyTorch reference encoder run on the same windows and averaged
// per cell by brute force here; NaN exactly where a cell's patch has no live trace; the
// coordinates; zarr-python 3 and xarray reading what sfm reads; mpiexec -n 2 bitwise equal to one
// rank; a run killed with SIGKILL and run again bitwise equal to one uninterrupted run; the
// refusals (existing output, other inputs, a survey smaller than the crop) and the preview image.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "cli_run.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/data/normalize.hpp"
#include "sfm/data/volume.hpp"
#include "sfm/infer/windows.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/zarr/group.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm_test.hpp"

#ifdef SFM_HAVE_PNG
#include <png.h>
#endif

namespace {

namespace fs = std::filesystem;
using sfm::test::contains;

const sfm::Box3 survey_shape{70, 50, 45};  // tiny's crop 32, patch 8: grid 8 × 6 × 5, remainders left out
const std::string stride = "16,16,16";

// The inputs every case shares: a `tiny` checkpoint and an MDIO v1 survey whose trace mask kills
// inline 0–11 × crossline 0–19 (cells (0, 0..1) wholly dead, (1, 0..1) half dead) — written once.
struct Inputs {
  fs::path dir, checkpoint, survey;
  std::vector<uint8_t> live;  // [Z, Y]
};

const Inputs& inputs() {
  static const Inputs made = [] {
    Inputs in;
    in.dir = sfm::test::scratch_dir("cli_embed");
    sfm::VitMae<sfm::Cpu> model(sfm::named_model_config("tiny"));
    model.init_weights(5);
    in.checkpoint = in.dir / "model.safetensors";
    sfm::save_model(in.checkpoint, model);
    std::vector<float> amplitudes(size_t(sfm::box_voxels(survey_shape)));
    sfm::Rng(17, 0).fill_normal(amplitudes, 0.0f, 3.0f);
    in.survey = in.dir / "survey.mdio";
    const std::shared_ptr<sfm::io::Store> store = sfm::io::open_store(in.survey.string());
    sfm::io::mdio::WriteOptions o;
    o.chunks = {32, 32, 32};
    sfm::io::mdio::write_v1(store, "", survey_shape, amplitudes, o);
    in.live.assign(size_t(survey_shape[0] * survey_shape[1]), 1);
    for (int64_t z = 0; z < 12; ++z)
      for (int64_t y = 0; y < 20; ++y) in.live[size_t(z * survey_shape[1] + y)] = 0;
    sfm::io::zarr::WriteOptions m;
    m.dimension_names = {"inline", "crossline"};
    const std::vector<int64_t> trace_shape{survey_shape[0], survey_shape[1]};
    sfm::io::zarr::write_array<uint8_t>(store, "trace_mask", trace_shape, in.live, m,
                                        sfm::io::zarr::DataType{sfm::io::zarr::Kind::Bool, 1, false});
    return in;
  }();
  return made;
}

std::vector<std::string> embed_args(const fs::path& out, const std::vector<std::string>& more = {}) {
  std::vector<std::string> args{"embed", "--checkpoint", inputs().checkpoint.string(), "--data",
                                inputs().survey.string(), "--out", out.string(), "--stride", stride};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::vector<float> read_features(const fs::path& out) {
  const auto node = sfm::io::zarr::open_node(sfm::io::open_store((out / "features").string()), "");
  return std::get<sfm::io::zarr::Array>(node).read_all();
}

// Equal bits, NaN included.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("sfm embed: the reference encoder's features on every window, averaged per cell; dead cells NaN") {
  const Inputs& in = inputs();
  const fs::path work = sfm::test::scratch_dir("cli_embed_reference"), out = work / "features.zarr";
  const sfm::test::CliResult r = sfm::test::run_sfm(embed_args(out, {"--normalize", "standard", "--batch", "3"}), work);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  CHECK(summary.at("windows_embedded") == 12);  // z 0,16,32 × y 0,16 × x 0,8 (flush with 40)

  // The reference: every window read and normalised as training does, encoded by PyTorch.
  const sfm::ModelConfig c = sfm::named_model_config("tiny");
  const sfm::WindowPlan plan = sfm::plan_windows(survey_shape, c.crop, c.patch, {16, 16, 16});
  const auto volume = sfm::open_volume(in.survey.string());
  const int64_t voxels = sfm::box_voxels(c.crop), W = plan.count(), N = c.tokens(), D = c.dim;
  std::vector<float> crops(size_t(W * voxels));
  sfm::CropNormalization standard;
  for (int64_t w = 0; w < W; ++w) {
    const std::span<float> crop = std::span<float>(crops).subspan(size_t(w * voxels), size_t(voxels));
    volume->read(plan.origin(w), c.crop, crop);
    sfm::normalize_crop(crop, standard);
  }
  sfm::write_npy(work / "windows.npy", crops.data(), {W, c.crop[0], c.crop[1], c.crop[2]});
  sfm::test::run_command(sfm::test::reference_command("encode --checkpoint " + in.checkpoint.string() + " --volume " +
                                                      (work / "windows.npy").string() + " --out " +
                                                      (work / "reference.npy").string() + " > /dev/null"));
  const sfm::Tensor<float> reference = sfm::read_npy_as<float>(work / "reference.npy");
  REQUIRE(reference.shape() == sfm::Shape{W, N, D});

  // Per cell: the mean over the windows covering it, or NaN when its patch has no live trace.
  const std::vector<float> ours = read_features(out);
  const sfm::Box3 g = plan.grid, wg = plan.window_grid();
  REQUIRE(int64_t(ours.size()) == plan.cells() * D);
  double worst = 0;
  int64_t dead = 0, wrong_nan = 0;
  for (int64_t z = 0; z < g[0]; ++z)
    for (int64_t y = 0; y < g[1]; ++y) {
      bool any_live = false;
      for (int64_t vz = z * 8; vz < z * 8 + 8; ++vz)
        for (int64_t vy = y * 8; vy < y * 8 + 8; ++vy) any_live |= in.live[size_t(vz * survey_shape[1] + vy)] != 0;
      for (int64_t x = 0; x < g[2]; ++x) {
        const float* cell = ours.data() + ((z * g[1] + y) * g[2] + x) * D;
        if (!any_live) {
          ++dead;
          for (int64_t k = 0; k < D; ++k) wrong_nan += !std::isnan(cell[k]);
          continue;
        }
        std::vector<double> sum(size_t(D), 0.0);
        int64_t covering = 0;
        for (int64_t w = 0; w < W; ++w) {
          const sfm::Box3 o = plan.origin(w);
          const int64_t lz = z - o[0] / 8, ly = y - o[1] / 8, lx = x - o[2] / 8;
          if (lz < 0 || ly < 0 || lx < 0 || lz >= wg[0] || ly >= wg[1] || lx >= wg[2]) continue;
          ++covering;
          const float* token = reference.data() + (w * N + (lz * wg[1] + ly) * wg[2] + lx) * D;
          for (int64_t k = 0; k < D; ++k) sum[size_t(k)] += token[k];
        }
        REQUIRE(covering > 0);
        for (int64_t k = 0; k < D; ++k) {
          wrong_nan += std::isnan(cell[k]);
          worst = std::max(worst, std::abs(sum[size_t(k)] / double(covering) - cell[k]));
        }
      }
    }
  INFO("max |sfm − PyTorch| " << worst << "; dead cells " << dead);
  CHECK(dead == 2 * g[2]);  // cells (0, 0) and (0, 1) along every x
  CHECK(wrong_nan == 0);
  CHECK(worst <= 2e-5);  // LayerNorm outputs of order 1

  // Coordinates: the centre of each cell's patch in the survey's own (MDIO: inline from 1, time step 4).
  const auto group = std::get<sfm::io::zarr::Group>(sfm::io::zarr::open_node(sfm::io::open_store(out.string()), ""));
  const std::vector<float> inline_coords = group.open_array("inline").read_all();
  const std::vector<float> time_coords = group.open_array("time").read_all();
  REQUIRE(int64_t(inline_coords.size()) == g[0]);
  REQUIRE(int64_t(time_coords.size()) == g[2]);
  for (int64_t i = 0; i < g[0]; ++i) CHECK(inline_coords[size_t(i)] == Approx(1 + 8 * i + 3.5));
  for (int64_t i = 0; i < g[2]; ++i) CHECK(time_coords[size_t(i)] == Approx(4 * (8 * i + 3.5)));
  CHECK(group.open_array("features").metadata().dimension_names ==
        std::vector<std::string>{"inline", "crossline", "time", "feature"});
}

TEST_CASE("sfm embed: zarr-python 3 and xarray open the output and read what sfm reads") {
  const fs::path work = sfm::test::scratch_dir("cli_embed_python"), out = work / "features.zarr";
  const sfm::test::CliResult r = sfm::test::run_sfm(embed_args(out), work);
  INFO(r.err);
  REQUIRE(r.status == 0);
  sfm::test::run_command(std::string(SFM_VENV_PYTHON) + " " + SFM_SOURCE_DIR + "/tests/examples/read_embedding.py " +
                         out.string() + " > " + (work / "python.json").string());
  std::ifstream in(work / "python.json");
  const nlohmann::json python = nlohmann::json::parse(in);
  const std::vector<float> ours = read_features(out);
  double sum = 0;
  int64_t nans = 0;
  for (const float v : ours) std::isnan(v) ? void(++nans) : void(sum += double(v));
  CHECK(python.at("shape") == std::vector<int64_t>{8, 6, 5, 64});
  CHECK(python.at("dims") == std::vector<std::string>{"inline", "crossline", "time", "feature"});
  CHECK(python.at("nan") == nans);
  CHECK(nans > 0);
  CHECK(python.at("sum").get<double>() == Approx(sum).epsilon(1e-9));
  CHECK(python.at("xarray_sum").get<double>() == Approx(sum).epsilon(1e-9));
  CHECK(python.at("inline").at(0).get<double>() == Approx(4.5));
  CHECK(python.at("stride") == std::vector<int64_t>{16, 16, 16});
}

TEST_CASE("sfm embed: under mpiexec -n 2 the output is bitwise one rank's") {
#ifndef SFM_MPIEXEC
  WARN("skipped: this sfm was built without MPI (no mpiexec to launch two ranks)");
  return;
#else
  const fs::path work = sfm::test::scratch_dir("cli_embed_mpi");
  // One OpenMP thread per rank in both runs: Eigen's GEMM blocking depends on the thread count.
  const std::vector<std::string> env{"OMP_NUM_THREADS=1"};
  const sfm::test::CliResult one = sfm::test::run_sfm(embed_args(work / "one.zarr", {"--batch", "3"}), work, env);
  INFO(one.err);
  REQUIRE(one.status == 0);
  std::string command = "env OMP_NUM_THREADS=1 " + std::string(SFM_MPIEXEC) + " -n 2 --oversubscribe " + SFM_CLI;
  for (const std::string& a : embed_args(work / "two.zarr", {"--batch", "3"})) command += " " + sfm::test::shell_quote(a);
  command += " > " + (work / "mpi.out").string() + " 2> " + (work / "mpi.err").string();
  const int status = std::system(command.c_str());
  INFO(sfm::test::read_text(work / "mpi.err"));
  REQUIRE(status == 0);
  CHECK(nlohmann::json::parse(sfm::test::read_text(work / "mpi.out")).at("ranks") == 2);
  CHECK(same_bits(read_features(work / "one.zarr"), read_features(work / "two.zarr")));
#endif
}

TEST_CASE("sfm embed: killed with SIGKILL and run again, the output is bitwise an uninterrupted run's") {
  const fs::path work = sfm::test::scratch_dir("cli_embed_resume");
  // A longer survey (stride 8: 47 rows of 25 windows, a slab per row) so the kill lands mid-run.
  const sfm::Box3 shape{400, 64, 64};
  std::vector<float> amplitudes(size_t(sfm::box_voxels(shape)));
  sfm::Rng(3, 0).fill_normal(amplitudes, 0.0f, 1.0f);
  const fs::path survey = work / "long.zarr";
  sfm::io::zarr::write_array<float>(sfm::io::open_store(survey.string()), "", shape, amplitudes);
  const auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"embed", "--checkpoint", inputs().checkpoint.string(), "--data", survey.string(),
                                    "--out", out.string(), "--stride", "8,8,8"};
  };
  const std::vector<std::string> env{"OMP_NUM_THREADS=1"};
  REQUIRE(sfm::test::run_sfm(args(work / "whole.zarr"), work, env).status == 0);

  // Start it in the background, wait for its slab 10, SIGKILL it. (Rows reach 4 slabs: a resume at
  // slab k restarts at row k − 3.)
  const fs::path out = work / "killed.zarr", pid_file = work / "pid";
  std::string command = "env OMP_NUM_THREADS=1 " + sfm::test::shell_quote(SFM_CLI);
  for (const std::string& a : args(out)) command += " " + sfm::test::shell_quote(a);
  command += " > /dev/null 2>&1 & echo $! > " + pid_file.string();
  REQUIRE(std::system(command.c_str()) == 0);
  const pid_t pid = pid_t(std::stol(sfm::test::read_text(pid_file)));
  const fs::path slab_10_chunk = out / "features" / "c" / "10" / "0" / "0" / "0";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(slab_10_chunk) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(fs::exists(slab_10_chunk));
  REQUIRE(::kill(pid, SIGKILL) == 0);  // fails (ESRCH) when it had already ended: then nothing was interrupted
  while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const fs::path last_chunk = out / "features" / "c" / "49" / "0" / "0" / "0";
  REQUIRE_FALSE(fs::exists(last_chunk));  // the kill left the output unfinished

  const sfm::test::CliResult again = sfm::test::run_sfm(args(out), work, env);
  INFO(again.err);
  REQUIRE(again.status == 0);
  CHECK_THAT(again.err, contains("sfm embed: resuming"));
  const nlohmann::json summary = nlohmann::json::parse(again.out);
  CHECK(summary.at("first_slab").get<int64_t>() >= 10);
  CHECK(summary.at("windows_embedded").get<int64_t>() < summary.at("windows").get<int64_t>());
  CHECK(same_bits(read_features(out), read_features(work / "whole.zarr")));

  // Once complete, running it again does nothing.
  const sfm::test::CliResult done = sfm::test::run_sfm(args(out), work, env);
  CHECK(done.status == 0);
  CHECK_THAT(done.err, contains("is complete; nothing to do"));
}

TEST_CASE("sfm embed: what is already there is never replaced unless --overwrite; bad input is one line") {
  const fs::path work = sfm::test::scratch_dir("cli_embed_refuse");
  const auto one_error_line = [&](const sfm::test::CliResult& r, const std::string& text) {
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err_lines().size() == 1);
    CHECK_THAT(r.err, contains(text));
  };
  // A folder of the user's own.
  fs::create_directories(work / "mine");
  std::ofstream(work / "mine" / "notes.txt") << "keep me";
  one_error_line(sfm::test::run_sfm(embed_args(work / "mine"), work), "exists and is not an sfm embed output");
  CHECK(sfm::test::read_text(work / "mine" / "notes.txt") == "keep me");

  // An embedding of other inputs (another stride) is refused, naming what differs, then replaced on request.
  REQUIRE(sfm::test::run_sfm(embed_args(work / "e.zarr"), work).status == 0);
  std::vector<std::string> other = embed_args(work / "e.zarr");
  other.back() = "32,32,32";
  one_error_line(sfm::test::run_sfm(other, work), "holds an embedding of other inputs (stride: was [16,16,16], now [32,32,32])");
  other.push_back("--overwrite");
  const sfm::test::CliResult replaced = sfm::test::run_sfm(other, work);
  CHECK(replaced.status == 0);
  CHECK(nlohmann::json::parse(replaced.out).at("windows") == 8);  // z 0,32 × y 0,16 (flush) × x 0,8 (flush)

  // A survey smaller than the crop, a stride that is not a multiple of the patch, a missing checkpoint.
  const fs::path small = work / "small.zarr";
  const sfm::Box3 small_shape{40, 40, 20};
  sfm::io::zarr::write_array<float>(sfm::io::open_store(small.string()), "", small_shape,
                                    std::vector<float>(size_t(sfm::box_voxels(small_shape)), 1.0f));
  std::vector<std::string> args = embed_args(work / "s.zarr");
  args[4] = small.string();
  one_error_line(sfm::test::run_sfm(args, work), "is smaller than the model's crop (32×32×32) along x (time)");
  CHECK_FALSE(fs::exists(work / "s.zarr"));
  args = embed_args(work / "s.zarr");
  args.back() = "12,16,16";
  one_error_line(sfm::test::run_sfm(args, work), "--stride 12 along z (inline): must be a positive multiple of the patch 8");
  args = embed_args(work / "s.zarr");
  args[2] = (work / "missing.safetensors").string();
  one_error_line(sfm::test::run_sfm(args, work), "no such file or directory");
}

#ifdef SFM_HAVE_PNG
TEST_CASE("sfm embed --preview: amplitudes beside three principal components of the middle slices") {
  const fs::path work = sfm::test::scratch_dir("cli_embed_preview");
  const sfm::test::CliResult r =
      sfm::test::run_sfm(embed_args(work / "e.zarr", {"--preview", (work / "p.png").string()}), work);
  INFO(r.err);
  REQUIRE(r.status == 0);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_file(&image, (work / "p.png").c_str()) != 0);
  image.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  REQUIRE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr) != 0);
  // Rows: inline slice (crossline across, time down), crossline slice (inline across), time slice
  // (crossline across, inline down) over the covered 64 × 48 × 40 voxels, each amplitude | 4 | features.
  CHECK(image.width == 2 * 64 + 4);
  CHECK(image.height == 40 + 4 + 40 + 4 + 64);
  // The first row's right panel is coloured (not gray) and not uniform.
  std::set<std::array<uint8_t, 3>> colours;
  int64_t coloured = 0;
  for (int64_t y = 0; y < 40; ++y)
    for (int64_t x = 48 + 4; x < 2 * 48 + 4; ++x) {
      const uint8_t* p = pixels.data() + (y * int64_t(image.width) + x) * 3;
      colours.insert({p[0], p[1], p[2]});
      coloured += p[0] != p[1] || p[1] != p[2];
    }
  CHECK(colours.size() > 10);
  CHECK(coloured > 100);
}
#endif
