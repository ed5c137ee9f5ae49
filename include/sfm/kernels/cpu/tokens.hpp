// Token gather/scatter kernels (CPU) for MAE masking, and the small row-wise helpers the model needs.
//
// gather_tokens picks the visible tokens (encoder input); scatter_tokens puts decoder tokens back
// at their original positions. Each is the other's backward: indices are distinct per sample.
#pragma once

#include <cstdint>
#include <cstring>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/element.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

// out[b, k] = in[b, index[b, k]] for k < count.
template <class T>
void gather_tokens(Cpu, TokenRows<T> out, InRows<T> in, const int64_t* index, int64_t batch,
                   int64_t count, int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < count; ++k)
      std::memcpy(out.row(b, k, dim), in.row(b, index[b * count + k], dim), sizeof(T) * dim);
}

// out[b, index[b, k]] = in[b, k] for k < count (rows not named by index are left alone).
template <class T>
void scatter_tokens(Cpu, TokenRows<T> out, InRows<T> in, const int64_t* index, int64_t batch,
                    int64_t count, int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < count; ++k)
      std::memcpy(out.row(b, index[b * count + k], dim), in.row(b, k, dim), sizeof(T) * dim);
}

// rows[b, r, :] += table[r, :] for every sample b (positional embeddings).
template <class T>
void add_rows_broadcast(Cpu, TokenRows<T> rows, const T* table, int64_t batch, int64_t count, int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < count; ++r) {
      T* x = rows.row(b, r, dim);
      const T* t = table + r * dim;
      for (int64_t i = 0; i < dim; ++i) x[i] = cpu_detail::narrow<T>(cpu_detail::wide(x[i]) + cpu_detail::wide(t[i]));
    }
}

// rows[b, r, :] = value[:] where select[b·count + r] is nonzero (every row when select is null).
template <class T>
void fill_rows(Cpu, TokenRows<T> rows, const T* value, const uint8_t* select, int64_t batch, int64_t count,
               int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < count; ++r)
      if (!select || select[b * count + r]) std::memcpy(rows.row(b, r, dim), value, sizeof(T) * dim);
}

// out[b, r, :] = in[b, r, :] for r < count.
template <class T>
void copy_rows(Cpu, TokenRows<T> out, InRows<T> in, int64_t batch, int64_t count, int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < count; ++r) std::memcpy(out.row(b, r, dim), in.row(b, r, dim), sizeof(T) * dim);
}

// sum[:] += Σ rows[b, r, :] over rows where select[b·count + r] is nonzero (all when null), summed in
// a fixed order (b, then r) in double. The sum is G (a parameter gradient: fp32 under bf16 storage).
template <class T, class G>
void sum_rows(Cpu, G* sum, TokenRows<const T> rows, const uint8_t* select, int64_t batch, int64_t count,
              int64_t dim) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < dim; ++i) {
    double acc = 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < count; ++r)
        if (!select || select[b * count + r]) acc += cpu_detail::wide(rows.row(b, r, dim)[i]);
    sum[i] += G(acc);
  }
}

}  // namespace sfm
