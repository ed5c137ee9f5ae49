// `sfm eval`: the MAE loss of a checkpoint, as one JSON line, on
//   --volume V.npy  volumes [B, Z, Y, X] or [Z, Y, X] float32 of the model's crop; the masking
//                   noise [B, N] comes from --noise or is drawn from --seed; or on
//   --data URL      K (--crops) random crops of a Zarr/MDIO volume (local, http(s)://, s3://),
//                   normalised per crop (--normalize, default robust) as in training; the mean loss
//                   over all their hidden tokens.
// --checkpoint is a model.safetensors or a training checkpoint/output directory. The model config
// comes from the checkpoint's metadata unless --config gives one. A loss that is not finite (NaN
// values in the volume, say) is an error, not a JSON null; --crops is at most max_eval_crops.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/data/sampler.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm/train/run_checkpoint.hpp"

namespace sfm::cli {
namespace {

// The most crops --crops takes: ample for a stable mean, and a typo guard for a run of days.
constexpr int64_t max_eval_crops = int64_t(1) << 20;

// The printed loss, refused when it is not finite.
double finite_loss(double loss, const std::string& of) {
  SFM_CHECK(std::isfinite(loss), "the loss on ", of, " is ", loss, ": the checkpoint's weights or the volume hold ",
            "non-finite values");
  return loss;
}

// Mean MAE loss over `crops` random crops of `url`, in batches of at most 8.
double data_loss(VitMae<Cpu>& model, const Args& args, int64_t crops, uint64_t seed) {
  const ModelConfig& c = model.config();
  SamplerOptions o;
  o.crop = c.crop;
  o.normalization.kind = normalization_kind_from_string(args.get("normalize", "robust"));
  o.seed = seed;
  const CropSampler sampler({open_volume(args.get("data"), args.get("variable"))}, o);
  const int64_t N = c.tokens(), K = RandomMask::len_keep(c), voxels = sampler.crop_voxels();
  const double hidden = double(crops) * double(N - K);
  double loss = 0;
  for (int64_t first = 0; first < crops; first += 8) {
    const int64_t batch = std::min<int64_t>(8, crops - first);
    std::vector<float> volumes(size_t(batch * voxels));
    for (int64_t b = 0; b < batch; ++b)
      sampler.sample(0, uint64_t(first + b), std::span<float>(volumes).subspan(size_t(b * voxels), size_t(voxels)));
    loss += model.forward(volumes.data(), mask_from_noise(mask_noise(seed, 0, uint64_t(first), batch, N), batch, N, K),
                          hidden);
  }
  return loss;
}

}  // namespace

int run_eval(int argc, char** argv) {
  const Args args = parse_args(argc, argv, 2,
                               {"checkpoint", "volume", "data", "variable", "crops", "normalize", "noise", "config", "seed"});
  SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
  SFM_CHECK(args.has("volume") != args.has("data"), "give one of --volume V.npy and --data URL");
  std::string checkpoint = args.require("checkpoint");
  if (std::filesystem::is_directory(checkpoint))
    checkpoint = (resolve_run_checkpoint(checkpoint) / "model.safetensors").string();
  const auto file = SafetensorsFile::load(checkpoint);
  ModelConfig config;
  if (args.has("config")) {
    const nlohmann::json given = read_json_file(args.get("config"));
    SFM_CHECK(given.is_object() && given.contains("model"), args.get("config"), ": no \"model\" (a name or a model object)");
    config = model_config_from_json(given.at("model"));
  } else {
    config = checkpoint_config(file, checkpoint);
  }
  VitMae<Cpu> model(config);
  load_model_weights(model, file, checkpoint);
  const uint64_t seed = uint64_t(parse_int(args.get("seed", "0"), "--seed"));
  if (args.has("data")) {
    const int64_t crops = parse_int(args.get("crops", "32"), "--crops");
    SFM_CHECK(crops >= 1 && crops <= max_eval_crops, "--crops must be between 1 and ", max_eval_crops, ", got ", crops);
    const double loss = finite_loss(data_loss(model, args, crops, seed), std::to_string(crops) + " crops of " + args.get("data"));
    std::printf("%s\n", nlohmann::json{{"loss", loss}, {"tokens", config.tokens()}, {"visible", RandomMask::len_keep(config)},
                                       {"crops", crops}}.dump().c_str());
    return 0;
  }

  const std::string volume_path = args.require("volume");
  const Tensor<float> volume = read_npy_as<float>(volume_path);
  const Shape& s = volume.shape();
  SFM_CHECK(s.size() == 3 || s.size() == 4, volume_path, ": expected [B, Z, Y, X] or [Z, Y, X], got ",
            shape_string(s));
  const int64_t batch = s.size() == 4 ? s[0] : 1;
  SFM_CHECK(batch >= 1, volume_path, ": holds no volume (", shape_string(s), ")");
  const Shape crop(s.end() - 3, s.end());
  SFM_CHECK(crop == Shape(config.crop.begin(), config.crop.end()), volume_path, ": volume crop ", shape_string(crop),
            " does not match the model's crop ", shape_string(Shape(config.crop.begin(), config.crop.end())));

  const int64_t N = config.tokens();
  std::vector<float> noise;
  if (args.has("noise")) {
    const Tensor<float> given = read_npy_as<float>(args.get("noise"));
    SFM_CHECK(int64_t(given.size()) == batch * N, args.get("noise"), ": expected noise [", batch, ", ", N, "], got ",
              shape_string(given.shape()));
    noise.assign(given.span().begin(), given.span().end());
  } else {
    noise = mask_noise(seed, 0, 0, batch, N);
  }
  const MaskPlan mask = mask_from_noise(noise, batch, N, RandomMask::len_keep(config));
  const double loss = finite_loss(model.forward(volume.data(), mask), volume_path);
  std::printf("%s\n", nlohmann::json{{"loss", loss}, {"tokens", N}, {"visible", mask.len_keep}, {"batch", batch}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace sfm::cli
