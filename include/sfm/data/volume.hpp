// The volumes crops are cut from: an interface (shape, box reads, live traces), a volume held in
// memory (the synthetic generator's), and a Zarr array or MDIO dataset opened from a URL (local
// path, file://, http(s)://, s3://) through io/open_store.hpp.
//
// Live traces: MDIO marks the traces that exist in a survey (v1 `trace_mask`, v0
// `metadata/live_mask`) over the lateral dims [Z, Y]. The mask is read once and kept as a summed-area
// table, so the live fraction of any crop's footprint costs four lookups. Volumes without a mask
// count every trace as live. A dead trace reads as NaN from either MDIO version (ZarrVolume::read).
#pragma once

#include <algorithm>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/data/crop.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/group.hpp"

namespace sfm {

// Counts of live traces over [Z, Y] as a summed-area table.
class LiveMap {
 public:
  LiveMap() = default;
  // `live` [Z, Y], nonzero = live.
  LiveMap(std::span<const float> live, int64_t Z, int64_t Y) : Z_(Z), Y_(Y), sums_(size_t((Z + 1) * (Y + 1)), 0) {
    SFM_CHECK(int64_t(live.size()) == Z * Y, "live mask holds ", live.size(), " values, expected ", Z, " × ", Y);
    for (int64_t z = 0; z < Z; ++z)
      for (int64_t y = 0; y < Y; ++y)
        sums_[idx(z + 1, y + 1)] = (live[size_t(z * Y + y)] != 0.0f) + sums_[idx(z, y + 1)] + sums_[idx(z + 1, y)] -
                                   sums_[idx(z, y)];
  }
  bool empty() const { return sums_.empty(); }
  // Fraction of live traces in [z0, z0 + dz) × [y0, y0 + dy); 1 for an empty map.
  double fraction(int64_t z0, int64_t y0, int64_t dz, int64_t dy) const {
    if (empty()) return 1.0;
    const int64_t live = sums_[idx(z0 + dz, y0 + dy)] - sums_[idx(z0, y0 + dy)] - sums_[idx(z0 + dz, y0)] +
                         sums_[idx(z0, y0)];
    return double(live) / double(dz * dy);
  }
  // The highest fraction() of any dz × dy footprint inside the map (0: every trace dead); 1 for an
  // empty map. One pass over the footprints, four lookups each.
  double best_fraction(int64_t dz, int64_t dy) const {
    if (empty()) return 1.0;
    double best = 0;
    for (int64_t z0 = 0; z0 + dz <= Z_; ++z0)
      for (int64_t y0 = 0; y0 + dy <= Y_; ++y0) best = std::max(best, fraction(z0, y0, dz, dy));
    return best;
  }

 private:
  size_t idx(int64_t z, int64_t y) const { return size_t(z * (Y_ + 1) + y); }
  int64_t Z_ = 0, Y_ = 0;
  std::vector<int64_t> sums_;
};

class VolumeSource {
 public:
  virtual ~VolumeSource() = default;
  virtual Box3 shape() const = 0;
  // Reads the box [origin, origin + crop) into `out` (C order). Safe to call from several threads.
  virtual void read(const Box3& origin, const Box3& crop, std::span<float> out) const = 0;
  virtual const LiveMap& live() const = 0;
  virtual std::string describe() const = 0;
};

class MemoryVolume final : public VolumeSource {
 public:
  MemoryVolume(std::vector<float> values, Box3 shape, std::string name = "in-memory volume")
      : values_(std::move(values)), shape_(shape), name_(std::move(name)) {
    SFM_CHECK(int64_t(values_.size()) == box_voxels(shape_), name_, ": ", values_.size(), " values for shape ",
              shape_[0], "×", shape_[1], "×", shape_[2]);
  }
  Box3 shape() const override { return shape_; }
  void read(const Box3& origin, const Box3& crop, std::span<float> out) const override {
    copy_crop(out, values_, shape_, origin, crop);
  }
  const LiveMap& live() const override { return live_; }
  std::string describe() const override { return name_; }

