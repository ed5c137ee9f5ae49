// The trainer on one process and on ThreadComm ranks: the loss falls, resumed runs continue the
// uninterrupted one (same and other world size, and across train.precision), checkpoints survive a
// SIGKILL while being written, previews are written (and decode to the input, masked input and
// reconstruction panels), metrics.jsonl logs the lr schedule worked out by hand, and bad configs
// are clear errors.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "sfm/comm/serial.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/trainer.hpp"
#include "data/corrupt_volume.hpp"
#include "io/gray_image_reader.hpp"
#include "sfm_test.hpp"
#include "train_test_util.hpp"

using namespace sfm;
using sfm::test::small_run;
using sfm::test::train_tmp;

namespace {

TrainResult run_serial(const TrainConfig& c, const std::filesystem::path& resume = {}) {
  SerialComm world;
  TrainOptions o;
  o.resume = resume;
  o.console = nullptr;
  return train<sfm::Cpu>(c, world, o);
}

// The preview of a `tiny` run (crop 32³): three panels of 32 px (input, masked input,
// reconstruction) with 2 px gaps, enlarged by a whole factor. Visible voxels are the input in both
// other panels; hidden ones are black in the masked panel and a prediction in the reconstruction.
void check_tiny_preview(const std::filesystem::path& file) {
  const test::DecodedImage image = test::read_gray_image(file);
  REQUIRE(image.width == image.height);  // a cubic crop: rows 32 + 32 + 32 + gaps, like the columns
  REQUIRE(image.width % 100 == 0);
  const int64_t factor = image.width / 100, panel = 34 * factor;
  int64_t hidden = 0, visible = 0, visible_changed = 0, hidden_black_in_recon = 0, hidden_not_input = 0;
  for (int64_t i = 0; i < image.height; ++i)
    for (int64_t j = 0; j < 32 * factor; ++j) {
      const uint8_t input = image.at(i, j), masked = image.at(i, panel + j), recon = image.at(i, 2 * panel + j);
      if (masked != 0) {
        ++visible;
        visible_changed += masked != input || recon != input;
      } else if (input != 0) {  // black only because hidden (an input voxel can be black itself)
        ++hidden;
        hidden_black_in_recon += recon == 0;
        hidden_not_input += recon != input;
      }
    }
  CHECK(visible > 0);
  CHECK(hidden > 0);
  CHECK(visible_changed == 0);
  // The reconstruction panel differs from the masked one where patches are hidden (a prediction
  // of mean − 3σ or below is black too, hence not all), and it is not the input copied.
  CHECK(hidden_black_in_recon < hidden / 10);
  CHECK(hidden_not_input > hidden / 2);
}

}  // namespace

TEST_CASE("a short CPU run lowers the loss and writes checkpoints and a preview") {
  const auto dir = train_tmp("lowers");
  nlohmann::json model = to_json(named_model_config("tiny"));
  model["norm_pix_loss"] = false;
  const TrainConfig c = small_run(dir.string(), {{"model", model}, {"train", {{"steps", 40}, {"warmup_steps", 5}}},
                                                 {"output", {{"checkpoint_every", 20}, {"images_every", 40}}}});
  const TrainResult r = run_serial(c);
  REQUIRE(r.losses.size() == 40);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += r.losses[size_t(i)], last += r.losses[size_t(35 + i)];
  CHECK(last < 0.95 * first);
  CHECK(std::filesystem::exists(dir / "checkpoint-20" / "optimizer.safetensors"));
  CHECK(std::filesystem::exists(dir / "checkpoint-40" / "model.safetensors"));
  CHECK(resolve_run_checkpoint(dir) == dir / "checkpoint-40");
  const bool png = std::filesystem::exists(dir / "images" / "step-40.png"),
             pgm = std::filesystem::exists(dir / "images" / "step-40.pgm");
  REQUIRE((png || pgm));
  check_tiny_preview(dir / "images" / (png ? "step-40.png" : "step-40.pgm"));
  CHECK(test::logged_losses(dir).size() == 40);
}

