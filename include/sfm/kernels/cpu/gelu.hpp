// Exact (erf) GELU kernels (CPU): gelu(x) = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)), computed in
// Accum<T> (fp32 for fp32 and bf16 storage).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/element.hpp"
#include "sfm/kernels/element.hpp"

namespace sfm {

template <class T>
void gelu_forward(Cpu, T* out, const T* in, int64_t n) {
  using namespace cpu_detail;
  using W = Accum<T>;
  const W inv_sqrt2 = W(1 / std::numbers::sqrt2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const W x = wide(in[i]);
    out[i] = narrow<T>(W(0.5) * x * (W(1) + std::erf(x * inv_sqrt2)));
  }
}

// d_in = d_out · gelu'(x), gelu'(x) = Φ(x) + x · φ(x) (overwritten).
template <class T>
void gelu_backward(Cpu, T* d_in, const T* d_out, const T* in, int64_t n) {
  using namespace cpu_detail;
  using W = Accum<T>;
  const W inv_sqrt2 = W(1 / std::numbers::sqrt2);
  const W inv_sqrt_2pi = W(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const W x = wide(in[i]);
    const W cdf = W(0.5) * (W(1) + std::erf(x * inv_sqrt2));
    const W pdf = inv_sqrt_2pi * std::exp(W(-0.5) * x * x);
    d_in[i] = narrow<T>(wide(d_out[i]) * (cdf + x * pdf));
  }
}

}  // namespace sfm
