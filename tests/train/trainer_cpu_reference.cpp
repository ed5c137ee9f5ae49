// See trainer_cpu_reference.hpp.
#include "trainer_cpu_reference.hpp"

#include "sfm/comm/serial.hpp"
#include "sfm/kernels/cpu/kernels.hpp"

namespace sfm::test {

TrainResult train_cpu(const TrainConfig& config, const std::filesystem::path& resume) {
  SerialComm world;
  TrainOptions options;
  options.resume = resume;
  options.console = nullptr;
  options.handle_signals = false;
  return train<sfm::Cpu>(config, world, options);
}

}  // namespace sfm::test
