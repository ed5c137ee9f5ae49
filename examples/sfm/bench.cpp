// `sfm bench train --config NAME [--backend cpu] [--steps K] [--batch B] [--warmup W]`: times
// training steps (forward, backward, clipping, AdamW) of a named model on synthetic crops held in
// memory and prints one JSON object: step ms, samples/s, tokens/s, GFLOP/s (train/flops.hpp) and
// the process's peak resident memory.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/model/vit_mae.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/train/flops.hpp"

namespace sfm::cli {

int run_bench(int argc, char** argv) {
  SFM_CHECK(argc >= 3 && std::string(argv[2]) == "train", "usage: sfm bench train --config NAME [--backend cpu] ",
            "[--steps K] [--batch B] [--warmup W]");
  const Args args = parse_args(argc, argv, 3, {"config", "backend", "steps", "batch", "warmup"});
  SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
  const std::string backend = args.get("backend", "cpu");
  SFM_CHECK(backend == "cpu" || backend == "cuda", "--backend: '", backend, "' (known: cpu, cuda)");
  SFM_CHECK(backend == "cpu", "--backend cuda is not available in this build (the CUDA model is not integrated yet)");
  const ModelConfig config = named_model_config(args.get("config", "small"));
  const int64_t batch = parse_int(args.get("batch", "8"), "--batch"), steps = parse_int(args.get("steps", "5"), "--steps");
  const int64_t warmup = parse_int(args.get("warmup", "1"), "--warmup");
  SFM_CHECK(batch >= 1 && steps >= 1 && warmup >= 0, "--batch and --steps must be positive, --warmup >= 0");

  VitMae<Cpu> model(config);
  model.init_weights(0);
  AdamW<Cpu> optimizer(model.table(), AdamWConfig{});
  const std::vector<float> crops = synthesize_seismic({{batch * config.crop[0], config.crop[1], config.crop[2]}, 1});
  const int64_t N = config.tokens(), K = RandomMask::len_keep(config);
  using clock = std::chrono::steady_clock;
  double seconds = 0;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const MaskPlan mask = mask_from_noise(mask_noise(0, uint64_t(step), 0, batch, N), batch, N, K);
    const auto start = clock::now();
    model.zero_grad();
    model.forward(crops.data(), mask);
    model.backward();
    const double norm = std::sqrt(squared_norm(model.grads()));
    optimizer.step(model.params(), model.grads(), 1e-4, clip_coefficient(norm, 1.0));
    if (step >= warmup) seconds += std::chrono::duration<double>(clock::now() - start).count();
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double step_s = seconds / double(steps), flops = train_step_flops(config, K, batch);
  std::printf("%s\n", nlohmann::json{{"benchmark", "train"},
                                     {"backend", backend},
                                     {"model", config.name},
                                     {"batch", batch},
                                     {"steps", steps},
                                     {"step_ms", step_s * 1e3},
                                     {"samples_per_s", double(batch) / step_s},
                                     {"tokens_per_s", double(batch * N) / step_s},
                                     {"gflops", flops * 1e-9 / step_s},
                                     {"peak_rss_bytes", int64_t(usage.ru_maxrss) * 1024}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace sfm::cli
