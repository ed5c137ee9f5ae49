// A synthetic seismic volume: folded, dipping layers whose reflectivity is convolved with a Ricker
// wavelet along the last axis (time), plus a little noise. Deterministic in its seed.
//
// It gives the trainer, the tests and the benchmarks data with the structure MAE learns from in
// real surveys (laterally continuous reflectors, band-limited traces) without shipping a survey.
// Layout [Z, Y, X] = (inline, crossline, time), C order, as MDIO stores it.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"

namespace sfm {

struct SyntheticSeismicConfig {
  std::array<int64_t, 3> shape{64, 64, 128};
  uint64_t seed = 0;
  int64_t layers = 0;            // 0: one reflector per ~6 time samples
  double peak_frequency = 0.12;  // Ricker peak, cycles per time sample
  double noise = 0.05;           // Gaussian noise, relative to the trace amplitude
};

inline std::vector<float> synthesize_seismic(const SyntheticSeismicConfig& c) {
  const auto [Z, Y, T] = c.shape;
  SFM_CHECK(Z > 0 && Y > 0 && T > 0, "synthetic seismic: shape must be positive");
  const int64_t layers = c.layers > 0 ? c.layers : std::max<int64_t>(4, T / 6);
  const Rng rng(c.seed, rng_stream(RngPurpose::data, 0, 0));        // the geological model
  const Rng noise_rng(c.seed, rng_stream(RngPurpose::data, 0, 1));  // the noise, one index per voxel
  uint64_t draw = 0;
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(rng.uniform(draw++)); };

  // Each layer: mean time, reflection coefficient, dips along z and y, and a fold.
  struct Layer {
    double time, reflectivity, dip_z, dip_y, fold_amplitude, fold_kz, fold_ky, fold_phase;
  };
  std::vector<Layer> model(static_cast<size_t>(layers));
  for (int64_t k = 0; k < layers; ++k)
    model[size_t(k)] = {uniform(-0.1, 1.1) * double(T), uniform(-1, 1), uniform(-0.3, 0.3), uniform(-0.3, 0.3),
                        uniform(0, 6), uniform(0.5, 3) * 2 * std::numbers::pi / double(Z),
                        uniform(0.5, 3) * 2 * std::numbers::pi / double(Y), uniform(0, 2 * std::numbers::pi)};

  // Ricker wavelet w(t) = (1 − 2π²f²t²)·exp(−π²f²t²), truncated where it is negligible.
  const double f = c.peak_frequency;
  const int64_t half = int64_t(std::ceil(1.5 / f));
  std::vector<double> wavelet(size_t(2 * half + 1));
  for (int64_t i = -half; i <= half; ++i) {
    const double a = std::numbers::pi * f * double(i);
    wavelet[size_t(i + half)] = (1 - 2 * a * a) * std::exp(-a * a);
  }

  std::vector<float> volume(size_t(Z * Y * T));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = 0; z < Z; ++z)
    for (int64_t y = 0; y < Y; ++y) {
      std::vector<double> reflectivity(size_t(T), 0.0);
      for (const Layer& l : model) {
        const double t = l.time + l.dip_z * double(z) + l.dip_y * double(y) +
                         l.fold_amplitude * std::sin(l.fold_kz * double(z) + l.fold_ky * double(y) + l.fold_phase);
        const int64_t i = int64_t(std::floor(t));
        const double frac = t - double(i);  // split the spike between two samples: smooth in z, y
        if (i >= 0 && i < T) reflectivity[size_t(i)] += (1 - frac) * l.reflectivity;
        if (i + 1 >= 0 && i + 1 < T) reflectivity[size_t(i + 1)] += frac * l.reflectivity;
      }
      float* trace = volume.data() + (z * Y + y) * T;
      for (int64_t t = 0; t < T; ++t) {
        double sum = 0;
        for (int64_t i = std::max<int64_t>(0, t - half); i <= std::min(T - 1, t + half); ++i)
          sum += reflectivity[size_t(i)] * wavelet[size_t(t - i + half)];
        trace[t] = float(sum + c.noise * double(noise_rng.normal(uint64_t((z * Y + y) * T + t))));
      }
    }
  return volume;
}

}  // namespace sfm
