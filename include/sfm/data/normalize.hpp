// Per-crop normalisation of seismic amplitudes before they enter the model.
//
//   none      values as stored (non-finite values, e.g. a missing chunk's NaN fill, become 0)
//   standard  zero mean, unit standard deviation over the crop
//   robust    clip to the [p, 100 − p] percentiles of the crop, then standardise: a few huge
//             amplitudes (spikes, bad traces) no longer squash the rest of the crop towards 0
// A constant crop becomes zeros under standard and robust.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"

namespace sfm {

struct CropNormalization {
  enum class Kind { none, standard, robust };
  Kind kind = Kind::standard;
  double clip_percentile = 0.5;  // robust: clip below this percentile and above 100 minus it
};

inline CropNormalization::Kind normalization_kind_from_string(const std::string& name) {
  if (name == "none") return CropNormalization::Kind::none;
  if (name == "standard") return CropNormalization::Kind::standard;
  if (name == "robust") return CropNormalization::Kind::robust;
  fail("unknown normalization '", name, "' (known: none, standard, robust)");
}

namespace normalize_detail {

// The q-quantile (q in [0, 1]) of `values` (reordered), linearly interpolated like numpy's
// default; O(n) by selection.
inline double quantile(std::vector<float>& values, double q) {
  const double at = q * double(values.size() - 1);
  const auto lo = std::ptrdiff_t(std::floor(at));
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double below = values[size_t(lo)];
  if (size_t(lo) + 1 >= values.size()) return below;
  const double above = *std::min_element(values.begin() + lo + 1, values.end());
  return below + (at - double(lo)) * (above - below);
}

inline void standardize(std::span<float> values) {
  double sum = 0, sq = 0;
  for (float v : values) sum += v;
  const double mean = sum / double(values.size());
  for (float v : values) sq += (v - mean) * (v - mean);
  const double std = std::sqrt(sq / double(values.size()));
  const double scale = std > 0 ? 1.0 / std : 0.0;
  for (float& v : values) v = float((v - mean) * scale);
}

}  // namespace normalize_detail

inline void normalize_crop(std::span<float> values, const CropNormalization& how) {
  for (float& v : values)
    if (!std::isfinite(v)) v = 0.0f;
  if (how.kind == CropNormalization::Kind::none || values.empty()) return;
  if (how.kind == CropNormalization::Kind::robust) {
    SFM_CHECK(how.clip_percentile >= 0 && how.clip_percentile < 50, "robust normalization: clip percentile ",
              how.clip_percentile, " outside [0, 50)");
    std::vector<float> scratch(values.begin(), values.end());
    const float lo = float(normalize_detail::quantile(scratch, how.clip_percentile / 100.0));
    const float hi = float(normalize_detail::quantile(scratch, 1.0 - how.clip_percentile / 100.0));
    for (float& v : values) v = std::clamp(v, lo, hi);
  }
  normalize_detail::standardize(values);
}

}  // namespace sfm
