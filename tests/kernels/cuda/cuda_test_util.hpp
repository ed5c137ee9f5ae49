// Helpers for the CUDA kernel tests (included from .cu files): random host data, bf16 rounding,
// upload/download between host float vectors and DeviceArray<T>, and a comparison that fails on
// non-finite values and prints every measured error so one GPU run shows the margins.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "sfm/core/bf16.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/kernels/cuda/backend.cuh"
#include "sfm_test.hpp"

namespace sfm::test {

// Attention tolerances against the CPU kernels: outputs and gradients relative to their scale (fp32
// compute, bf16 storage rounding), lse absolute.
constexpr double kTolAttn32 = 5e-5;
constexpr double kTolAttn16 = 2e-2;
constexpr double kTolLse = 1e-5;

template <class T>
constexpr double attn_tol() {
  return std::is_same_v<T, float> ? kTolAttn32 : kTolAttn16;
}

template <class T>
constexpr const char* type_name() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

// normal(0, scale) values from stream `stream`.
inline std::vector<float> randn(size_t n, uint64_t stream, float scale = 1.0f) {
  std::vector<float> v(n);
  Rng(1234, stream).fill_normal(v, 0.0f, scale);
  return v;
}

// The values a T buffer holds for these floats (identity for float, round-to-nearest-even for bf16).
template <class T>
std::vector<float> rounded(std::vector<float> v) {
  if constexpr (std::is_same_v<T, bf16>)
    for (float& x : v) x = to_float(to_bf16(x));
  return v;
}

template <class T>
DeviceArray<T> upload(const std::vector<float>& host) {
  std::vector<T> converted(host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    if constexpr (std::is_same_v<T, bf16>)
      converted[i] = to_bf16(host[i]);
    else
      converted[i] = T(host[i]);
  }
  DeviceArray<T> device;
  device.assign(converted.begin(), converted.end());
  return device;
}

template <class T>
std::vector<float> download(const DeviceArray<T>& device) {
  const std::vector<T> host = device.to_host();
  std::vector<float> out(host.size());
  for (size_t i = 0; i < host.size(); ++i) out[i] = float(host[i]);
  return out;
}

// A device buffer of n elements filled with NaN bit patterns (all bytes 0xff), so that any element
// a kernel should write but does not shows up as non-finite.
template <class T>
DeviceArray<T> poisoned(size_t n) {
  DeviceArray<T> device(n);
  SFM_CUDA_CHECK(cudaMemsetAsync(device.data(), 0xff, n * sizeof(T), cuda_context().stream));
  return device;
}

// max|got − want| / max(max|want|, floor, 1e-30) ≤ tol, every got finite. Prints the measured ratio.
// `floor` keeps the scale meaningful where every reference value may be tiny (gelu of a few inputs).
inline void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                        double tol, double floor = 0.0) {
  REQUIRE(got.size() == want.size());
  double worst = 0, scale = floor;
  size_t worst_at = 0, non_finite = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) {
      if (non_finite++ == 0) worst_at = i;
      continue;
    }
    const double diff = std::abs(double(got[i]) - double(want[i]));
    if (diff > worst) worst = diff, worst_at = i;
    scale = std::max(scale, std::abs(double(want[i])));
  }
  const double ratio = worst / std::max(scale, 1e-30);
  std::printf("  %-58s max|err|/max|ref| = %.3e (tol %.1e)%s\n", what.c_str(), ratio, tol,
              non_finite ? "  NON-FINITE VALUES" : "");
  INFO(what << ": max|err| = " << worst << " at " << worst_at << " (got " << got[worst_at] << ", want "
            << want[worst_at] << "), max|ref| = " << scale << ", non-finite: " << non_finite);
  CHECK(non_finite == 0);
  CHECK(ratio <= tol);
}

// Bitwise equality of two downloads (determinism checks).
inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace sfm::test
