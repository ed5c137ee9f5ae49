// The trainer: a TrainConfig and a communicator → a ViT-MAE training run with checkpoints, metrics
// and reconstruction previews (also as TensorBoard events: train/tensorboard.hpp). The CLI's
// `sfm train` is a thin shell around train().
//
// World = dp × cp ranks on a Mesh (parallel/mesh.hpp): each dp replica runs
// batch / (dp · micro_batch) micro-batches per step on its own slice of the global batch, and the cp
// ranks of a replica load the same samples and split each sample's tokens (parallel.attention picks
// ring attention or all-gathered K/V, parallel.mask the len_keep policy). The loss is normalised by
// the global number of hidden tokens, so the gradients summed over all dp × cp ranks by the
// ZeroOptimizer are those of the whole batch; `parallel.zero` picks ZeroOptimizer<ZeroStage<k>> at
// run time. Samples and masks are pure functions of (seed, step, sample index), and checkpoints
// hold the unsharded state, so a resumed run — at any world size — continues the same run.
//
// Backend (kernels/backend.hpp): Cpu (any host communicator) or Cuda (compiled by nvcc, with
// NcclComm): the model, its parameters, gradients and optimizer state live in that backend's memory;
// the loader, the scalar reductions, checkpoints (gathered to the host, so backend-neutral), previews
// and metrics are the same loop either way. train<Cpu>(config, world) is the CPU run,
// train<Cuda>(config, nccl_world) the GPU run (the config refuses cp > 1 with backend cuda for now).
// The program includes the backend's kernels (kernels/cpu/kernels.hpp, kernels/cuda/kernels.cuh).
//
// train.precision picks the Precision policy (kernels/precision.hpp) at run time as parallel.zero
// picks the stage: Fp32, or Bf16Mixed (bf16 activations and compute copy, fp32 master weights,
// moments and gradients in the ZeroOptimizer). Checkpoints hold the fp32 master either way, so a
// run resumes another's checkpoint whatever either's precision.
//
// Bad numbers never reach the weights or a checkpoint: a step whose global loss or gradient norm is
// not finite applies no update (ZeroOptimizer::step, discard_grads); it is skipped and counted
// (metrics "skipped_steps") while at most train.skip_nonfinite such steps come in a row, else the
// run ends with a RunStopped naming the step and the value, its last checkpoint untouched.
// Checkpoints whose gathered state is not finite are never written. The output folder rules are
// train/run_folder.hpp's.
//
// Bad data (data.on_error skip): a crop whose read fails is redrawn by the sampler; rank 0 names each
// distinct failure once, the skips of all ranks are counted (metrics "data_skips"), and once they
// exceed data.max_skip_fraction of the samples drawn since the process started (rounded up) the run
// ends with a RunStopped, on every rank at the same step.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <omp.h>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/data/loader.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/image.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/lr_schedule.hpp"
#include "sfm/parallel/attention.hpp"
#include "sfm/parallel/mesh.hpp"
#include "sfm/parallel/zero.hpp"
#include "sfm/train/config.hpp"
#include "sfm/train/preview.hpp"
#include "sfm/train/progress.hpp"
#include "sfm/train/run_checkpoint.hpp"
#include "sfm/train/run_folder.hpp"
#include "sfm/train/stop_signal.hpp"
#include "sfm/train/tensorboard.hpp"

