// Elementwise helpers and host transfers (CPU): y += x, fill with zeros, Σx², copies within backend
// memory, and the copies between host memory and backend memory (plain copies here; the Cuda
// backend moves data to the device).
#pragma once

#include <algorithm>
#include <cstdint>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/element.hpp"

namespace sfm {

template <class T>
void add_inplace(Cpu, T* y, const T* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = cpu_detail::narrow<T>(cpu_detail::wide(y[i]) + cpu_detail::wide(x[i]));
}

template <class T>
void fill_zero(Cpu, T* y, int64_t n) {
  std::fill(y, y + n, cpu_detail::narrow<T>(0.0f));
}

// start + Σ x[i]² in double, in index order (a start lets a caller sum several ranges as one
// sequence: ZeRO's global norm keeps one running sum over its buckets).
inline double squared_norm(Cpu, const float* x, int64_t n, double start = 0) {
  double sum = start;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}

// dst[0, n) = src[0, n), both in backend memory (the ranges do not overlap).
template <class T>
void copy_elements(Cpu, T* dst, const T* src, int64_t n) {
  std::copy_n(src, n, dst);
}

// dst[i] = src[i] converted to Dst (fp32 master weights → their bf16 compute copy), in backend memory.
template <class Dst, class Src>
void convert_elements(Cpu, Dst* dst, const Src* src, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] = cpu_detail::narrow<Dst>(cpu_detail::wide(src[i]));
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
