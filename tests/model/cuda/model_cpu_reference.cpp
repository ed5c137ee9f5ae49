// See model_cpu_reference.hpp.
#include "model_cpu_reference.hpp"

#include "model_training_loop.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/model/vit_mae.hpp"

namespace sfm::test {

ModelRun run_cpu_model(const ModelRunSpec& spec) { return train_model<Cpu>(spec); }

}  // namespace sfm::test