namespace sfm {

struct TrainOptions {
  std::filesystem::path resume;    // a checkpoint or output directory; empty: a new run
  std::FILE* console = stderr;     // rank 0's progress lines (nullptr: quiet)
  bool handle_signals = true;      // SIGINT/SIGTERM → checkpoint and return
  std::function<void()> started;   // called once the setup is done, just before the first step
};

// The run ended early, on every rank at the same step (the values it checks are all-reduced), so no
// rank is left waiting: the CLI reports it once, without aborting an MPI job.
class RunStopped : public Error {
 public:
  using Error::Error;
};

struct TrainResult {
  int64_t first_step = 0, end_step = 0;  // the steps this call ran: [first_step, end_step)
  std::vector<double> losses;            // the global loss of each step run
  double data_wait_s = 0, seconds = 0;   // summed data wait (slowest rank per step), wall time of the loop
  bool interrupted = false;
  std::filesystem::path checkpoint;      // the last checkpoint written
};

// Opens the training data (every rank the same) and checks the crop fits every volume.
inline std::shared_ptr<const CropSampler> make_crop_sampler(const TrainConfig& c) {
  std::vector<std::shared_ptr<const VolumeSource>> volumes;
  if (c.source == "synthetic")
    volumes.push_back(std::make_shared<MemoryVolume>(synthesize_seismic({c.synthetic_shape, c.synthetic_seed}),
                                                     c.synthetic_shape, "synthetic volume"));
  else
    for (const std::string& url : c.urls) volumes.push_back(open_volume(url, c.variable, size_t(c.cache_mib) << 20));
  for (const auto& v : volumes) {
    const Box3 s = v->shape();
    for (size_t i = 0; i < 3; ++i)
      SFM_CHECK(s[i] >= c.model.patch[i], "the volume ", v->describe(), " of shape ", s[0], "×", s[1], "×", s[2],
                " is smaller than one patch ", c.model.patch[0], "×", c.model.patch[1], "×", c.model.patch[2], " (axis ",
                i, ")");
  }
  SamplerOptions o;
  o.crop = c.model.crop;
  o.normalization = c.normalization;
  o.flip = c.flip;
  o.min_live_fraction = c.min_live_fraction;
  o.on_error = c.on_error;
  o.seed = c.seed;
  return std::make_shared<const CropSampler>(std::move(volumes), o);
}

// len_keep of parallel.mask: AdaptiveMask makes the encoder sequence split evenly over cp.
inline int64_t train_len_keep(const TrainConfig& c) { return mask_len_keep(c.mask, c.model, c.cp); }

// Checks what only the world and the build know; throws before anything is written. A trainer runs
// one backend: train<Cpu> (any build) or train<Cuda> (compiled by nvcc; the CLI picks by `backend`).
template <KernelBackend Backend, class Comm>
void check_train_setup(const TrainConfig& c, const Comm& world, const TrainOptions& options) {
  SFM_CHECK(c.backend == Backend::kind, "config: backend \"", backend_name(c.backend), "\" is not available in this ",
            "build (this trainer runs the \"", Backend::name, "\" backend; the CUDA one is compiled by nvcc)");
  SFM_CHECK(world.size() == c.dp * c.cp, "parallel.dp × parallel.cp = ", c.dp, " × ", c.cp, " = ", c.dp * c.cp,
            " ranks, but ", world.size(), " process(es) were launched (run: mpirun -np ", c.dp * c.cp, " sfm train …)");
  const int64_t tokens = c.model.tokens(), len_keep = train_len_keep(c);
  SFM_CHECK(len_keep < tokens, "config: parallel.mask ", mask_kind_name(c.mask), " at parallel.cp = ", c.cp, " keeps all ", tokens,
            " tokens visible (model.mask_ratio ", c.model.mask_ratio, "): no hidden token to learn from");
  if (options.resume.empty()) check_new_run_folder(c.dir, c.overwrite);
}

// The config of a run resumed from `resume`: it writes into the folder it was resumed from.
inline TrainConfig resumed_config(TrainConfig c, const std::filesystem::path& resume) {
  c.dir = resumed_run_folder(resume).string();
  c.json["output"]["dir"] = c.dir;
  return c;
}

template <class Stage, class Comm, KernelBackend Backend, Precision Prec>
class Trainer {
  template <class E>
  using Array = typename Backend::template Array<E>;
  using T = typename Prec::Compute;

