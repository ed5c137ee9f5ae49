// sfm: train and evaluate 3D ViT masked autoencoders on seismic volumes.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.hpp"

namespace {

constexpr const char* usage = R"(usage: sfm <command> [options]

commands:
  train CONFIG.json [--set key.path=value ...]   train a ViT-MAE (see docs/training.md)
  eval --checkpoint M.safetensors --volume V.npy [--noise N.npy] [--config C.json] [--seed S]
                                                 MAE loss of a model on volumes; prints one JSON line
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
    sfm::fail("unknown command '", command, "' (try: sfm help)");
  } catch (const sfm::Error& e) {
    std::fprintf(stderr, "sfm %s: error: %s\n", command.c_str(), e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sfm %s: error: %s\n", command.c_str(), e.what());
  }
  return 2;
}
