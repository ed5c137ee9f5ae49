// All CPU kernels: include this to get the sfm::Cpu backend's complete kernel set, checked against
// the backend contract (kernels/backend.hpp).
#pragma once

#include "sfm/kernels/cpu/adamw.hpp"
#include "sfm/kernels/cpu/attention.hpp"
#include "sfm/kernels/cpu/attention_blocks.hpp"
#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/bf16_storage.hpp"
#include "sfm/kernels/cpu/elementwise.hpp"
#include "sfm/kernels/cpu/gelu.hpp"
#include "sfm/kernels/cpu/layernorm.hpp"
#include "sfm/kernels/cpu/linear.hpp"
#include "sfm/kernels/cpu/mae_loss.hpp"
#include "sfm/kernels/cpu/patchify.hpp"
#include "sfm/kernels/cpu/tokens.hpp"

namespace sfm {
static_assert(KernelBackend<Cpu>, "the Cpu backend must provide every kernel of the contract (kernels/backend.hpp)");
static_assert(ComputesIn<Cpu, bf16>, "the Cpu backend must provide the bf16-storage kernels (kernels/backend.hpp)");
}  // namespace sfm
