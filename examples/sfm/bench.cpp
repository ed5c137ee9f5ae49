// `sfm bench train --config NAME [--backend cpu|cuda] [--precision P] [--steps K] [--batch B]
// [--warmup W]` (P: fp32 or bf16 on the CPU, fp32, tf32 or bf16 on CUDA): times training steps
// (forward, backward, clipping, AdamW) of a named model on
// synthetic crops held in backend memory (train/step_bench.hpp) and prints one JSON object: step
// ms, samples/s, tokens/s, GFLOP/s (train/flops.hpp), and the peak memory: the process's resident
// set on the CPU, the device memory held on a GPU.
#include <sys/resource.h>

#include <cstdio>

#include "sfm/kernels/cpu/kernels.hpp"
#include "bench_cuda.hpp"
#include "cli.hpp"

namespace sfm::cli {

int run_bench(int argc, char** argv) {
  SFM_CHECK(argc >= 3 && std::string(argv[2]) == "train", "usage: sfm bench train --config NAME [--backend cpu|cuda] ",
            "[--precision fp32|bf16 (cpu), fp32|tf32|bf16 (cuda)] [--steps K] [--batch B] [--warmup W]");
  const Args args = parse_args(argc, argv, 3, {"config", "backend", "precision", "steps", "batch", "warmup"});
  SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
  const BackendKind backend = parse_backend_kind(args.get("backend", "cpu"), "--backend");
  const ModelConfig config = named_model_config(args.get("config", "small"));
  StepBenchOptions options;
  options.batch = parse_int(args.get("batch", "8"), "--batch");
  options.steps = parse_int(args.get("steps", "5"), "--steps");
  options.warmup = parse_int(args.get("warmup", "1"), "--warmup");
  SFM_CHECK(options.batch >= 1 && options.steps >= 1 && options.warmup >= 0,
            "--batch and --steps must be positive, --warmup >= 0");
  nlohmann::json result;
  if (backend == BackendKind::cuda) {
#ifdef SFM_CLI_HAVE_CUDA
    result = bench_train_cuda(config, options, args.get("precision", "tf32"));
#else
    fail("--backend cuda: this sfm was built without CUDA (CMake found no nvcc)");
#endif
  } else {
    const PrecisionKind precision = parse_precision_kind(args.get("precision", "fp32"), "--precision");
    result = visit_precision(precision, [&]<class Prec>(Prec) { return time_train_steps<Cpu, Prec>(config, options); })
                 .to_json();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    result["backend"] = Cpu::name;
    result["precision"] = precision_name(precision);
    result["peak_rss_bytes"] = int64_t(usage.ru_maxrss) * 1024;
  }
  result["benchmark"] = "train";
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace sfm::cli
