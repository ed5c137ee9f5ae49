// A synthetic seismic volume: a dense stack of layers, folded and dipping, cut by normal faults,
// whose reflectivity is convolved with a Ricker wavelet along the last axis (time), plus noise.
// Deterministic in its seed.
//
// It gives the trainer, the tests and the benchmarks data with the structure MAE learns from in
// real surveys (laterally continuous reflectors that are interrupted and offset by faults,
// band-limited traces with a reflection every few samples) without shipping a survey. Layout
// [Z, Y, X] = (inline, crossline, time), C order, as MDIO stores it.
//
// The model, in time samples:
//   interfaces   times τ_k spaced by random thicknesses (0.5–1.5 × the mean), from above the top to below
//                the bottom so that dip and folds never leave the volume empty; reflection
//                coefficients r_k ~ N(0, 1), with a smooth lateral amplitude variation;
//   structure    interface k at trace (z, y) lies at τ_k + dip_z·z + dip_y·y + g_k·fold(z, y), fold
//                a sum of three sinusoids with wavelengths of 80–300 traces and g_k growing with
//                depth (deeper layers are more folded, as in growth strata);
//   faults       steep planes through the volume; samples on the hanging-wall side of a fault read
//                the unfaulted trace `throw` samples earlier (the hanging wall moved down);
//   noise        white Gaussian, `noise` times the clean volume's RMS amplitude.
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
  int64_t layers = 0;            // interfaces; 0: one per ~4 time samples of the extended range
  double peak_frequency = 0.12;  // Ricker peak, cycles per time sample
  double noise = 0.05;           // Gaussian noise, relative to the clean volume's RMS amplitude
  int64_t faults = -1;           // -1: one per 48 samples of the larger lateral size (at least 1)
};

