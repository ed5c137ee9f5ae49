// `sfm embed`: a trained encoder's token features over a whole survey, as a Zarr v3 group
// (infer/embed_output.hpp) — the windows, their batches over ranks and the stitching are
// infer/embed.hpp's, the model half embed_run.hpp's.
//
// --checkpoint is a model.safetensors or a training checkpoint/output directory; the survey is read
// as training reads it (open_volume: a Zarr array or MDIO dataset on a path, http(s):// or s3://),
// each window normalised per crop as in training: --normalize, else the run's data.normalize when
// the checkpoint sits in a run folder, else robust. Under mpirun/srun the windows are split over
// all ranks and rank 0 writes; the output does not depend on the number of ranks. An interrupted
// embed continues where it stopped when the same command is run again; an OUT holding anything
// else is refused unless --overwrite. Rank 0 prints a progress line on stderr and one JSON line on
// stdout at the end.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli.hpp"
#include "embed_run.hpp"
#include "launcher.hpp"
#include "sfm/core/file_io.hpp"
#include "sfm/infer/embed_output.hpp"
#include "sfm/infer/feature_preview.hpp"
#include "sfm/io/zarr/codecs.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/config.hpp"
#include "sfm/train/progress.hpp"
#include "sfm/train/run_checkpoint.hpp"
#if __has_include(<mpi.h>)
#include "sfm/comm/mpi.hpp"
#endif

namespace sfm::cli {
namespace {

namespace fs = std::filesystem;

// The checkpoint file --checkpoint names, and the run folder's checkpoint directory when it is in one.
struct CheckpointSource {
  fs::path model;       // model.safetensors
  fs::path run_folder;  // the checkpoint-N directory holding trainer.json; empty for a bare model file
};

CheckpointSource resolve_checkpoint(const std::string& given) {
  if (fs::is_directory(given)) {
    const fs::path dir = resolve_run_checkpoint(given);
    return {dir / "model.safetensors", dir};
  }
  SFM_CHECK(fs::is_regular_file(given), "--checkpoint ", given, ": no such file or directory");
  const fs::path parent = fs::path(given).parent_path();
  return {given, fs::exists(parent / "trainer.json") ? parent : fs::path()};
}

// --normalize, else the run's data.normalize and clip_percentile, else training's default (robust).
CropNormalization embed_normalization(const Args& args, const CheckpointSource& source) {
  nlohmann::json data = default_train_json().at("data");
  if (!source.run_folder.empty()) {
    const nlohmann::json run = read_trainer_json(source.run_folder).at("config");
    if (run.contains("data") && run["data"].is_object()) data.update(run["data"]);
  }
  if (args.has("normalize")) data["normalize"] = args.get("normalize");
  CropNormalization n;
  n.kind = normalization_kind_from_string(data.at("normalize").get<std::string>());
  n.clip_percentile = data.at("clip_percentile").get<double>();
  return n;
}

std::string_view normalization_name(CropNormalization::Kind kind) {
  return kind == CropNormalization::Kind::none ? "none" : kind == CropNormalization::Kind::standard ? "standard" : "robust";
}

// The progress line: rewritten in place on a terminal, one line per second otherwise.
class EmbedConsole {
 public:
  explicit EmbedConsole(int64_t survey_bytes) : survey_bytes_(survey_bytes), terminal_(isatty(fileno(stderr)) != 0) {}