 private:
  std::vector<float> values_;
  Box3 shape_;
  std::string name_;
  LiveMap live_;
};

class ZarrVolume final : public VolumeSource {
 public:
  // `array` must have 3 dims; `mask`, when given, its 2 lateral dims.
  ZarrVolume(io::zarr::Array array, std::optional<io::zarr::Array> mask, std::string url)
      : array_(std::move(array)), url_(std::move(url)) {
    SFM_CHECK(array_.rank() == 3, url_, ": the seismic array '", array_.path(), "' has ", array_.rank(),
              " dims; sfm trains on 3D volumes [inline, crossline, time]");
    for (int i = 0; i < 3; ++i) shape_[size_t(i)] = array_.shape()[size_t(i)];
    if (mask) {
      SFM_CHECK(mask->rank() == 2 && mask->shape()[0] == shape_[0] && mask->shape()[1] == shape_[1], url_,
                ": the trace mask '", mask->path(), "' does not cover the volume's lateral dims");
      live_ = LiveMap(mask->read_all(), shape_[0], shape_[1]);
    }
  }
  Box3 shape() const override { return shape_; }
  // Traces the mask marks dead read as NaN, whatever the store holds there (MDIO v1 leaves its NaN
  // fill, v0 stores 0.0): one rule for both versions.
  void read(const Box3& origin, const Box3& crop, std::span<float> out) const override {
    array_.read_box(std::span<const int64_t>(origin), std::span<const int64_t>(crop), out);
    if (live_.fraction(origin[0], origin[1], crop[0], crop[1]) == 1.0) return;
    float* trace = out.data();
    for (int64_t z = 0; z < crop[0]; ++z)
      for (int64_t y = 0; y < crop[1]; ++y, trace += crop[2])
        if (live_.fraction(origin[0] + z, origin[1] + y, 1, 1) == 0.0)
          std::fill(trace, trace + crop[2], std::numeric_limits<float>::quiet_NaN());
  }
  const LiveMap& live() const override { return live_; }
  std::string describe() const override { return url_; }
  const io::zarr::Array& array() const { return array_; }

 private:
  io::zarr::Array array_;
  std::string url_;
  Box3 shape_{};
  LiveMap live_;
};

// The reader's decoded-chunk cache for random crops of `array`: `cache_bytes` when every chunk of
// the array fits in it (each is then decoded once), none otherwise. Uniformly random crops of a
// larger volume rarely meet a cached chunk again, and without a cache a read decodes only the blosc
// blocks its crop needs (io/zarr/blosc_scatter.hpp): 128³ crops from a 512³ survey twice the
// default cache's size, read by 4 threads on 2 cores, came at 1.45× the MB/s without it, although
// 61 % of the chunk reads hit the cache (bench_crop_read).
inline io::zarr::Array with_crop_cache(const io::zarr::Array& array, size_t cache_bytes) {
  const io::zarr::ArrayMetadata& m = array.metadata();
  const std::vector<int64_t>& chunk = m.chunk_shape();  // what the cache holds: whole (inner) chunks
  double decoded = sizeof(float);
  for (size_t d = 0; d < m.rank(); ++d)
    decoded *= double((m.shape[d] + chunk[d] - 1) / chunk[d] * chunk[d]);  // edge chunks are whole
  io::zarr::ArrayOptions options;
  options.cache_bytes = decoded <= double(cache_bytes) ? cache_bytes : 0;
  return io::zarr::Array(array.store(), array.path(), m, options);
}

// Opens `url`: a plain 3D Zarr array, or an MDIO dataset (its seismic variable and trace mask);
// `variable` names the array inside a group explicitly (then no mask is looked up). Crops are read
// with a decoded-chunk cache of `cache_bytes` when the volume fits in it (with_crop_cache).
inline std::unique_ptr<VolumeSource> open_volume(const std::string& url, const std::string& variable = "",
                                                 size_t cache_bytes = size_t(256) << 20) {
  std::shared_ptr<io::Store> store;
  try {
    store = io::open_store(url);
    io::zarr::Node node = io::zarr::open_node(store, "");
    if (auto* array = std::get_if<io::zarr::Array>(&node)) {
      SFM_CHECK(variable.empty(), "data.variable '", variable, "' given, but the URL is an array, not a group");
      return std::make_unique<ZarrVolume>(with_crop_cache(*array, cache_bytes), std::nullopt, url);
    }
    if (!variable.empty())
      return std::make_unique<ZarrVolume>(with_crop_cache(std::get<io::zarr::Group>(node).open_array(variable), cache_bytes),
                                          std::nullopt, url);
    const auto dataset = io::mdio::Dataset::open(store, "");
    return std::make_unique<ZarrVolume>(with_crop_cache(dataset.seismic(), cache_bytes), dataset.trace_mask(), url);
  } catch (const Error& e) {
    fail("cannot open the volume '", url, "': ", e.what());
  }
}

}  // namespace sfm
