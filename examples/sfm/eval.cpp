// `sfm eval`: the MAE loss of a checkpoint on volumes from a .npy file, as one JSON line.
//
// The volume is [B, Z, Y, X] or [Z, Y, X] float32 of the model's crop; the masking noise [B, N]
// comes from --noise or is drawn from --seed. The model config comes from the checkpoint's
// metadata unless --config gives one.
#include <cstdio>

#include "cli.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/train/checkpoint.hpp"

namespace sfm::cli {

int run_eval(int argc, char** argv) {
  const Args args = parse_args(argc, argv, 2, {"checkpoint", "volume", "noise", "config", "seed"});
  SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
  const std::string checkpoint = args.require("checkpoint");
  const auto file = SafetensorsFile::load(checkpoint);
  const ModelConfig config = args.has("config") ? model_config_from_json(read_json_file(args.get("config")).at("model"))
                                                : checkpoint_config(file, checkpoint);
  VitMae<Cpu> model(config);
  load_model_weights(model, file, checkpoint);

  const std::string volume_path = args.require("volume");
  const Tensor<float> volume = read_npy_as<float>(volume_path);
  const Shape& s = volume.shape();
  SFM_CHECK(s.size() == 3 || s.size() == 4, volume_path, ": expected [B, Z, Y, X] or [Z, Y, X], got ",
            shape_string(s));
  const int64_t batch = s.size() == 4 ? s[0] : 1;
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
    noise = mask_noise(uint64_t(parse_int(args.get("seed", "0"), "--seed")), 0, 0, batch, N);
  }
  const MaskPlan mask = mask_from_noise(noise, batch, N, RandomMask::len_keep(config));
  const double loss = model.forward(volume.data(), mask);
  std::printf("%s\n", nlohmann::json{{"loss", loss}, {"tokens", N}, {"visible", mask.len_keep}, {"batch", batch}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace sfm::cli