  void report(const EmbedProgress& p) {
    const bool last = p.windows_done == p.windows_total;
    if (!last && p.seconds < shown_ + 1.0) return;
    shown_ = p.seconds;
    const double rate = p.seconds > 0 ? double(p.windows_done) / p.seconds : 0.0;
    const double eta = rate > 0 ? double(p.windows_total - p.windows_done) / rate : 0.0;
    std::fprintf(stderr, "%sembed: windows %lld/%lld | slabs %lld/%lld | %.2f windows/s | %.1f MB/s of survey | ETA %s%s",
                 terminal_ ? "\r" : "", (long long)p.windows_done, (long long)p.windows_total,
                 (long long)p.slabs_written, (long long)p.slabs_total, rate,
                 p.seconds > 0 ? double(survey_bytes_) * double(p.windows_done) / double(std::max<int64_t>(p.windows_total, 1)) / p.seconds / 1e6 : 0.0,
                 format_duration(eta).c_str(), terminal_ && !last ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  int64_t survey_bytes_;
  bool terminal_;
  double shown_ = -1.0;
};

template <class Comm>
void embed_on(const EmbedRequest& request, BackendKind backend, Comm& world) {
  if (backend == BackendKind::cpu) return run_embedding<Cpu>(request, world);
#ifdef SFM_CLI_HAVE_CUDA
  if constexpr (std::is_same_v<Comm, SerialComm>) {
    embed_cuda(request, world);
  } else {
#ifdef SFM_CLI_HAVE_CUDA_TRAIN
    embed_cuda(request, world);
#else
    fail("--backend cuda under a launcher: this sfm was built without MPI for its CUDA half");
#endif
  }
#else
  fail("--backend cuda: this sfm was built without CUDA");
#endif
}

template <class Comm>
int embed(const Args& args, Comm& world, bool& started) {
  const CheckpointSource source = resolve_checkpoint(args.require("checkpoint"));
  std::vector<std::byte> bytes = read_file(source.model);
  const uint32_t crc = io::zarr::codec::crc32c(bytes);
  const SafetensorsFile file = SafetensorsFile::from_bytes(std::move(bytes), source.model.string());
  EmbedRequest request;
  request.config = checkpoint_config(file, source.model.string());
  request.checkpoint = &file;
  request.checkpoint_path = source.model.string();
  const ModelConfig& c = request.config;
  const BackendKind backend = parse_backend_kind(args.get("backend", "cpu"), "--backend");
  request.precision = parse_precision_kind(args.get("precision", "fp32"), "--precision");
  request.options.normalization = embed_normalization(args, source);
  request.options.batch = parse_int(args.get("batch", "4"), "--batch");
  SFM_CHECK(request.options.batch >= 1 && request.options.batch <= 4096, "--batch must be between 1 and 4096, got ",
            request.options.batch);
  Box3 stride = c.crop;
  if (args.has("stride")) {
    const std::vector<int64_t> s = parse_int_list(args.get("stride"), "--stride");
    SFM_CHECK(s.size() == 3, "--stride: expected z,y,x (three voxel counts), got ", s.size(), " values");
    stride = {s[0], s[1], s[2]};
  }
  const std::string url = args.require("data"), variable = args.get("variable");
  const fs::path out = args.require("out");
  SFM_CHECK(out.string().find("://") == std::string::npos, "--out ", out.string(),
            ": sfm embed writes to a local or shared file system path, not a URL");
  const std::unique_ptr<VolumeSource> volume = open_volume(url, variable);
  request.volume = volume.get();
  request.plan = plan_windows(volume->shape(), c.crop, c.patch, stride);
  const WindowPlan& plan = request.plan;

  const nlohmann::json job = {
      {"checkpoint", fs::absolute(source.model).lexically_normal().string()},
      {"checkpoint_crc32c", crc},
      {"data", url.find("://") == std::string::npos ? fs::absolute(url).lexically_normal().string() : url},
      {"variable", variable},
      {"survey_shape", volume->shape()},
      {"model", to_json(c)},
      {"stride", stride},
      {"normalize", {{"kind", normalization_name(request.options.normalization.kind)},
                     {"clip_percentile", request.options.normalization.clip_percentile}}},
      {"precision", precision_name(request.precision)},
  };
  // Rank 0 opens the output and says where to start; -1 tells the other ranks it refused.
  std::optional<EmbeddingOutput> output;
  int64_t first_slab = -1;
  std::optional<Error> refused;
  if (world.rank() == 0) try {
      output.emplace(out, plan, c.dim, job, survey_axes(url, variable, volume->shape()), args.has("overwrite"));
      first_slab = output->first_missing_slab();
    } catch (const Error& e) {
      refused = e;
    }
  world.broadcast(std::span<int64_t>(&first_slab, 1), 0);
  if (refused) throw *refused;
  if (first_slab < 0) return 2;  // rank 0 reports the error
  request.first_slab = first_slab;

  EmbedConsole console(box_voxels(volume->shape()) * int64_t(sizeof(float)));
  int64_t windows = 0;
  double seconds = 0;
  if (world.rank() == 0) {
    if (first_slab == plan.slabs())
      std::fprintf(stderr, "sfm embed: %s is complete; nothing to do\n", out.c_str());
    else if (output->resumed())
      std::fprintf(stderr, "sfm embed: resuming %s at slab %lld of %lld\n", out.c_str(), (long long)first_slab,
                   (long long)plan.slabs());
    request.sink = [&](int64_t slab, std::vector<float>&& features) { output->write_slab(slab, features); };
    request.progress = [&](const EmbedProgress& p) {
      windows = p.windows_done;
      seconds = p.seconds;
      console.report(p);
    };
  }
  started = true;
  embed_on(request, backend, world);
  if (world.rank() != 0) return 0;
  if (args.has("preview"))
    write_feature_preview(args.get("preview"), *volume, plan, out / "features");
  const double survey_mb = double(box_voxels(volume->shape())) * sizeof(float) / 1e6;
  const double share = plan.count() > 0 ? double(windows) / double(plan.count()) : 0.0;
  std::printf("%s\n", nlohmann::json{{"out", out.string()},
                                     {"grid", plan.grid},
                                     {"dim", c.dim},
                                     {"windows", plan.count()},
                                     {"windows_embedded", windows},
                                     {"first_slab", first_slab},
                                     {"seconds", seconds},
                                     {"windows_per_s", seconds > 0 ? double(windows) / seconds : 0.0},
                                     {"survey_mb_per_s", seconds > 0 ? survey_mb * share / seconds : 0.0},
                                     {"ranks", world.size()}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int run_embed(int argc, char** argv) {
  const int rank = launcher_rank();
  [[maybe_unused]] const int size = launcher_size();
  bool started = false;
  try {
    const Args args = parse_args(argc, argv, 2,
                                 {"checkpoint", "data", "variable", "out", "stride", "batch", "backend", "precision",
                                  "normalize", "preview"},
                                 {"overwrite"});
    SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
    if (rank < 0) {
      SerialComm world;
      return embed(args, world, started);
    }
    share_cores();
#ifdef SFM_HAS_MPI_COMM
    MpiSession session;
    MpiComm world = MpiComm::world();
    try {
      return embed(args, world, started);
    } catch (const std::exception& e) {
      if (!started || world.size() == 1) throw;
      std::fprintf(stderr, "sfm embed: error on rank %d: %s\n", world.rank(), e.what());
      MPI_Abort(MPI_COMM_WORLD, 2);
      return 2;
    }
#else
    SFM_CHECK(size <= 1, "launched as ", size, " ranks, but this sfm was built without MPI");
    SerialComm world;
    return embed(args, world, started);
#endif
  } catch (const std::exception& e) {
    if (rank > 0 && !started) return 2;  // rank 0 reports the same error
    throw;
  }
}

}  // namespace sfm::cli
