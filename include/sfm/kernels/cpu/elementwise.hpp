// Elementwise helpers (CPU): y += x, fill with zeros, copy.
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

}  // namespace sfm
