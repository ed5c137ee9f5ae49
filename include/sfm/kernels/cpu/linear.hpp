// Linear layer kernels (CPU): out = in · Wᵀ + b, and its backward, on the backend's GEMM
// (kernels/cpu/gemm.hpp: oneDNN for fp32 where built with it, else Eigen). Results do not depend
// on buffer alignment (nor, on oneDNN, on the thread count): the GEMM keeps the reduction order of
// each output element fixed, and the bias reduction is column_sums.hpp's fixed-order sum.
//
// Shapes: in [rows, in_dim], weight [out_dim, in_dim] (PyTorch's nn.Linear layout), bias [out_dim],
// out [rows, out_dim]; all row-major and contiguous.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/column_sums.hpp"
#include "sfm/kernels/cpu/gemm.hpp"

namespace sfm {

// out = in · weightᵀ + bias (bias may be null).
template <class T>
void linear_forward(Cpu, T* out, const T* in, const T* weight, const T* bias, int64_t rows,
                    int64_t in_dim, int64_t out_dim) {
  gemm(Cpu{}, {Transpose::no, Transpose::yes, rows, out_dim, in_dim, in_dim, in_dim, out_dim}, in, weight, false, out);
  if (!bias) return;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < out_dim; ++j) out[r * out_dim + j] += bias[j];
}

// Backward of linear_forward given d_out:
//   d_in      = d_out · weight          (overwritten; skipped when d_in is null)
//   d_weight += d_outᵀ · in             (accumulated, so micro-batches add up)
//   d_bias   += column sums of d_out    (accumulated; skipped when null)
// Parameter gradients are G (fp32 under bf16 storage, see bf16_storage.hpp), activations T.
template <class T, class G>
void linear_backward(Cpu, T* d_in, G* d_weight, G* d_bias, const T* d_out, const T* in, const T* weight,
                     int64_t rows, int64_t in_dim, int64_t out_dim) {
  static_assert(std::is_same_v<T, G>, "linear_backward: bf16 storage has its own overload (bf16_storage.hpp)");
  if (d_in)
    gemm(Cpu{}, {Transpose::no, Transpose::no, rows, in_dim, out_dim, out_dim, in_dim, in_dim}, d_out, weight, false,
         d_in);
  gemm(Cpu{}, {Transpose::yes, Transpose::no, out_dim, in_dim, rows, out_dim, in_dim, in_dim}, d_out, in, true,
       d_weight);
  if (!d_bias) return;
  // Column sums in double, rows in order (column_sums.hpp: not Eigen's alignment-dependent colwise sum).
  cpu_detail::add_column_sums(
      rows, out_dim, [&](int64_t r, int64_t j) { return std::array{double(d_out[r * out_dim + j])}; }, d_bias);
}

}  // namespace sfm