TEST_CASE("metrics.jsonl logs the lr of each step: batch-scaled warmup, then cosine to min_lr") {
  const auto dir = train_tmp("lr");
  run_serial(small_run(dir.string(), {{"train", {{"min_lr", 5e-4}}}}));
  // small_run: lr 0.05 at batch 8 → base 0.05 · 8 / 256 = 0.0015625 (min_lr is not scaled);
  // 6 steps, 2 of warmup (base/2, base), then 4 of cosine: progress 0, ¼, ½, ¾.
  const double base = 0.0015625, min = 5e-4, half_sqrt2 = std::sqrt(2.0) / 2;
  const double expected[6] = {base / 2, base, base, min + (base - min) * 0.5 * (1 + half_sqrt2), (base + min) / 2,
                              min + (base - min) * 0.5 * (1 - half_sqrt2)};
  std::ifstream in(dir / "metrics.jsonl");
  int64_t records = 0;
  for (std::string line; std::getline(in, line); ++records) {
    const nlohmann::json record = nlohmann::json::parse(line);
    REQUIRE(records < 6);
    CHECK(record.at("step") == records + 1);
    CHECK(record.at("lr").get<double>() == Approx(expected[records]).epsilon(1e-12));
  }
  CHECK(records == 6);
}

TEST_CASE("resume continues exactly: same world size bit for bit, another within rounding") {
  const auto full_dir = train_tmp("resume-full"), part_dir = train_tmp("resume-part");
  const TrainResult full = run_serial(small_run(full_dir.string()));
  const TrainConfig first = small_run(part_dir.string(), {{"train", {{"steps", 6}}}});
  // Killed during step 6 of a 6-step run: checkpoint-3 on disk, metrics.jsonl holding steps 1–5
  // (here with losses no run produced, so only a resume that trims them and logs its own steps
  // can reproduce the uninterrupted run's file), then resumed.
  std::filesystem::remove_all(part_dir);
  run_serial(small_run(part_dir.string()));
  std::filesystem::remove_all(part_dir / "checkpoint-6");
  {
    std::vector<nlohmann::json> records;
    std::ifstream in(part_dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
    in.close();
    std::ofstream out(part_dir / "metrics.jsonl", std::ios::trunc);
    for (nlohmann::json& r : records) {
      if (r.at("step").get<int64_t>() > 5) continue;
      if (r.at("step").get<int64_t>() > 3) r["loss"] = 999.0;
      out << r.dump() << "\n";
    }
  }
  REQUIRE(test::logged_losses(part_dir).size() == 5);
  const TrainResult resumed = run_serial(first, part_dir / "checkpoint-3");
  REQUIRE(resumed.first_step == 3);
  REQUIRE(resumed.losses.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(resumed.losses[i] == full.losses[3 + i]);
  CHECK(test::logged_losses(part_dir) == test::logged_losses(full_dir));

  // Two ThreadComm ranks (dp = 2) resume the single-rank checkpoint.
  const TrainConfig dp2 = small_run(train_tmp("resume-dp2").string(), {{"parallel", {{"dp", 2}}},
                                                                       {"train", {{"micro_batch", 2}}}});
  std::vector<double> losses;
  run_ranks(2, [&](ThreadComm& comm) {
    TrainOptions o;
    o.resume = part_dir / "checkpoint-3";
    o.console = nullptr;
    o.handle_signals = false;
    const TrainResult r = train<sfm::Cpu>(dp2, comm, o);
    if (comm.rank() == 0) losses = r.losses;
  });
  REQUIRE(losses.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(losses[i] == Approx(full.losses[3 + i]).epsilon(1e-5));
}

TEST_CASE("train.precision bf16: tracks fp32, resumes bit for bit, and crosses precisions through checkpoints") {
  const nlohmann::json bf16{{"train", {{"precision", "bf16"}}}};
  const auto fp32_dir = train_tmp("bf16-fp32"), bf16_dir = train_tmp("bf16-full"), part_dir = train_tmp("bf16-part");
  const TrainResult fp32 = run_serial(small_run(fp32_dir.string()));
  const TrainResult full = run_serial(small_run(bf16_dir.string(), bf16));
  REQUIRE(full.losses.size() == fp32.losses.size());
  auto worst = [](const std::vector<double>& a, const std::vector<double>& b, size_t offset) {
    double w = 0;
    for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(a[i] - b[offset + i]) / std::abs(b[offset + i]));
    return w;
  };
  // tiny at lr 0.05, 6 steps: measured worst 2.5e-4 relative to the fp32 curve (the crossed
  // resumes below 1.3e-4).
  CHECK(worst(full.losses, fp32.losses, 0) <= 2e-3);
  CHECK(nlohmann::json::parse(std::ifstream(bf16_dir / "config.json")).at("train").at("precision") == "bf16");

  // Interrupted after step 3 and resumed: the same bits as the uninterrupted bf16 run.
  run_serial(small_run(part_dir.string(), bf16));
  std::filesystem::remove_all(part_dir / "checkpoint-6");
  const TrainResult resumed = run_serial(small_run(part_dir.string(), bf16), part_dir / "checkpoint-3");
  REQUIRE(resumed.losses.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(resumed.losses[i] == full.losses[3 + i]);
  CHECK(test::logged_losses(part_dir) == test::logged_losses(bf16_dir));

  // An fp32 run's checkpoint resumed in bf16 and the other way round: each continues within bf16's
  // band of the run it came from (a resume that lost the moments or the step is far off).
  const auto cross_dir = train_tmp("bf16-cross");
  std::filesystem::remove_all(cross_dir);
  std::filesystem::create_directories(cross_dir);
  std::filesystem::copy(fp32_dir / "checkpoint-3", cross_dir / "checkpoint-3", std::filesystem::copy_options::recursive);
  const TrainResult bf16_after_fp32 = run_serial(small_run(cross_dir.string(), bf16), cross_dir / "checkpoint-3");
  CHECK(worst(bf16_after_fp32.losses, fp32.losses, 3) <= 2e-3);
  std::filesystem::remove_all(cross_dir);
  std::filesystem::create_directories(cross_dir);
  std::filesystem::copy(bf16_dir / "checkpoint-3", cross_dir / "checkpoint-3", std::filesystem::copy_options::recursive);
  const TrainResult fp32_after_bf16 = run_serial(small_run(cross_dir.string()), cross_dir / "checkpoint-3");
  CHECK(worst(fp32_after_bf16.losses, full.losses, 3) <= 2e-3);
}

TEST_CASE("context parallelism: cp = 2 (ring, all_gather) and dp = 2 × cp = 2 train like one rank") {
  // mask random keeps MAE's len_keep at every cp (16 of 64 tokens: 17 encoder rows, padded over 2 ranks).
  const nlohmann::json random_mask{{"parallel", {{"mask", "random"}}}, {"output", {{"images_every", 6}}}};
  const TrainResult single = run_serial(small_run(train_tmp("cp-single").string(), random_mask));
  struct Layout {
    int dp, cp;
    const char* attention;
  };
  for (const Layout layout : {Layout{1, 2, "ring"}, Layout{1, 2, "all_gather"}, Layout{2, 2, "ring"}}) {
    nlohmann::json patch = random_mask;
    patch["parallel"]["dp"] = layout.dp, patch["parallel"]["cp"] = layout.cp;
    patch["parallel"]["attention"] = layout.attention;
    patch["train"]["micro_batch"] = 8 / (2 * layout.dp);  // two micro-batches per replica
    const auto dir = train_tmp(std::string("cp-") + layout.attention + "-dp" + std::to_string(layout.dp));
    const TrainConfig c = small_run(dir.string(), patch);
    std::vector<double> losses;
    run_ranks(layout.dp * layout.cp, [&](ThreadComm& comm) {
      TrainOptions o;
      o.console = nullptr;
      o.handle_signals = false;
      const TrainResult r = train<sfm::Cpu>(c, comm, o);
      if (comm.rank() == 0) losses = r.losses;
    });
    INFO("dp " << layout.dp << " × cp " << layout.cp << ", " << layout.attention << " attention");
    REQUIRE(losses.size() == single.losses.size());
    for (size_t i = 0; i < losses.size(); ++i) CHECK(losses[i] == Approx(single.losses[i]).epsilon(1e-5));
    CHECK(resolve_run_checkpoint(dir) == dir / "checkpoint-6");
    CHECK((std::filesystem::exists(dir / "images" / "step-6.png") || std::filesystem::exists(dir / "images" / "step-6.pgm")));
  }
  // The adaptive mask gives each of the cp ranks an equal share of the encoder rows: 15 visible tokens.
  const TrainConfig adaptive = small_run(train_tmp("cp-adaptive").string(), {{"parallel", {{"cp", 2}}}});
  CHECK(train_len_keep(adaptive) == 15);
  CHECK(train_len_keep(small_run(train_tmp("cp-adaptive").string())) == 16);
}

TEST_CASE("train.recompute reaches the model and leaves the losses bit for bit") {
  const TrainConfig plain = small_run(train_tmp("recompute-none").string(), {{"train", {{"steps", 3}}}});
  TrainConfig all = small_run(train_tmp("recompute-all").string(), {{"train", {{"steps", 3}, {"recompute", "all"}}}});
  CHECK(all.recompute == Recompute{2, 1});  // tiny: 2 encoder and 1 decoder block
  CHECK(run_serial(all).losses == run_serial(plain).losses);
}

TEST_CASE("a SIGKILL while a checkpoint is written leaves the previous one loadable") {
  const auto dir = train_tmp("kill");
  const TrainConfig c = small_run(dir.string(), {{"train", {{"steps", 2}}}, {"output", {{"checkpoint_every", 1}}}});
  run_serial(c);
  VitMae<Cpu> model(c.model, false);
  const RunCheckpoint good = load_run_checkpoint(dir, c.model, model.table());
  REQUIRE(good.step() == 2);
  int64_t newest = 0;  // the newest step a killed child had saved: it must have written some
  for (int delay_us : {0, 300, 1000, 3000, 20000}) {
    const pid_t child = ::fork();
    if (child == 0) {  // save checkpoints of step 100+ as fast as possible until killed
      for (int64_t step = 100;; ++step)
        save_run_checkpoint(dir, step, c.model, model.table(), model.pos_embed(), model.decoder_pos_embed(), good.state,
                            good.trainer, 100);
    }
    ::usleep(useconds_t(delay_us));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    const RunCheckpoint after = load_run_checkpoint(dir, c.model, model.table());
    CHECK(after.state.params == good.state.params);
    CHECK(after.state.exp_avg_sq == good.state.exp_avg_sq);
    newest = std::max(newest, after.step());
  }
  INFO("newest checkpoint a killed child completed: step " << newest);
  CHECK(newest >= 100);  // the kills landed while the child was saving, not before it began
}

TEST_CASE("a checkpoint holding non-finite values is refused on resume") {
  const auto dir = train_tmp("nan-state"), copy = train_tmp("nan-state-copy");
  const TrainConfig c = small_run(dir.string(), {{"train", {{"steps", 3}}}});
  run_serial(c);
  VitMae<Cpu> model(c.model, false);
  RunCheckpoint ckpt = load_run_checkpoint(dir, c.model, model.table());
  ckpt.state.exp_avg_sq[5] = std::numeric_limits<float>::quiet_NaN();
  std::filesystem::remove_all(copy);
  save_run_checkpoint(copy, 3, c.model, model.table(), model.pos_embed(), model.decoder_pos_embed(), ckpt.state,
                      ckpt.trainer, 3);
  const TrainConfig more = small_run(copy.string(), {{"train", {{"steps", 6}}}});
  CHECK_THROWS_WITH(run_serial(more, copy), test::contains("optimizer.safetensors: tensor 'exp_avg_sq."));
  CHECK_THROWS_WITH(run_serial(more, copy), test::contains("holds a non-finite value"));
}

TEST_CASE("data.on_error: a corrupt chunk stops the run (fail) or is redrawn, counted and bounded (skip)") {
  const auto dir = train_tmp("corrupt"), data = train_tmp("corrupt-data");
  std::filesystem::remove_all(data);
  std::filesystem::create_directories(data);
  const std::string url = (data / "bad.zarr").string();
  test::write_corrupt_volume(url, 64, 16);  // a 32³ crop reads chunk c/0/0/0 in (16/33)³ ≈ 11 % of the draws
  nlohmann::json zarr = {{"source", "zarr"}, {"url", url}, {"cache_mib", 0}};
  CHECK_THROWS_WITH(run_serial(small_run(dir.string(), {{"data", zarr}})),
                    test::contains(url) && test::contains(test::corrupt_chunk_key));

  // skip: the run goes on; metrics.jsonl counts the reads the sampler skips for the run's samples
  // (6 steps of 8), and the losses do not depend on the loader's thread count.
  zarr["on_error"] = "skip";
  zarr["max_skip_fraction"] = 1.0;
  const TrainConfig c = small_run(dir.string(), {{"data", zarr}});
  {
    // Rank 0 names the failure once, however many reads it fails.
    std::FILE* console = std::tmpfile();
    REQUIRE(console != nullptr);
    SerialComm world;
    TrainOptions o;
    o.console = console;
    train<sfm::Cpu>(c, world, o);
    std::rewind(console);
    std::string printed;
    for (int ch; (ch = std::fgetc(console)) != EOF;) printed += char(ch);
    std::fclose(console);
    const std::string note = "a crop could not be read and was redrawn (data.on_error skip; each failure is named once): ";
    const size_t at = printed.find(note);
    REQUIRE(at != std::string::npos);
    CHECK(printed.find(test::corrupt_chunk_key, at) != std::string::npos);
    CHECK(printed.find(note, at + 1) == std::string::npos);
  }
  const std::vector<double> losses = test::logged_losses(dir);
  const auto sampler = make_crop_sampler(c);
  std::vector<float> crop(size_t(sampler->crop_voxels()));
  int64_t expected = 0;
  for (uint64_t step = 0; step < 6; ++step)
    for (uint64_t i = 0; i < 8; ++i) expected += int64_t(sampler->sample(step, i, crop).size());
  CHECK(expected >= 2);
  std::ifstream in(dir / "metrics.jsonl");
  nlohmann::json last;
  for (std::string line; std::getline(in, line);) last = nlohmann::json::parse(line);
  CHECK(last.at("data_skips") == expected);
  zarr["threads"] = 1;
  run_serial(small_run(dir.string(), {{"data", zarr}}));
  CHECK(test::logged_losses(dir) == losses);

  // Past data.max_skip_fraction of the samples drawn (rounded up: 1 skip in the first 100 samples
  // at 0.01), one line naming the share.
  zarr["max_skip_fraction"] = 0.01;
  CHECK_THROWS_WITH(run_serial(small_run(dir.string(), {{"data", zarr}})),
                    test::contains(" samples drawn since the run started or resumed, more than "
                                   "data.max_skip_fraction = 0.01 of them; the run stops"));
}

TEST_CASE("a trainer.json without the train.seed a resume compares is refused in sfm's words") {
  const auto dir = train_tmp("no-seed");
  run_serial(small_run(dir.string(), {{"train", {{"steps", 3}}}}));
  const auto path = dir / "checkpoint-3" / "trainer.json";
  nlohmann::json trainer = nlohmann::json::parse(std::ifstream(path));
  trainer["config"]["train"].erase("seed");
  std::ofstream(path) << trainer.dump();
  const TrainConfig more = small_run(dir.string(), {{"train", {{"steps", 6}}}});
  CHECK_THROWS_WITH(run_serial(more, dir), test::contains(path.string() + ": no \"config\" object with a \"train\" "
                                                                          "section holding \"batch\" and \"seed\""));
}

TEST_CASE("config errors name the key") {
  nlohmann::json j = default_train_json();
  CHECK_THROWS_WITH(merge_train_json(j, {{"train", {{"bacth", 8}}}}), test::contains("unknown key 'train.bacth'"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  apply_train_override(j, "train.batch=eight");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("train.batch: expected an integer"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  apply_train_override(j, "train.micro_batch=3");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("not a multiple of parallel.dp × train.micro_batch"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  CHECK(parse_train_config(j).cache_mib == 256);
  apply_train_override(j, "data.cache_mib=-1");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("data.cache_mib must be between 0 and 2^30, got -1"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  apply_train_override(j, "train.recompute=some");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("config: train.recompute: expected \"none\", \"all\" or"));
  apply_train_override(j, "train.recompute.encdoer=1");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("config: train.recompute: unknown key 'encdoer'"));
  apply_train_override(j, "train.recompute={\"encoder\": 3}");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("config: train.recompute: 3 encoder blocks, the model has 2"));
  apply_train_override(j, "train.recompute.decoder=1");  // replaces the whole setting, like any object value
  CHECK(parse_train_config(j).recompute == Recompute{0, 1});
  // Values that cannot train: no hidden token, a live fraction no crop can have, a batch past the maximum.
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  nlohmann::json unmasked = to_json(named_model_config("tiny"));
  unmasked["mask_ratio"] = 0.0;
  j["model"] = unmasked;
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("mask_ratio 0 leaves no hidden token of 64"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  apply_train_override(j, "data.min_live_fraction=-0.5");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("data.min_live_fraction must be in [0, 1], got -0.5"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  CHECK(parse_train_config(j).on_error == ReadErrorPolicy::fail);
  apply_train_override(j, "data.on_error=skip");
  CHECK(parse_train_config(j).on_error == ReadErrorPolicy::skip);
  apply_train_override(j, "data.on_error=ignore");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("config: data.on_error: 'ignore' (known: fail, skip)"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  CHECK(parse_train_config(j).max_skip_fraction == 0.01);
  apply_train_override(j, "data.max_skip_fraction=1.5");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("data.max_skip_fraction must be in [0, 1], got 1.5"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  CHECK(parse_train_config(j).skip_nonfinite == 0);
  apply_train_override(j, "train.skip_nonfinite=-1");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("train.skip_nonfinite must be >= 0"));
  j = default_train_json();
  apply_train_override(j, "data.url=x.mdio");
  apply_train_override(j, "train.batch=1099511627776");
  CHECK_THROWS_WITH(parse_train_config(j), test::contains("train.batch 1099511627776 is more than 1048576"));
  const TrainConfig cuda = small_run(train_tmp("cuda").string(), {{"backend", "cuda"}});
  SerialComm world;
  CHECK_THROWS_WITH(train<sfm::Cpu>(cuda, world), test::contains("not available in this build"));
  CHECK_THROWS_WITH(small_run(train_tmp("cuda-cp").string(), {{"backend", "cuda"}, {"parallel", {{"cp", 2}}}}),
                    test::contains("parallel.cp = 2 with backend \"cuda\": context parallelism"));
  // train.precision: the backend's default when null (recorded in the effective config), bf16 only with cp = 1.
  CHECK(small_run(train_tmp("p").string()).precision == PrecisionKind::fp32);
  CHECK(cuda.precision == PrecisionKind::bf16);
  CHECK(cuda.json.at("train").at("precision") == "bf16");
  CHECK(small_run(train_tmp("p").string(), {{"backend", "cuda"}, {"train", {{"precision", "fp32"}}}}).precision ==
        PrecisionKind::fp32);
  CHECK_THROWS_WITH(small_run(train_tmp("p").string(), {{"train", {{"precision", "fp16"}}}}),
                    test::contains("config: train.precision: 'fp16' (known: fp32, bf16)"));
  CHECK_THROWS_WITH(small_run(train_tmp("p").string(), {{"train", {{"precision", 16}}}}),
                    test::contains("config: train.precision: expected \"fp32\", \"bf16\" or null"));
  CHECK_THROWS_WITH(small_run(train_tmp("p").string(), {{"train", {{"precision", "bf16"}}}, {"parallel", {{"cp", 2}}}}),
                    test::contains("train.precision bf16 with parallel.cp = 2"));
  const TrainConfig dp2 = small_run(train_tmp("p").string(), {{"parallel", {{"dp", 2}}}});
  CHECK_THROWS_WITH(train<sfm::Cpu>(dp2, world), test::contains("1 process(es) were launched"));
}
