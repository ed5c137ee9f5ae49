// All CUDA kernels: include this (from a .cu file, compiled by nvcc) to get the sfm::Cuda
// backend's complete kernel set, the counterpart of kernels/cpu/kernels.hpp, checked against the
// backend contract (kernels/backend.hpp).
#pragma once

#include "sfm/kernels/cuda/adamw.cuh"
#include "sfm/kernels/cuda/attention.cuh"
#include "sfm/kernels/cuda/attention_blocks.cuh"
#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/cuda/collective_order.cuh"
#include "sfm/kernels/cuda/elementwise.cuh"
#include "sfm/kernels/cuda/gelu.cuh"
#include "sfm/kernels/cuda/layernorm.cuh"
#include "sfm/kernels/cuda/linear.cuh"
#include "sfm/kernels/cuda/mae_loss.cuh"
#include "sfm/kernels/cuda/patchify.cuh"
#include "sfm/kernels/cuda/reduce.cuh"
#include "sfm/kernels/cuda/tokens.cuh"

namespace sfm {
static_assert(KernelBackend<Cuda>, "the Cuda backend must provide every kernel of the contract (kernels/backend.hpp)");
static_assert(ComputesIn<Cuda, bf16>, "the Cuda backend must provide the bf16-storage kernels (kernels/backend.hpp)");
}  // namespace sfm