inline std::vector<float> synthesize_seismic(const SyntheticSeismicConfig& c) {
  const int64_t Z = c.shape[0], Y = c.shape[1], T = c.shape[2];  // not a structured binding: OpenMP captures it (clang 14)
  SFM_CHECK(Z > 0 && Y > 0 && T > 0, "synthetic seismic: shape must be positive");
  SFM_CHECK(c.peak_frequency > 0 && c.peak_frequency <= 0.5, "synthetic seismic: peak_frequency ",
            c.peak_frequency, " must be in (0, 0.5] cycles per sample");
  SFM_CHECK(c.noise >= 0, "synthetic seismic: noise ", c.noise, " must not be negative");
  const Rng rng(c.seed, rng_stream(RngPurpose::data, 0, 0));        // the geological model
  const Rng noise_rng(c.seed, rng_stream(RngPurpose::data, 0, 1));  // the noise, one index per voxel
  const Rng layer_rng(c.seed, rng_stream(RngPurpose::data, 0, 2));  // reflection coefficients, one per interface
  uint64_t draw = 0;
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(rng.uniform(draw++)); };
  constexpr double two_pi = 2 * std::numbers::pi;

  // Structure: regional dip and a fold field shared by all layers.
  const double dip_z = uniform(-0.15, 0.15), dip_y = uniform(-0.15, 0.15);
  struct Wave {
    double amplitude, kz, ky, phase;
  };
  std::array<Wave, 3> fold;
  for (Wave& w : fold)  // wavelengths of 80–300 traces, amplitudes of 1–4 samples
    w = {uniform(1, 4), two_pi / uniform(80, 300), two_pi / uniform(80, 300), uniform(0, two_pi)};
  auto fold_at = [&](int64_t z, int64_t y) {
    double sum = 0;
    for (const Wave& w : fold) sum += w.amplitude * std::sin(w.kz * double(z) + w.ky * double(y) + w.phase);
    return sum;
  };
  const Wave amplitude_wave{0.3, two_pi / uniform(50, 200), two_pi / uniform(50, 200), uniform(0, two_pi)};

  // Faults: planes n·(z, y, t) = d with a steep dip (|n_t| small), and their throws.
  struct Fault {
    double nz, ny, nt, offset, throw_samples;
  };
  const int64_t fault_count = c.faults >= 0 ? c.faults : std::max<int64_t>(1, std::max(Z, Y) / 48);
  std::vector<Fault> faults(static_cast<size_t>(fault_count));
  double max_throw = 0;
  for (Fault& f : faults) {
    const double strike = uniform(0, std::numbers::pi), tilt = uniform(0.1, 0.35);  // tilt from vertical
    f.nz = std::cos(strike), f.ny = std::sin(strike), f.nt = tilt * (uniform(0, 1) < 0.5 ? -1 : 1);
    f.offset = f.nz * uniform(0.2, 0.8) * double(Z) + f.ny * uniform(0.2, 0.8) * double(Y) + f.nt * 0.5 * double(T);
    f.throw_samples = uniform(0.04, 0.12) * double(T) + 2;
    max_throw += f.throw_samples;
  }

  // Interfaces over the time range any trace can reach: [-margin, T + margin).
  double fold_max = 0;
  for (const Wave& w : fold) fold_max += w.amplitude;
  const double margin = (std::abs(dip_z) * double(Z) + std::abs(dip_y) * double(Y)) + 2 * fold_max + max_throw + 8;
  const double mean_thickness = c.layers > 0 ? (double(T) + 2 * margin) / double(c.layers) : 4.0;
  struct Interface {
    double time, reflectivity, growth;
  };
  std::vector<Interface> interfaces;
  for (double t = -margin; t < double(T) + margin; t += uniform(0.5, 1.5) * mean_thickness)
    interfaces.push_back({t, double(layer_rng.normal(interfaces.size())), 0.5 + std::clamp(t / double(T), 0.0, 1.0)});

  // Ricker wavelet w(t) = (1 − 2π²f²t²)·exp(−π²f²t²), truncated where it is negligible.
  const double f = c.peak_frequency;
  const int64_t half = int64_t(std::ceil(1.5 / f));
  std::vector<double> wavelet(size_t(2 * half + 1));
  for (int64_t i = -half; i <= half; ++i) {
    const double a = std::numbers::pi * f * double(i);
    wavelet[size_t(i + half)] = (1 - 2 * a * a) * std::exp(-a * a);
  }

  // The unfaulted trace is built on [-pad, T + pad) so that faulted samples can read above the top.
  const int64_t pad = int64_t(std::ceil(max_throw)) + 2, extended = T + 2 * pad;
  std::vector<float> volume(size_t(Z * Y * T));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t z = 0; z < Z; ++z)
    for (int64_t y = 0; y < Y; ++y) {
      std::vector<double> reflectivity(size_t(extended), 0.0), trace(size_t(extended), 0.0);
      const double shift = dip_z * double(z) + dip_y * double(y), bend = fold_at(z, y);
      const double gain =
          1 + amplitude_wave.amplitude * std::sin(amplitude_wave.kz * double(z) + amplitude_wave.ky * double(y) +
                                                  amplitude_wave.phase);
      for (const Interface& l : interfaces) {
        const double t = l.time + shift + l.growth * bend + double(pad);
        const int64_t i = int64_t(std::floor(t));
        const double frac = t - double(i);  // split the spike between two samples: smooth in z, y
        if (i >= 0 && i < extended) reflectivity[size_t(i)] += (1 - frac) * l.reflectivity * gain;
        if (i + 1 >= 0 && i + 1 < extended) reflectivity[size_t(i + 1)] += frac * l.reflectivity * gain;
      }
      for (int64_t t = 0; t < extended; ++t) {
        double sum = 0;
        for (int64_t i = std::max<int64_t>(0, t - half); i <= std::min(extended - 1, t + half); ++i)
          sum += reflectivity[size_t(i)] * wavelet[size_t(t - i + half)];
        trace[size_t(t)] = sum;
      }
      float* out = volume.data() + (z * Y + y) * T;
      for (int64_t t = 0; t < T; ++t) {
        double source = double(t + pad);  // where in the unfaulted trace this sample reads
        for (const Fault& fl : faults)
          if (fl.nz * double(z) + fl.ny * double(y) + fl.nt * double(t) > fl.offset) source -= fl.throw_samples;
        const int64_t i = std::clamp<int64_t>(int64_t(std::floor(source)), 0, extended - 2);
        const double frac = std::clamp(source - double(i), 0.0, 1.0);
        out[t] = float((1 - frac) * trace[size_t(i)] + frac * trace[size_t(i + 1)]);
      }
    }

  if (c.noise > 0) {
    double energy = 0;  // summed in order: the volume does not depend on the thread count
    for (int64_t i = 0; i < Z * Y * T; ++i) energy += double(volume[size_t(i)]) * double(volume[size_t(i)]);
    const double sigma = c.noise * std::sqrt(energy / double(Z * Y * T));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < Z * Y * T; ++i)
      volume[size_t(i)] += float(sigma * double(noise_rng.normal(uint64_t(i))));
  }
  return volume;
}

}  // namespace sfm
