// CropSampler: global sample (step, index) → a normalised random crop of the model's crop size
// from one of several volumes.
//
// Every choice — which volume, where, which flips — comes from the counter-based RNG keyed by
// (seed, step, sample index within the step), so a sample is a pure function of its global position:
// it does not depend on the world size, the reader thread that makes it or the order of reads.
// Crops whose footprint has fewer live traces than `min_live_fraction` are redrawn (up to
// `max_attempts` draws; then the draw with the most live traces is taken). A volume where no crop can
// reach `min_live_fraction` (every trace dead, at the least) is refused when the sampler is made.
//
// A read that fails (a corrupt chunk, a network error past the store's retries) either propagates
// (ReadErrorPolicy::fail) or is skipped: the sample is drawn again from the next block of the same
// counter-based stream (redraw r of a sample uses the RNG words of attempts r·max_attempts …), so a
// sample stays a pure function of its position whichever thread reads it, and sample() returns the
// errors it skipped for the caller to count and report.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/data/crop.hpp"
#include "sfm/data/normalize.hpp"
#include "sfm/data/read_error_policy.hpp"
#include "sfm/data/volume.hpp"

namespace sfm {

struct SamplerOptions {
  Box3 crop{};
  CropNormalization normalization{};
  bool flip = false;               // mirror the lateral axes at random (each with probability ½)
  double min_live_fraction = 0.5;  // of the traces under a crop's footprint
  int max_attempts = 16;
  ReadErrorPolicy on_error = ReadErrorPolicy::fail;
  int max_redraws = 16;  // skip: failed reads of one sample after which it fails all the same
  uint64_t seed = 0;
};

// Where a sample comes from.
struct CropDraw {
  size_t volume = 0;
  Box3 origin{};
  bool flip_z = false, flip_y = false;
  double live = 1.0;
};

class CropSampler {
 public:
  CropSampler(std::vector<std::shared_ptr<const VolumeSource>> volumes, SamplerOptions options)
      : volumes_(std::move(volumes)), options_(options) {
    SFM_CHECK(!volumes_.empty(), "crop sampler: no volume to sample from");
    SFM_CHECK(options_.max_attempts >= 1 && options_.max_redraws >= 1,
              "crop sampler: max_attempts and max_redraws must be positive");
    const Box3& crop = options_.crop;
    for (const auto& v : volumes_) {
      const Box3 s = v->shape();
      for (int i = 0; i < 3; ++i)
        SFM_CHECK(crop[size_t(i)] <= s[size_t(i)], "the crop ", crop[0], "×", crop[1], "×", crop[2],
                  " is larger than the volume ", v->describe(), " of shape ", s[0], "×", s[1], "×", s[2], " (axis ", i,
                  ")");
      // Drawing would never find a crop worth training on: refuse the volume now.
      const double best = v->live().best_fraction(crop[0], crop[1]);
      SFM_CHECK(best > 0, v->describe(), ": its trace mask marks every trace dead; there is nothing to train on");
      SFM_CHECK(best >= options_.min_live_fraction, v->describe(), ": no ", crop[0], "×", crop[1],
                "-trace crop footprint has data.min_live_fraction = ", options_.min_live_fraction,
                " of its traces live (the best has ", best, "); lower data.min_live_fraction or drop the volume");
    }
  }

  const SamplerOptions& options() const { return options_; }
  int64_t crop_voxels() const { return box_voxels(options_.crop); }

  // Where sample `sample` of step `step` comes from; `redraw` > 0 after that many failed reads.
  CropDraw draw(uint64_t step, uint64_t sample, int redraw = 0) const {
    const Rng rng(options_.seed, rng_stream(RngPurpose::crop, step, sample));
    CropDraw best;
    best.live = -1;
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      const uint64_t base = (uint64_t(redraw) * uint64_t(options_.max_attempts) + uint64_t(attempt)) * 8;
      CropDraw d;
      d.volume = size_t(rng.bits(base) % uint32_t(volumes_.size()));
      const Box3 shape = volumes_[d.volume]->shape();
      for (size_t i = 0; i < 3; ++i)
        d.origin[i] = int64_t(rng.bits(base + 1 + i) % uint64_t(shape[i] - options_.crop[i] + 1));
      const uint32_t flips = rng.bits(base + 4);
      d.flip_z = options_.flip && (flips & 1u);
      d.flip_y = options_.flip && (flips & 2u);
      d.live = volumes_[d.volume]->live().fraction(d.origin[0], d.origin[1], options_.crop[0], options_.crop[1]);
      if (d.live > best.live) best = d;
      if (d.live >= options_.min_live_fraction) break;
    }
    return best;
  }

  // Fills `out` (crop_voxels() floats) with sample `sample` of step `step`. Returns the errors of the
  // reads skipped on the way (on_error skip; empty when the first draw reads), in draw order; past
  // max_redraws of them, or at the first with on_error fail, the read's error is thrown.
  std::vector<std::string> sample(uint64_t step, uint64_t sample, std::span<float> out) const {
    SFM_CHECK(int64_t(out.size()) == crop_voxels(), "crop sampler: output holds ", out.size(), " floats, need ",
              crop_voxels());
    std::vector<std::string> skipped;
    for (int redraw = 0;; ++redraw) {
      const CropDraw d = draw(step, sample, redraw);
      try {
        volumes_[d.volume]->read(d.origin, options_.crop, out);
      } catch (const Error& e) {
        if (options_.on_error == ReadErrorPolicy::fail) throw;
        skipped.emplace_back(e.what());
        SFM_CHECK(redraw + 1 < options_.max_redraws, "data.on_error skip: ", options_.max_redraws,
                  " reads in a row failed for sample ", sample, " of step ", step, "; the last: ", e.what());
        continue;
      }
      normalize_crop(out, options_.normalization);
      flip_lateral(out, options_.crop, d.flip_z, d.flip_y);
      return skipped;
    }
  }

 private:
  std::vector<std::shared_ptr<const VolumeSource>> volumes_;
  SamplerOptions options_;
};

}  // namespace sfm
