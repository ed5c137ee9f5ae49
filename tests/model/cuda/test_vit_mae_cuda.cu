// VitMae<Cuda> (fp32) against VitMae<Cpu> on the same weights, volumes and masks: the loss and every
// gradient of the first step, then 20 AdamW steps with clipping. Both sides run the same loop
// (model_training_loop.hpp); the CPU side is compiled by the host compiler. And VitMae<Cuda> with
// every block recomputed against itself without.
#include <cmath>
#include <cstdio>

#include "model_training_loop.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/kernels/cuda/kernels.cuh"
#include "sfm/model/init.hpp"
#include "sfm_test.hpp"

namespace {

sfm::test::ModelRunSpec make_spec(const sfm::ModelConfig& config, int batch) {
  sfm::test::ModelRunSpec spec;
  spec.config = config;
  spec.batch = batch;
  const sfm::VitMae<sfm::Cuda> shape_only(config, /*resident=*/false);
  spec.params.resize(size_t(shape_only.table().size()));
  sfm::init_param_range(shape_only.table(), 3, 0, shape_only.table().size(), spec.params.data());
  const auto& c = config.crop;
  spec.volumes = sfm::synthesize_seismic({{batch * c[0], c[1], c[2]}, 17});
  return spec;
}

// Checks every gradient tensor of `run` against `ref` to `tolerance` of the tensor's largest
// reference gradient; returns the worst ratio.
double check_gradients(const sfm::ModelConfig& config, const std::vector<float>& run, const std::vector<float>& ref,
                       double tolerance) {
  const sfm::VitMae<sfm::Cuda> model(config, false);
  double worst = 0;
  for (const sfm::ParamInfo& p : model.table().entries()) {
    double diff = 0, scale = 0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      diff = std::max(diff, std::abs(double(run[size_t(i)]) - double(ref[size_t(i)])));
      scale = std::max(scale, std::abs(double(ref[size_t(i)])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-30));
    INFO(p.name << ": max |run - ref| " << diff << ", max |ref| " << scale);
    CHECK(diff <= tolerance * scale);
  }
  return worst;
}

void compare(const sfm::ModelConfig& config, int batch) {
  const auto spec = make_spec(config, batch);
  const auto cpu = sfm::test::run_cpu_model(spec);
  const auto gpu = sfm::test::train_model<sfm::Cuda>(spec);

  INFO(config.name << ": loss cpu " << cpu.losses[0] << " gpu " << gpu.losses[0]);
  CHECK(std::abs(gpu.losses[0] - cpu.losses[0]) <= 1e-5 * std::abs(cpu.losses[0]));
  const double worst = check_gradients(config, gpu.first_grads, cpu.first_grads, 1e-4);
  double worst_loss = 0;
  for (size_t s = 0; s < cpu.losses.size(); ++s) {
    worst_loss = std::max(worst_loss, std::abs(gpu.losses[s] - cpu.losses[s]) / std::abs(cpu.losses[s]));
    INFO("step " << s << ": loss cpu " << cpu.losses[s] << " gpu " << gpu.losses[s]);
    CHECK(std::abs(gpu.losses[s] - cpu.losses[s]) <= 1e-4 * std::abs(cpu.losses[s]));
  }
  CHECK(cpu.losses.back() < cpu.losses.front());
  std::printf("{\"test\": \"vit_mae_cuda_fp32_vs_cpu\", \"model\": \"%s\", \"batch\": %d, \"loss_rel\": %.3e, "
              "\"worst_grad_rel\": %.3e, \"worst_loss_rel_%zu_steps\": %.3e}\n",
              config.name.c_str(), batch, std::abs(gpu.losses[0] - cpu.losses[0]) / std::abs(cpu.losses[0]), worst,
              cpu.losses.size(), worst_loss);
}

}  // namespace

TEST_CASE("VitMae<Cuda> fp32 matches VitMae<Cpu> on tiny") { compare(sfm::named_model_config("tiny"), 4); }

TEST_CASE("VitMae<Cuda> fp32 matches VitMae<Cpu> on small") { compare(sfm::named_model_config("small"), 2); }

TEST_CASE("VitMae<Cuda> with TF32 GEMMs stays within TF32 precision of the CPU on small") {
  const auto spec = make_spec(sfm::named_model_config("small"), 2);
  const auto cpu = sfm::test::run_cpu_model(spec);
  sfm::cuda_context().tf32_matmul = true;
  const auto gpu = sfm::test::train_model<sfm::Cuda>(spec);
  sfm::cuda_context().tf32_matmul = false;
  for (size_t s = 0; s < cpu.losses.size(); ++s) {
    INFO("step " << s << ": loss cpu " << cpu.losses[s] << " gpu (tf32) " << gpu.losses[s]);
    CHECK(std::abs(gpu.losses[s] - cpu.losses[s]) <= 1e-2 * std::abs(cpu.losses[s]));
  }
  std::printf("{\"test\": \"vit_mae_cuda_tf32_vs_cpu\", \"model\": \"small\", \"loss_rel_step0\": %.3e}\n",
              std::abs(gpu.losses[0] - cpu.losses[0]) / std::abs(cpu.losses[0]));
}

TEST_CASE("VitMae<Cuda> with every block recomputed trains like without on small") {
  auto spec = make_spec(sfm::named_model_config("small"), 2);
  spec.steps = 5;
  const auto plain = sfm::test::train_model<sfm::Cuda>(spec);
  spec.recompute = sfm::Recompute::all(spec.config);
  const auto recomputed = sfm::test::train_model<sfm::Cuda>(spec);
  // The same kernels on the same inputs, as on the CPU, where the results are bitwise equal; here
  // cuBLASLt may pick another algorithm for a GEMM whose operands sit at other alignments in the
  // smaller arena (linear.cuh passes the alignment to its heuristic), which changes the rounding.
  const double worst = check_gradients(spec.config, recomputed.first_grads, plain.first_grads, 1e-5);
  double worst_loss = 0;
  for (size_t s = 0; s < plain.losses.size(); ++s) {
    worst_loss = std::max(worst_loss, std::abs(recomputed.losses[s] - plain.losses[s]) / std::abs(plain.losses[s]));
    INFO("step " << s << ": loss " << recomputed.losses[s] << " recomputed, " << plain.losses[s] << " without");
    CHECK(std::abs(recomputed.losses[s] - plain.losses[s]) <= 1e-5 * std::abs(plain.losses[s]));
  }
  std::printf("{\"test\": \"vit_mae_cuda_recompute\", \"model\": \"small\", \"bitwise_grads\": %s, "
              "\"worst_grad_rel\": %.3e, \"worst_loss_rel_%zu_steps\": %.3e}\n",
              recomputed.first_grads == plain.first_grads ? "true" : "false", worst, plain.losses.size(), worst_loss);
}
