// Linear layer kernels (CPU): out = in · Wᵀ + b, and its backward, on Eigen's GEMM.
// Results do not depend on buffer alignment or thread count: Eigen's GEMM keeps the reduction
// order of each output element fixed, and the bias reduction is column_sums.hpp's fixed-order sum.
//
// Shapes: in [rows, in_dim], weight [out_dim, in_dim] (PyTorch's nn.Linear layout), bias [out_dim],
// out [rows, out_dim]; all row-major and contiguous.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/column_sums.hpp"

namespace sfm {

namespace cpu_detail {
template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatMap = Eigen::Map<RowMajor<T>>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMajor<T>>;
template <class T>
using ConstRowMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
}  // namespace cpu_detail

// out = in · weightᵀ + bias (bias may be null).
template <class T>
void linear_forward(Cpu, T* out, const T* in, const T* weight, const T* bias, int64_t rows,
                    int64_t in_dim, int64_t out_dim) {
  using namespace cpu_detail;
  MatMap<T> y(out, rows, out_dim);
  y.noalias() = ConstMatMap<T>(in, rows, in_dim) * ConstMatMap<T>(weight, out_dim, in_dim).transpose();
  if (bias) y.rowwise() += ConstRowMap<T>(bias, out_dim);
}

// Backward of linear_forward given d_out:
//   d_in      = d_out · weight          (overwritten; skipped when d_in is null)
//   d_weight += d_outᵀ · in             (accumulated, so micro-batches add up)
//   d_bias   += column sums of d_out    (accumulated; skipped when null)
// Parameter gradients are G (fp32 under bf16 storage, see bf16_storage.hpp), activations T.
template <class T, class G>
void linear_backward(Cpu, T* d_in, G* d_weight, G* d_bias, const T* d_out, const T* in, const T* weight,
                     int64_t rows, int64_t in_dim, int64_t out_dim) {
  using namespace cpu_detail;
  ConstMatMap<T> dy(d_out, rows, out_dim);
  if (d_in) MatMap<T>(d_in, rows, in_dim).noalias() = dy * ConstMatMap<T>(weight, out_dim, in_dim);
  MatMap<T>(d_weight, out_dim, in_dim).noalias() += dy.transpose() * ConstMatMap<T>(in, rows, in_dim);
  if (!d_bias) return;
  // Column sums in double, rows in order (column_sums.hpp: not Eigen's alignment-dependent colwise sum).
  add_column_sums(
      rows, out_dim, [&](int64_t r, int64_t j) { return std::array{double(d_out[r * out_dim + j])}; }, d_bias);
}

}  // namespace sfm
