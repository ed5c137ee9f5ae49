// Elementwise helpers and host transfers (CPU): y += x, fill with zeros, Σx², and the copies between
// host memory and backend memory (plain copies here; the Cuda backend moves data to the device).
#pragma once

#include <algorithm>
#include <cstdint>

#include "sfm/kernels/cpu/backend.hpp"

namespace sfm {

template <class T>
void add_inplace(Cpu, T* y, const T* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <class T>
void fill_zero(Cpu, T* y, int64_t n) {
  std::fill(y, y + n, T(0));
}

// Σ x[i]² in double, in index order.
inline double squared_norm(Cpu, const float* x, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}

// Backend memory ← host memory, and back.
template <class T>
void copy_from_host(Cpu, T* backend, const T* host, int64_t n) {
  std::copy(host, host + n, backend);
}
template <class T>
void copy_to_host(Cpu, T* host, const T* backend, int64_t n) {
  std::copy(backend, backend + n, host);
}

}  // namespace sfm
