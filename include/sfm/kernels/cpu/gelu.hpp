// Exact (erf) GELU kernels (CPU): gelu(x) = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "sfm/kernels/cpu/backend.hpp"

namespace sfm {

template <class T>
void gelu_forward(Cpu, T* out, const T* in, int64_t n) {
  const T inv_sqrt2 = T(1 / std::numbers::sqrt2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = T(0.5) * in[i] * (T(1) + std::erf(in[i] * inv_sqrt2));
}

// d_in = d_out · gelu'(x), gelu'(x) = Φ(x) + x · φ(x) (overwritten).
template <class T>
void gelu_backward(Cpu, T* d_in, const T* d_out, const T* in, int64_t n) {
  const T inv_sqrt2 = T(1 / std::numbers::sqrt2);
  const T inv_sqrt_2pi = T(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T x = in[i];
    const T cdf = T(0.5) * (T(1) + std::erf(x * inv_sqrt2));
    const T pdf = inv_sqrt_2pi * std::exp(T(-0.5) * x * x);
    d_in[i] = d_out[i] * (cdf + x * pdf);
  }
}

}  // namespace sfm
