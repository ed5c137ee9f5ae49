// Helpers for kernel tests: random inputs and central finite differences in double precision.
#pragma once

#include <functional>
#include <vector>

#include "sfm/core/rng.hpp"

namespace sfm::test {

inline std::vector<double> random_values(size_t n, uint64_t stream, double scale = 1.0) {
  std::vector<float> f(n);
  Rng(42, stream).fill_normal(f, 0.0f, float(scale));
  return {f.begin(), f.end()};
}

// ∂loss/∂x[i] by central differences, for a loss computed from x.
inline double numeric_derivative(std::vector<double>& x, size_t i, const std::function<double()>& loss,
                                 double h = 1e-6) {
  const double saved = x[i];
  x[i] = saved + h;
  const double up = loss();
  x[i] = saved - h;
  const double down = loss();
  x[i] = saved;
  return (up - down) / (2 * h);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace sfm::test
