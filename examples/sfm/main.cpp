// sfm: train and evaluate 3D ViT masked autoencoders on seismic volumes.
//
// Each command's usage lives in one table: `sfm --help` lists them all, `sfm COMMAND --help` (the
// flag anywhere after the command) prints that command's alone; both exit 0.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.hpp"

namespace {

struct Command {
  const char* name;
  const char* usage;  // the lines after "sfm ": synopsis, then what it does (indented)
  int (*run)(int, char**);
};

constexpr Command commands[] = {
    {"train", R"(train [CONFIG.json] [--set key.path=value ...] [--resume DIR]
    train a ViT-MAE (config schema: docs/training.md); under mpirun/srun on all ranks. --resume
    continues the run in DIR (an output directory or one of its checkpoint-N/) and writes there
)",
     sfm::cli::run_train},
    {"eval", R"(eval --checkpoint M.safetensors (--volume V.npy | --data URL) [--crops K] [--normalize N]
     [--variable NAME] [--noise N.npy] [--config C.json] [--seed S]
    MAE loss of a model on volumes [B, Z, Y, X] or on K (default 32, at most 1048576) random crops
    of a Zarr/MDIO volume, normalised as in training (--normalize robust|standard|none); one JSON line
)",
     sfm::cli::run_eval},
    {"embed", R"(embed --checkpoint M.safetensors --data URL --out OUT.zarr [--variable V] [--stride z,y,x]
      [--batch B] [--backend cpu|cuda] [--precision fp32|bf16] [--normalize N] [--preview P.png] [--overwrite]
    the encoder's token features over a whole survey (sliding windows of the crop, every --stride
    voxels, default the crop; overlaps averaged) as a Zarr v3 group: features [gz, gy, gx, D] at
    patch resolution with the survey's coordinates (docs/embed.md); under mpirun/srun on all ranks.
    Run again to continue an interrupted embed; --preview: PCA colours of the middle slices
)",
     sfm::cli::run_embed},
    {"bench", R"(bench train --config NAME [--backend cpu|cuda] [--precision P] [--steps K] [--batch B] [--warmup W]
    time training steps of a named model on synthetic crops; prints JSON. P: fp32 or bf16 (mixed
    precision) on the CPU, fp32, tf32 (GEMMs on TF32 tensor cores) or bf16 on CUDA
)",
     sfm::cli::run_bench},
    {"zarr", R"(zarr info URL [--array NAME]
    a Zarr array, group or MDIO dataset as one JSON object
zarr read URL [--array NAME] --start z,y,x --shape a,b,c --out BOX.npy
    a box of it as float32 .npy (URL: path, file://, http(s)://, s3://)
)",
     sfm::cli::run_zarr},
    {"synth", R"(synth --out PATH --shape Z,Y,X [--chunks a,b,c] [--format mdio|zarr2|zarr3] [--seed S]
    write a synthetic seismic volume (MDIO v1 by default)
)",
     sfm::cli::run_synth},
};

void print_usage(std::FILE* to) {
  std::fputs("usage: sfm <command> [options]\n\ncommands:\n", to);
  for (const Command& c : commands)
    for (const char* line = c.usage; *line;) {
      const char* end = std::strchr(line, '\n');
      std::fprintf(to, "  %.*s\n", int(end - line), line);
      line = end + 1;
    }
  std::fputs("  help, --help\n      this text; `sfm COMMAND --help`: one command's\n", to);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    for (const Command& c : commands) {
      if (command != c.name) continue;
      for (int i = 2; i < argc; ++i)
        if (std::strcmp(argv[i], "--help") == 0) {
          std::printf("usage: sfm %s", c.usage);
          return 0;
        }
      return c.run(argc, argv);
    }
    sfm::fail("unknown command '", command, "' (try: sfm --help)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sfm %s: error: %s\n", command.c_str(), e.what());
  }
  return 2;
}