 public:
  Trainer(const TrainConfig& config, Comm& world, TrainOptions options)
      : c_(config), world_(world), options_(std::move(options)), mesh_(world, config.cp),
        model_(config.model, /*resident=*/false),
        zero_(model_.table(), world, ZeroOptions{AdamWConfig{0.9, 0.95, 1e-8, config.weight_decay}, config.overlap}) {
    model_.use_param_store(zero_);
    model_.set_recompute(c_.recompute);
    if (c_.cp > 1) {
      // The ring and all-gather policies run in fp32 only (the config refuses cp > 1 with bf16).
      if constexpr (std::is_same_v<T, float>) {
        context_ = make_context_parallel<Backend>(c_.attention, mesh_.context_parallel());
        model_.use_context_parallel(*context_);
      } else {
        fail("train.precision ", precision_name(Prec::kind), " with parallel.cp = ", c_.cp, ": context parallelism runs in fp32 only");
      }
    }
  }

  TrainResult run() {
    const auto sampler = make_crop_sampler(c_);
    int64_t start = 0;
    std::filesystem::path last_checkpoint;
    if (!options_.resume.empty()) {
      RunCheckpoint ckpt = load_run_checkpoint(options_.resume, c_.model, model_.table());
      check_resumable(ckpt);
      check_resumed_run_folder(c_.dir, ckpt.run());
      start = ckpt.step();
      if (!ckpt.run().empty()) run_id_ = ckpt.run();
      last_checkpoint = ckpt.dir;
      SFM_CHECK(start < c_.steps, "--resume ", ckpt.dir.string(), ": the checkpoint is at step ", start,
                ", train.steps is ", c_.steps, ": nothing left to do");
      zero_.load_state(ckpt.state);
    } else {
      zero_.init_params(c_.seed);
    }
    const bool lead = world_.rank() == 0;
    const std::filesystem::path out = c_.dir;
    std::unique_ptr<ProgressLog> log;
    std::unique_ptr<TensorBoardLog> board;  // output.tensorboard
    if (lead) {
      if (options_.resume.empty() && c_.overwrite) clear_previous_run(out);
      std::filesystem::create_directories(out / "images");
      std::ofstream(out / "config.json") << c_.json.dump(2) << "\n";
      log = std::make_unique<ProgressLog>(out, start, options_.console);
      if (c_.tensorboard) board = std::make_unique<TensorBoardLog>(out, start);
      log->note("sfm train: model " + c_.model.name + " (" + std::to_string(c_.model.tokens()) + " tokens), batch " +
                std::to_string(c_.batch) + " (dp " + std::to_string(c_.dp) + " × " +
                std::to_string(c_.batch / (c_.dp * c_.micro_batch)) + " micro-batches of " +
 std::to_string(c_.micro_batch) + ")" +
                (c_.cp > 1 ? ", cp " + std::to_string(c_.cp) + " (" + std::string(attention_kind_name(c_.attention)) +
                                 " attention)"
                           : std::string()) +
                ", ZeRO-" + std::to_string(Stage::value) + ", " + std::string(precision_name(Prec::kind)) + ", steps " +
                std::to_string(start) + " → " + std::to_string(c_.steps) + ", " + std::to_string(omp_get_max_threads()) +
                " compute and " + std::to_string(c_.threads) + " data threads per rank, output " + out.string());
    }
    const int64_t per_rank = mesh_.local_batch(c_.batch);
    PrefetchLoader loader(sampler, LoaderPlan{start, c_.steps, per_rank, c_.micro_batch, mesh_.first_sample(c_.batch)},
                          c_.threads, c_.prefetch);
    std::unique_ptr<StopSignal> stop;
    if (options_.handle_signals) stop = std::make_unique<StopSignal>();
    if (options_.started) options_.started();

    const ModelConfig& m = c_.model;
    const int64_t N = m.tokens(), len_keep = train_len_keep(c_);
    const double hidden_total = double(c_.batch) * double(N - len_keep);
    const LrSchedule schedule{scaled_lr(c_.lr, c_.batch), c_.min_lr, c_.warmup_steps, c_.steps};
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto window_start = t0;
    double window_loss = 0, window_wait = 0, window_norm = 0;
    int64_t window_steps = 0, window_good = 0, skipped = 0, bad_in_row = 0;
    int64_t data_skips = 0;                // reads skipped (data.on_error skip) over all ranks
    std::set<std::string> skip_errors;     // the failures rank 0 has named
    TrainResult result;
    result.first_step = result.end_step = start;
    for (int64_t step = start; step < c_.steps; ++step) {
      // The replica of dp index 0 gathers sample 0's prediction over its cp ranks; rank 0 writes it.
      const bool preview = mesh_.dp_index() == 0 && c_.images_every > 0 &&
                           ((step + 1) % c_.images_every == 0 || step + 1 == c_.steps);
      double loss = 0, wait = 0, step_skips = 0;
      PreviewSample sample;
      for (int64_t micro = 0; micro < loader.plan().micro_batches(); ++micro) {
        const LoadedBatch batch = loader.next();
        wait += batch.wait_s;
        step_skips += double(batch.skipped.size());
        if (lead)
          for (const std::string& error : batch.skipped)
            if (skip_errors.insert(error).second)
              log->note("sfm train: step " + std::to_string(step + 1) + ": a crop could not be read and was redrawn " +
                        "(data.on_error skip; each failure is named once): " + error);
        const MaskPlan mask = mask_from_noise(
            mask_noise(c_.seed, uint64_t(step), uint64_t(batch.first_sample), c_.micro_batch, N), c_.micro_batch, N,
            len_keep);
        loss += model_.forward(model_input(batch), mask, hidden_total);
        if (preview && micro == 0) sample = capture(batch, mask);
        model_.backward();
      }
      double sums[2] = {loss, step_skips};
      reduce_scalars(sums, ReduceOp::sum);
      double maxima[2] = {wait, stop && stop->requested() ? 1.0 : 0.0};
      reduce_scalars(maxima, ReduceOp::max);
      const double lr = schedule.at(step);
      const double step_loss = sums[0] / double(c_.cp);
      // The ranks of a cp group read the same samples: count their skips once.
      data_skips += std::llround(sums[1] / double(c_.cp));
      const double drawn = double(step + 1 - start) * double(c_.batch);
      if (double(data_skips) > std::ceil(c_.max_skip_fraction * drawn))
        throw RunStopped("step " + std::to_string(step + 1) + ": " + std::to_string(data_skips) +
                         " crop reads failed and were skipped in the " + std::to_string(int64_t(drawn)) +
                         " samples drawn since the run started or resumed, more than data.max_skip_fraction = " +
                         c_.json.at("data").at("max_skip_fraction").dump() + " of them; the run stops, " +
                         (last_checkpoint.empty() ? std::string("before its first checkpoint")
                                                  : "its last checkpoint is " + last_checkpoint.string()));
      double grad_norm = std::nan("");
      if (std::isfinite(step_loss)) grad_norm = zero_.step(lr, c_.clip_grad);
      else zero_.discard_grads();
      result.losses.push_back(step_loss);
      result.data_wait_s += maxima[0];
      result.end_step = step + 1;
      window_wait += maxima[0], ++window_steps;
      if (std::isfinite(step_loss) && std::isfinite(grad_norm)) {
        window_loss += step_loss, window_norm += grad_norm, ++window_good, bad_in_row = 0;
      } else {
        ++skipped, ++bad_in_row;
        const std::string what = "step " + std::to_string(step + 1) + ": the " +
                                 (std::isfinite(step_loss) ? "gradient norm is " + nonfinite_text(grad_norm)
                                                           : "loss is " + nonfinite_text(step_loss));
        if (bad_in_row > c_.skip_nonfinite)
          throw RunStopped(what + (bad_in_row > 1 ? " (" + std::to_string(bad_in_row) + " steps in a row, more than " +
                                                        "train.skip_nonfinite = " + std::to_string(c_.skip_nonfinite) + ")"
                                                  : std::string(" (train.skip_nonfinite = 0: stop at once)")) +
                           "; the run stops, " +
                           (last_checkpoint.empty() ? std::string("before its first checkpoint")
                                                    : "its last checkpoint is " + last_checkpoint.string()));
        if (lead)
          log->note("sfm train: " + what + "; update skipped (" + std::to_string(bad_in_row) + " in a row, at most " +
                    std::to_string(c_.skip_nonfinite) + ")");
      }

      const bool last = step + 1 == c_.steps, interrupted = maxima[1] != 0;
      if (lead && ((step + 1) % c_.log_every == 0 || step == start || last || interrupted)) {
        const auto now = clock::now();
        StepReport r;
        r.step = step + 1, r.total = c_.steps;
        r.loss = window_loss / double(window_good), r.lr = lr, r.grad_norm = window_norm / double(window_good);
        r.skipped_steps = skipped;
        r.data_skips = data_skips;
        r.mask_ratio = double(N - len_keep) / double(N);
        r.window_s = std::chrono::duration<double>(now - window_start).count();
        r.samples_per_s = double(window_steps * c_.batch) / r.window_s;
        r.tokens_per_s = r.samples_per_s * double(N);
        r.data_wait_s = window_wait;
        r.elapsed_s = std::chrono::duration<double>(now - t0).count();
        r.eta_s = r.elapsed_s / double(step + 1 - start) * double(c_.steps - step - 1);
        log->report(r);
        if (board) board->report(r);
        window_start = now, window_loss = window_wait = window_norm = 0, window_steps = window_good = 0;
      }
      if (preview && lead) {
        const GrayImage image = preview_image(m, sample);
        const io::EncodedImage file = io::encode_gray_image(image.width, image.height, image.pixels);
        log->note("sfm train: wrote " + io::write_image(out / "images" / ("step-" + std::to_string(step + 1)), file).string());
        // TensorBoard shows PNG, not the PGM of a build without libpng.
        if (board && file.extension == ".png") board->image("preview", step + 1, image.width, image.height, file.bytes);
      }
      if (last || interrupted || (c_.checkpoint_every > 0 && (step + 1) % c_.checkpoint_every == 0)) {
        result.checkpoint = last_checkpoint = save(step + 1, last_checkpoint);
        if (lead) log->note("sfm train: checkpoint " + result.checkpoint.string());
      }
      if (interrupted) {
        result.interrupted = true;
        if (lead)
          log->note("sfm train: interrupted after step " + std::to_string(step + 1) + "; continue with --resume " +
                    out.string());
        break;
      }
    }
    result.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (lead) log->finish();
    return result;
  }

