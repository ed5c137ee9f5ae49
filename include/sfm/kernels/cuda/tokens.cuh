// Token gather/scatter kernels (CUDA) for MAE masking, and the row-wise helpers the model needs.
// Reference: kernels/cpu/tokens.hpp (same arguments; index and select are device arrays).
//
// The copies run one thread per element over (b, k, c), c fastest, so rows move coalesced.
// sum_rows feeds parameter gradients (cls and mask tokens): it is the deterministic column
// reduction of reduce.cuh, summed in double like the CPU's.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/cuda/reduce.cuh"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cuda_detail {

// TokenRows::row on the device (the view's member is host-only).
template <class T>
__device__ __forceinline__ T* token_row(TokenRows<T> v, int64_t b, int64_t r, int64_t dim) {
  return v.data + (b * v.rows_per_sample + v.first + r) * dim;
}

// Modes of the row-copy kernel: out row k ← in row index[k] (gather), out row index[k] ← in row k
// (scatter), out row k ← in row k (copy).
enum class RowMap { gather, scatter, copy };

template <RowMap map, class T>
__global__ void move_rows_kernel(TokenRows<T> out, TokenRows<const T> in, const int64_t* index, int64_t batch,
                                 int64_t count, int64_t dim) {
  const int64_t n = batch * count * dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % dim, bk = i / dim, k = bk % count, b = bk / count;
    const int64_t src = map == RowMap::gather ? index[b * count + k] : k;
    const int64_t dst = map == RowMap::scatter ? index[b * count + k] : k;
    token_row(out, b, dst, dim)[c] = token_row(in, b, src, dim)[c];
  }
}

template <class T>
__global__ void add_rows_broadcast_kernel(TokenRows<T> rows, const T* table, int64_t batch, int64_t count,
                                          int64_t dim) {
  const int64_t n = batch * count * dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % dim, br = i / dim, r = br % count, b = br / count;
    T* x = token_row(rows, b, r, dim) + c;
    *x = from_f32<T>(to_f32(*x) + to_f32(table[r * dim + c]));
  }
}

template <class T>
__global__ void fill_rows_kernel(TokenRows<T> rows, const T* value, const uint8_t* select, int64_t batch,
                                 int64_t count, int64_t dim) {
  const int64_t n = batch * count * dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % dim, br = i / dim, r = br % count, b = br / count;
    if (!select || select[br]) token_row(rows, b, r, dim)[c] = value[c];
  }
}

// Column source for sum_rows: row r of the flattened (b, row) sequence, zero where not selected.
template <class T>
struct SelectedRows {
  TokenRows<const T> rows;
  const uint8_t* select;
  int64_t count;
  int64_t dim;
  __device__ void operator()(int64_t r, int64_t c, double (&v)[1]) const {
    v[0] = (!select || select[r]) ? double(to_f32(token_row(rows, r / count, r % count, dim)[c])) : 0.0;
  }
};

template <RowMap map, class T>
void move_rows(TokenRows<T> out, TokenRows<const T> in, const int64_t* index, int64_t batch, int64_t count,
               int64_t dim) {
  const int64_t n = batch * count * dim;
  if (n <= 0) return;
  move_rows_kernel<map><<<grid_for(n, 256), 256, 0, cuda_context().stream>>>(out, in, index, batch, count, dim);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda_detail

// out[b, k] = in[b, index[b, k]] for k < count (index: device int64 [batch, count]).
template <class T>
void gather_tokens(Cuda, TokenRows<T> out, InRows<T> in, const int64_t* index, int64_t batch, int64_t count,
                   int64_t dim) {
  cuda_detail::move_rows<cuda_detail::RowMap::gather>(out, in, index, batch, count, dim);
}

// out[b, index[b, k]] = in[b, k] for k < count (rows not named by index are left alone; indices
// are distinct per sample, so no two threads write one element).
template <class T>
void scatter_tokens(Cuda, TokenRows<T> out, InRows<T> in, const int64_t* index, int64_t batch, int64_t count,
                    int64_t dim) {
  cuda_detail::move_rows<cuda_detail::RowMap::scatter>(out, in, index, batch, count, dim);
}

// out[b, r, :] = in[b, r, :] for r < count.
template <class T>
void copy_rows(Cuda, TokenRows<T> out, InRows<T> in, int64_t batch, int64_t count, int64_t dim) {
  cuda_detail::move_rows<cuda_detail::RowMap::copy>(out, in, nullptr, batch, count, dim);
}

// rows[b, r, :] += table[r, :] for every sample b.
template <class T>
void add_rows_broadcast(Cuda, TokenRows<T> rows, const T* table, int64_t batch, int64_t count, int64_t dim) {
  const int64_t n = batch * count * dim;
  if (n <= 0) return;
  cuda_detail::add_rows_broadcast_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      rows, table, batch, count, dim);
  SFM_CUDA_CHECK_LAUNCH();
}

// rows[b, r, :] = value[:] where select[b·count + r] is nonzero (every row when select is null).
template <class T>
void fill_rows(Cuda, TokenRows<T> rows, const T* value, const uint8_t* select, int64_t batch, int64_t count,
               int64_t dim) {
  const int64_t n = batch * count * dim;
  if (n <= 0) return;
  cuda_detail::fill_rows_kernel<<<cuda_detail::grid_for(n, 256), 256, 0, cuda_context().stream>>>(
      rows, value, select, batch, count, dim);
  SFM_CUDA_CHECK_LAUNCH();
}

// sum[:] += Σ rows[b, r, :] over selected rows (all when select is null); fixed order, double. The
// sum is G (a parameter gradient: fp32 under bf16 activations).
template <class T, class G>
void sum_rows(Cuda, G* sum, TokenRows<const T> rows, const uint8_t* select, int64_t batch, int64_t count,
              int64_t dim) {
  cuda_detail::column_reduce<1>(cuda_detail::SelectedRows<T>{rows, select, count, dim},
                                cuda_detail::AddColumnSum<G>{sum}, batch * count, dim);
}

}  // namespace sfm
