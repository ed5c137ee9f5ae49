// `sfm eval` end to end: the loss it prints for a checkpoint equals the library's loss and the
// PyTorch reference's on the same volume and noise; bad arguments and files exit 2 with one line.
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/checkpoint.hpp"
#include "sfm_test.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
using sfm::test::run_sfm;

namespace {

struct Fixture {
  fs::path dir;
  double library_loss;
};

// A tiny checkpoint, a batch of 2 volumes and masking noise, written to `dir`.
Fixture write_fixture(const std::string& name) {
  Fixture f{sfm::test::scratch_dir(name), 0};
  sfm::VitMae<sfm::Cpu> model(sfm::named_model_config("tiny"));
  model.init_weights(2);
  sfm::save_model(f.dir / "model.safetensors", model);
  const auto& c = model.config();
  std::vector<float> volume(size_t(2 * c.grid().voxels()));
  sfm::Rng(3, 0).fill_normal(volume, 0.0f, 1.0f);
  const std::vector<float> noise = sfm::mask_noise(4, 0, 0, 2, c.tokens());
  sfm::write_npy(f.dir / "volume.npy", volume.data(), {2, c.crop[0], c.crop[1], c.crop[2]});
  sfm::write_npy(f.dir / "noise.npy", noise.data(), {2, c.tokens()});
  f.library_loss = model.forward(volume.data(), sfm::mask_from_noise(noise, 2, c.tokens(), c.default_len_keep()));
  return f;
}

}  // namespace

TEST_CASE("sfm eval prints the loss of a checkpoint, equal to the library's and PyTorch's", "[cli]") {
  const Fixture f = write_fixture("cli_eval");
  const auto result = run_sfm({"eval", "--checkpoint", (f.dir / "model.safetensors").string(), "--volume",
                               (f.dir / "volume.npy").string(), "--noise", (f.dir / "noise.npy").string()},
                              f.dir);
  INFO(result.err);
  REQUIRE(result.status == 0);
  const json line = json::parse(result.out);
  CHECK(line.at("loss").get<double>() == f.library_loss);
  CHECK(line.at("tokens").get<int64_t>() == 64);
  CHECK(line.at("visible").get<int64_t>() == 16);

  sfm::test::run_command(sfm::test::reference_command(
      "eval --checkpoint " + (f.dir / "model.safetensors").string() + " --volume " + (f.dir / "volume.npy").string() +
      " --noise " + (f.dir / "noise.npy").string() + " > " + (f.dir / "torch.json").string()));
  const json torch = json::parse(sfm::test::read_text(f.dir / "torch.json"));
  CHECK(std::abs(line.at("loss").get<double>() - torch.at("loss").get<double>()) <= 1e-5 * f.library_loss);
}

TEST_CASE("sfm eval: bad arguments and files exit 2 with one line on stderr", "[cli]") {
  const Fixture f = write_fixture("cli_eval_errors");
  const std::string model = (f.dir / "model.safetensors").string(), volume = (f.dir / "volume.npy").string();
  std::ofstream(f.dir / "garbage.safetensors") << "not a safetensors file";
  std::vector<float> small(8 * 8 * 8);
  sfm::write_npy(f.dir / "small.npy", small.data(), {8, 8, 8});
  std::vector<float> nan(32 * 32 * 32, std::numeric_limits<float>::quiet_NaN());
  sfm::write_npy(f.dir / "nan.npy", nan.data(), {32, 32, 32});
  sfm::write_npy(f.dir / "empty.npy", nan.data(), {0, 32, 32, 32});
  std::ofstream(f.dir / "no_model.json") << R"({"train": {}})";
  const std::string survey = (f.dir / "survey").string();
  REQUIRE(run_sfm({"synth", "--out", survey, "--shape", "40,40,48"}, f.dir).status == 0);
  const std::vector<std::vector<std::string>> cases = {
      {"eval", "--volume", volume},                                                        // no checkpoint
      {"eval", "--checkpoint", (f.dir / "missing.safetensors").string(), "--volume", volume},  // missing file
      {"eval", "--checkpoint", (f.dir / "garbage.safetensors").string(), "--volume", volume},  // corrupt file
      {"eval", "--checkpoint", model, "--volume", (f.dir / "small.npy").string()},           // wrong crop
      {"eval", "--checkpoint", model, "--volume", volume, "--noise", (f.dir / "small.npy").string()},  // noise
      {"eval", "--checkpoint", model, "--volume", volume, "--seed", "x"},                    // not an integer
      {"eval", "--checkpoint", model, "--volume", volume, "--bogus", "1"},                   // unknown option
      {"eval", "--checkpoint", model, "--volume", (f.dir / "nan.npy").string()},             // the loss is NaN
      {"eval", "--checkpoint", model, "--volume", (f.dir / "empty.npy").string()},           // no volume
      {"eval", "--checkpoint", model, "--volume", volume, "--config", (f.dir / "no_model.json").string()},
      {"eval", "--checkpoint", model, "--data", survey, "--crops", "1099511627776"},         // past the maximum
  };
  for (const auto& args : cases) {
    const auto result = run_sfm(args, f.dir);
    INFO("sfm " << args[1] << " ... " << args.back() << "\nstderr: " << result.err);
    CHECK(result.status == 2);
    CHECK(result.err_lines().size() == 1);
    CHECK(result.err.find("json.exception") == std::string::npos);
    CHECK(result.out.empty());
  }
}
