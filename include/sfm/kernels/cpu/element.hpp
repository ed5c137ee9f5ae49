// Element access for the CPU kernels: wide(x) loads an element in its arithmetic type (bf16 → fp32,
// float and double unchanged) and narrow<T>(v) stores a result into T (to bf16 rounding to nearest
// even, as sfm::to_bf16 and the CUDA kernels do; a plain conversion otherwise). The scalar kernels
// use them so one template serves fp32, bf16 storage and the double tests; for float they are the
// identity, so the fp32 path computes exactly what it did without them.
#pragma once

#include <type_traits>

#include "sfm/core/bf16.hpp"

namespace sfm::cpu_detail {

inline float wide(bf16 x) { return to_float(x); }
inline float wide(float x) { return x; }
inline double wide(double x) { return x; }

template <class T, class V>
T narrow(V value) {
  if constexpr (std::is_same_v<T, bf16>)
    return to_bf16(float(value));
  else
    return T(value);
}

}  // namespace sfm::cpu_detail
