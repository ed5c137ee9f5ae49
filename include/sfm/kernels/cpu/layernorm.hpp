// LayerNorm kernels (CPU) over the last dimension, with the per-row statistics the backward needs.
//
// Forward: y = (x − mean) · rstd · gamma + beta with rstd = 1/sqrt(var + eps), var biased (as
// PyTorch's LayerNorm). Statistics are accumulated in double, so the fp32 reference does not
// drift from PyTorch on long rows.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/column_sums.hpp"
#include "sfm/kernels/cpu/element.hpp"
#include "sfm/kernels/element.hpp"

namespace sfm {

template <class T>
void layernorm_forward(Cpu, T* out, Accum<T>* mean, Accum<T>* rstd, const T* in, const T* gamma, const T* beta,
                       int64_t rows, int64_t dim, double eps) {
  using namespace cpu_detail;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = in + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += wide(x[i]);
    const double mu = sum / double(dim);
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += (wide(x[i]) - mu) * (wide(x[i]) - mu);
    const double inv = 1.0 / std::sqrt(sq / double(dim) + eps);
    T* y = out + r * dim;
    for (int64_t i = 0; i < dim; ++i)
      y[i] = narrow<T>(Accum<T>((wide(x[i]) - mu) * inv) * wide(gamma[i]) + wide(beta[i]));
    mean[r] = Accum<T>(mu);
    rstd[r] = Accum<T>(inv);
  }
}

// Backward: d_in += ∂loss/∂x (accumulated, because the input is a residual stream whose gradient
// already holds the skip path); d_gamma and d_beta accumulated.
// With xhat = (x − mean)·rstd and g = d_out·gamma:
//   d_x = rstd · (g − mean(g) − xhat · mean(g · xhat)).
// Parameter gradients are G (fp32 under bf16 storage), the statistics Accum<T>.
template <class T, class G>
void layernorm_backward(Cpu, T* d_in, G* d_gamma, G* d_beta, const T* d_out, const T* in, const Accum<T>* mean,
                        const Accum<T>* rstd, const T* gamma, int64_t rows, int64_t dim) {
  using namespace cpu_detail;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = in + r * dim;
    const T* dy = d_out + r * dim;
    double g_mean = 0, gx_mean = 0;
    for (int64_t i = 0; i < dim; ++i) {
      const double g = double(wide(dy[i])) * wide(gamma[i]);
      g_mean += g;
      gx_mean += g * (double(wide(x[i])) - mean[r]) * rstd[r];
    }
    g_mean /= double(dim);
    gx_mean /= double(dim);
    T* dx = d_in + r * dim;
    for (int64_t i = 0; i < dim; ++i) {
      const double xhat = (double(wide(x[i])) - mean[r]) * rstd[r];
      dx[i] = narrow<T>(wide(dx[i]) +
                        Accum<T>(rstd[r] * (double(wide(dy[i])) * wide(gamma[i]) - g_mean - xhat * gx_mean)));
    }
  }
  // Parameter gradients: column sums in double, rows in order (column_sums.hpp), of dy·xhat and dy.
  add_column_sums(
      rows, dim,
      [&](int64_t r, int64_t i) {
        const double dy = wide(d_out[r * dim + i]);
        return std::array{dy * (double(wide(in[r * dim + i])) - mean[r]) * rstd[r], dy};
      },
      d_gamma, d_beta);
}

}  // namespace sfm
