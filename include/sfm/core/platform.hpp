// Compiler and platform glue shared by the host and CUDA builds.
//
// SFM_HOST_DEVICE marks small functions (bf16 conversion, Philox) that the CUDA backend calls from
// kernels as well as from host code: `__host__ __device__` when nvcc compiles, nothing otherwise.
#pragma once

#if defined(__CUDACC__)
#define SFM_HOST_DEVICE __host__ __device__
#else
#define SFM_HOST_DEVICE
#endif
