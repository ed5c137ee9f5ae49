// Element types of the kernels. Buffers hold T: float, bf16 (storage only: every backend computes
// on it in fp32), or double (the CPU backend's finite-difference tests). Accum<T> is the type a
// kernel accumulates in and keeps per-row statistics in (LayerNorm mean/rstd, attention lse and
// delta, the softmax scale): fp32 for fp32 and bf16 elements, double for double.
#pragma once

#include <type_traits>

namespace sfm {

template <class T>
using Accum = std::conditional_t<std::is_same_v<std::remove_const_t<T>, double>, double, float>;

}  // namespace sfm