 private:
  void check_resumable(const RunCheckpoint& ckpt) const {
    const nlohmann::json& saved = ckpt.trainer.at("config");
    for (const char* key : {"batch", "seed"})
      SFM_CHECK(saved.at("train").at(key) == c_.json.at("train").at(key), "--resume ", ckpt.dir.string(), ": train.",
                key, " was ", saved.at("train").at(key).dump(), ", the config says ", c_.json.at("train").at(key).dump(),
                "; the run would not continue the same sample sequence");
  }

  // The micro-batch's crops where the model reads them: the loader's host buffer on a host-memory
  // backend (Cpu); elsewhere (Cuda) a copy in backend memory, in one buffer reallocated only when
  // the size changes.
  const float* model_input(const LoadedBatch& batch) {
    if constexpr (Backend::host_memory) {
      return batch.crops.data();
    } else {
      if (crops_.size() != batch.crops.size()) crops_ = Array<float>(batch.crops.size());
      copy_from_host(Backend{}, crops_.data(), batch.crops.data(), int64_t(batch.crops.size()));
      return crops_.data();
    }
  }

  // All-reduces a few host scalars over the world through backend memory, as ZeroOptimizer's norm
  // partials: a device communicator (NcclComm) takes device pointers. On Cpu the copies are exact.
  void reduce_scalars(std::span<double> values, ReduceOp op) {
    if (scalars_.size() != values.size()) scalars_ = Array<double>(values.size());
    copy_from_host(Backend{}, scalars_.data(), values.data(), int64_t(values.size()));
    order_after_compute(Backend{}, world_);
    world_.all_reduce(std::span<double>(scalars_.data(), scalars_.size()), op);
    copy_to_host(Backend{}, values.data(), scalars_.data(), int64_t(values.size()));
  }

