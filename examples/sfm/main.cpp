// sfm: train and evaluate 3D ViT masked autoencoders on seismic volumes.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.hpp"

namespace {

constexpr const char* usage = R"(usage: sfm <command> [options]

commands:
  train [CONFIG.json] [--set key.path=value ...] [--resume DIR]
                                                 train a ViT-MAE (see docs/training.md); under
                                                 mpirun/srun on all ranks
  eval --checkpoint M.safetensors (--volume V.npy | --data URL) [--crops K] [--normalize N]
       [--noise N.npy] [--config C.json] [--seed S]
                                                 MAE loss of a model on volumes or on K random crops
                                                 of a Zarr/MDIO volume; prints one JSON line
  bench train --config NAME [--backend cpu|cuda] [--precision fp32|tf32] [--steps K] [--batch B]
                                                 time training steps on synthetic crops; prints JSON
  zarr info URL [--array NAME]                   a Zarr array, group or MDIO dataset as one JSON object
  zarr read URL [--array NAME] --start z,y,x --shape a,b,c --out BOX.npy
                                                 a box of it as float32 .npy (URL: path, http(s)://, s3://)
  synth --out PATH --shape Z,Y,X [--chunks a,b,c] [--format mdio|zarr2|zarr3] [--seed S]
                                                 write a synthetic seismic volume (MDIO v1 by default)
  help                                           this text
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0) {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "train") return sfm::cli::run_train(argc, argv);
    if (command == "eval") return sfm::cli::run_eval(argc, argv);
    if (command == "zarr") return sfm::cli::run_zarr(argc, argv);
    if (command == "synth") return sfm::cli::run_synth(argc, argv);
    if (command == "bench") return sfm::cli::run_bench(argc, argv);
    sfm::fail("unknown command '", command, "' (try: sfm help)");
  } catch (const sfm::Error& e) {
    std::fprintf(stderr, "sfm %s: error: %s\n", command.c_str(), e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sfm %s: error: %s\n", command.c_str(), e.what());
  }
  return 2;
}