  // Sample 0 of the micro-batch just run: its volume, mask and prediction (collective over the cp
  // group, which gathers the prediction's rows).
  PreviewSample capture(const LoadedBatch& batch, const MaskPlan& mask) {
    const int64_t N = c_.model.tokens(), P = c_.model.patch_size();
    const std::vector<float> rows = model_.gather_prediction(0);
    PreviewSample s;
    s.volume.assign(batch.crops.begin(), batch.crops.begin() + N * P);
    s.hidden.assign(mask.hidden.begin(), mask.hidden.begin() + N);
    s.prediction.assign(rows.begin() + P, rows.end());  // skipping the cls row
    return s;
  }

  static std::string nonfinite_text(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

  // Writes checkpoint-<step> (collective); `previous` is the last one, named when the state is not
  // finite and nothing is written.
  std::filesystem::path save(int64_t step, const std::filesystem::path& previous) {
    const FullOptimizerState state = zero_.gather_state();  // collective; every rank holds the result
    for (const auto& [values, name] : {std::pair{&state.params, "weights"}, std::pair{&state.exp_avg, "exp_avg"},
                                       std::pair{&state.exp_avg_sq, "exp_avg_sq"}})
      if (!std::all_of(values->begin(), values->end(), [](float v) { return std::isfinite(v); }))
        throw RunStopped("step " + std::to_string(step) + ": the " + name + " hold a non-finite value; no checkpoint " +
                         "of them is written, the run stops" +
                         (previous.empty() ? std::string() : ", its last checkpoint is " + previous.string()));
    std::filesystem::path dir;
    if (world_.rank() == 0) {
      const nlohmann::json trainer{{"run", run_id_},
                                   {"samples_seen", step * c_.batch},
                                   {"data", {{"next_step", step}, {"seed", c_.seed}, {"samples_per_step", c_.batch}}},
                                   {"world", {{"dp", c_.dp}, {"cp", c_.cp}, {"zero", c_.zero.value()}}},
                                   {"config", c_.json}};
      dir = save_run_checkpoint(c_.dir, step, c_.model, model_.table(), model_.pos_embed(), model_.decoder_pos_embed(),
                                state, trainer, c_.keep_checkpoints);
    }
    world_.barrier();
    return dir.empty() ? std::filesystem::path(c_.dir) / ("checkpoint-" + std::to_string(step)) : dir;
  }

  const TrainConfig& c_;
  Comm& world_;
  TrainOptions options_;
  Mesh<Comm> mesh_;
  VitMae<Backend, Prec> model_;
  ZeroOptimizer<Stage, Comm, Backend, Prec> zero_;
  std::unique_ptr<ContextParallel<float>> context_;  // cp > 1 (fp32): the model's context-parallel group
  Array<float> crops_;     // Cuda: the micro-batch's crops on the device
  Array<double> scalars_;  // the scalars of reduce_scalars
  std::string run_id_ = new_run_id();  // trainer.json's "run"; a resumed run keeps its checkpoint's
};

// Runs `config` on `world`, dispatching parallel.zero and train.precision onto
// ZeroOptimizer<ZeroStage<k>, Comm, Backend, Precision>. train<Cpu>(config, world): the CPU trainer;
// train<Cuda>(config, nccl_world) in a file nvcc compiles.
template <KernelBackend Backend, class Comm>
TrainResult train(const TrainConfig& given, Comm& world, const TrainOptions& options = {}) {
  const TrainConfig config = options.resume.empty() ? given : resumed_config(given, options.resume);
  check_train_setup<Backend>(config, world, options);
  return visit_precision(config.precision, [&]<class Prec>(Prec) -> TrainResult {
    if constexpr (ComputesIn<Backend, typename Prec::Compute>)
      return config.zero.visit(
          [&]<class Stage>(Stage) { return Trainer<Stage, Comm, Backend, Prec>(config, world, options).run(); });
    else
      fail("config: train.precision ", precision_name(Prec::kind), ": the ", Backend::name, " backend has no kernels for it");
  });
}

}  // namespace sfm
