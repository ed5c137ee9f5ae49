// The data pipeline: the synthetic seismic generator (determinism, lateral continuity broken by
// faults, band limits, noise level), normalisation, flips, the crop sampler (determinism, dead-trace rejection,
// size checks, volumes with no crop to train on, a corrupt chunk under data.on_error fail and skip)
// over in-memory, Zarr and MDIO volumes, and the prefetching loader (thread-count independence, also
// of skipped reads; disjoint dp slices).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <omp.h>
#include <set>

#include "sfm/data/loader.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "corrupt_volume.hpp"
#include "sfm_test.hpp"

using namespace sfm;

namespace {

std::filesystem::path tmp_dir(const std::string& name) {
  const char* base = std::getenv("SFM_TEST_TMP");
  auto dir = std::filesystem::path(base ? base : "/tmp") / ("data-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::shared_ptr<const VolumeSource> synthetic_volume(Box3 shape = {32, 32, 48}) {
  return std::make_shared<MemoryVolume>(synthesize_seismic({shape, 3}), shape);
}

SamplerOptions options(Box3 crop = {16, 16, 16}) {
  SamplerOptions o;
  o.crop = crop;
  o.flip = true;
  o.seed = 5;
  return o;
}

}  // namespace

namespace {

// The correlation coefficient of neighbouring traces (along y) over windows of 16 time samples:
// the mean and the lowest over all windows.
std::pair<double, double> neighbour_correlation(const std::vector<float>& v, Box3 shape) {
  const auto [Z, Y, T] = shape;
  constexpr int64_t window = 16;
  double sum = 0, lowest = 1;
  int64_t count = 0;
  for (int64_t z = 0; z < Z; ++z)
    for (int64_t y = 0; y + 1 < Y; ++y)
      for (int64_t t0 = 0; t0 + window <= T; t0 += window) {
        const float* a = v.data() + (z * Y + y) * T + t0;
        const float* b = a + T;
        double ab = 0, aa = 0, bb = 0;
        for (int64_t t = 0; t < window; ++t)
          ab += double(a[t]) * b[t], aa += double(a[t]) * a[t], bb += double(b[t]) * b[t];
        const double r = ab / std::sqrt(aa * bb);
        sum += r, lowest = std::min(lowest, r), ++count;
      }
  return {sum / double(count), lowest};
}

double rms(const std::vector<float>& v) {
  double e = 0;
  for (float x : v) e += double(x) * x;
  return std::sqrt(e / double(v.size()));
}

}  // namespace

TEST_CASE("synthetic seismic: deterministic, continuous layers cut by faults, band-limited, calibrated noise") {
  const Box3 shape{24, 40, 96};
  SyntheticSeismicConfig c;
  c.shape = shape, c.seed = 11;
  const std::vector<float> v = synthesize_seismic(c);
  CHECK(synthesize_seismic(c) == v);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  CHECK(synthesize_seismic(c) == v);  // the same on any number of threads
  omp_set_num_threads(threads);
  c.seed = 12;
  CHECK(synthesize_seismic(c) != v);

  // Reflectors are laterally continuous: neighbouring traces correlate, except across a fault.
  c.seed = 11, c.noise = 0;
  c.faults = 0;
  const auto [unfaulted_mean, unfaulted_low] = neighbour_correlation(synthesize_seismic(c), shape);
  c.faults = 2;
  const std::vector<float> clean = synthesize_seismic(c);
  const auto [faulted_mean, faulted_low] = neighbour_correlation(clean, shape);
  INFO("neighbour correlation without faults: mean " << unfaulted_mean << ", lowest " << unfaulted_low
                                                     << "; with 2: mean " << faulted_mean << ", lowest " << faulted_low);
  CHECK(unfaulted_mean > 0.9);
  CHECK(unfaulted_low > 0.5);
  CHECK(faulted_low < unfaulted_low - 0.3);

  // Dense reflectivity: few quiet stretches (|amplitude| under 5 % of the RMS) in the clean traces.
  const double level = 0.05 * rms(clean);
  int64_t quiet = 0;
  for (float x : clean) quiet += std::abs(x) < level;
  CHECK(double(quiet) / double(clean.size()) < 0.1);

  // Band limits: most spectral energy of a trace lies within a factor 2 of the Ricker peak.
  const int64_t T = shape[2];
  double in_band = 0, total = 0;
  for (int64_t trace = 0; trace < shape[0] * shape[1]; trace += 37)
    for (int64_t k = 1; k <= T / 2; ++k) {
      double re = 0, im = 0;
      for (int64_t t = 0; t < T; ++t) {
        const double phase = 2 * std::numbers::pi * double(k * t) / double(T);
        re += clean[size_t(trace * T + t)] * std::cos(phase), im -= clean[size_t(trace * T + t)] * std::sin(phase);
      }
      const double power = re * re + im * im, frequency = double(k) / double(T);
      total += power;
      if (frequency > c.peak_frequency / 2 && frequency < c.peak_frequency * 2) in_band += power;
    }
  CHECK(in_band / total > 0.8);

  // Noise: `noise` times the clean RMS.
  c.noise = 0.2;
  const std::vector<float> noisy = synthesize_seismic(c);
  std::vector<float> difference(noisy.size());
  for (size_t i = 0; i < noisy.size(); ++i) difference[i] = noisy[i] - clean[i];
  CHECK(rms(difference) / rms(clean) == Approx(0.2).epsilon(0.02));

  c.peak_frequency = 0.7;
  CHECK_THROWS_WITH(synthesize_seismic(c), test::contains("peak_frequency"));
}

TEST_CASE("normalisation: standard, robust clipping, none, non-finite values") {
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 10);
  v[3] = 1e6f;  // a spike
  std::vector<float> robust = v, standard = v;
  normalize_crop(standard, {CropNormalization::Kind::standard});
  normalize_crop(robust, {CropNormalization::Kind::robust, 1.0});
  double mean = 0, sq = 0;
  for (float x : robust) mean += x;
  for (float x : robust) sq += x * x;
  CHECK(std::abs(mean / 1000) < 1e-5);
  CHECK(std::abs(sq / 1000 - 1) < 1e-4);
  CHECK(robust[3] < 3.0f);     // the spike is clipped to the 99th percentile
  CHECK(standard[3] > 30.0f);  // and dominates the standard one
  std::vector<float> bad{1.0f, std::nanf(""), 3.0f};
  normalize_crop(bad, {CropNormalization::Kind::none});
  CHECK(bad[1] == 0.0f);
  CHECK_THROWS_WITH(normalization_kind_from_string("minmax"), test::contains("known: none, standard, robust"));
}

TEST_CASE("lateral flips mirror z and y, never time") {
  const Box3 shape{2, 3, 4};
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  std::vector<float> f = v;
  flip_lateral(f, shape, true, true);
  for (int64_t z = 0; z < 2; ++z)
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 4; ++x) CHECK(f[size_t((z * 3 + y) * 4 + x)] == v[size_t(((1 - z) * 3 + 2 - y) * 4 + x)]);
}

TEST_CASE("sampler: a sample is a pure function of (seed, step, index)") {
  const CropSampler a({synthetic_volume()}, options()), b({synthetic_volume()}, options());
  std::vector<float> x(size_t(a.crop_voxels())), y(x.size()), z(x.size());
  a.sample(3, 7, x);
  b.sample(3, 7, y);
  a.sample(3, 8, z);
  CHECK(x == y);
  CHECK(x != z);
  CHECK_THROWS_WITH(CropSampler({synthetic_volume({32, 8, 48})}, options()), test::contains("larger than the volume"));
}

TEST_CASE("sampler: crops over dead traces are redrawn (MDIO trace mask)") {
  const auto dir = tmp_dir("dead");
  const std::vector<int64_t> shape{32, 32, 32};
  const auto values = synthesize_seismic({{32, 32, 32}, 1});
  auto store = std::make_shared<io::FileStore>(dir / "v.mdio");
  io::mdio::write_v1(store, "", shape, values);
  // Kill the traces of inline z < 12: only 8-trace crops at z >= 12 − 8·(1 − 0.75) = 10 pass.
  std::vector<uint8_t> mask(32 * 32, 1);
  for (int64_t z = 0; z < 12; ++z)
    for (int64_t y = 0; y < 32; ++y) mask[size_t(z * 32 + y)] = 0;
  io::zarr::WriteOptions w;
  w.chunks = {32, 32};
  w.dimension_names = std::vector<std::string>{"inline", "crossline"};
  const std::vector<int64_t> trace_shape{32, 32};
  io::zarr::write_array<uint8_t>(store, "trace_mask", trace_shape, mask, w, io::zarr::DataType{io::zarr::Kind::Bool, 1, false});

  auto o = options({8, 8, 8});
  o.min_live_fraction = 0.75;
  const CropSampler sampler({open_volume((dir / "v.mdio").string())}, o);
  int64_t lowest = 32;
  for (uint64_t i = 0; i < 200; ++i) {
    const CropDraw d = sampler.draw(0, i);
    CHECK(d.live >= 0.75);
    lowest = std::min(lowest, d.origin[0]);
  }
  CHECK(lowest == 10);
  CHECK_THROWS_WITH(open_volume((dir / "missing.mdio").string()), test::contains("cannot open the volume"));

  // The chunk cache is kept only for a volume whose chunks all fit in it, and reads with and
  // without it agree (on live traces: dead ones read as NaN, which equals nothing).
  const auto probe = open_volume((dir / "v.mdio").string());
  const std::vector<int64_t>& chunk = dynamic_cast<const ZarrVolume&>(*probe).array().metadata().chunk_shape();
  size_t fits = sizeof(float);
  for (size_t d = 0; d < 3; ++d) fits *= size_t((32 + chunk[d] - 1) / chunk[d] * chunk[d]);  // edge chunks whole
  const auto cached = open_volume((dir / "v.mdio").string(), "", 2 * fits);
  const auto uncached = open_volume((dir / "v.mdio").string(), "", fits - 4);
  const auto& cached_array = dynamic_cast<const ZarrVolume&>(*cached).array();
  CHECK(cached_array.cache().capacity_bytes() == 2 * fits);
  CHECK(dynamic_cast<const ZarrVolume&>(*uncached).array().cache().capacity_bytes() == 0);
  std::vector<float> a(9 * 10 * 11), b(a.size());
  for (int round = 0; round < 2; ++round) {
    cached->read({3, 5, 7}, {9, 10, 11}, a);
    uncached->read({3, 5, 7}, {9, 10, 11}, b);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);  // bitwise: the box has dead (NaN) traces
  }
  CHECK(cached_array.stats().cache_hits == 1);
}

TEST_CASE("volumes: a trace the mask marks dead reads as NaN from MDIO v1 (NaN stored) and v0 (0.0 stored)") {
  const auto dir = tmp_dir("dead-nan");
  const std::vector<int64_t> shape{6, 5, 8}, trace_shape{6, 5};
  std::vector<float> values(6 * 5 * 8);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0f + float(i);
  std::vector<uint8_t> mask(6 * 5, 1);
  mask[2 * 5 + 3] = mask[4 * 5 + 0] = 0;
  const io::zarr::DataType boolean{io::zarr::Kind::Bool, 1, false};

  // v1: sfm's writer (amplitude, trace_mask); the dead traces hold values here, not NaN.
  auto v1 = std::make_shared<io::FileStore>(dir / "v1.mdio");
  io::mdio::write_v1(v1, "", shape, values);
  io::zarr::WriteOptions m;
  m.dimension_names = {"inline", "crossline"};
  io::zarr::write_array<uint8_t>(v1, "trace_mask", trace_shape, mask, m, boolean);
  // v0: Zarr v2, data/chunked_012 with 0.0 in the dead traces, metadata/live_mask.
  auto v0 = std::make_shared<io::FileStore>(dir / "v0.mdio");
  io::zarr::write_group(*v0, "", 2, {{"dimension", nlohmann::json::array()}});
  std::vector<float> zeroed = values;
  for (size_t t = 0; t < mask.size(); ++t)
    if (!mask[t]) std::fill(zeroed.begin() + t * 8, zeroed.begin() + (t + 1) * 8, 0.0f);
  io::zarr::WriteOptions v2;
  v2.zarr_format = 2;
  io::zarr::write_array<float>(v0, "data/chunked_012", shape, zeroed, v2);
  io::zarr::write_array<uint8_t>(v0, "metadata/live_mask", trace_shape, mask, v2, boolean);

  for (const char* name : {"v1.mdio", "v0.mdio"}) {
    const auto volume = open_volume((dir / name).string());
    std::vector<float> box(4 * 4 * 8);
    volume->read({1, 0, 0}, {4, 4, 8}, box);  // inlines 1–4, crosslines 0–3: both dead traces
    int64_t nan = 0, wrong = 0;
    for (int64_t z = 0; z < 4; ++z)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 8; ++x) {
          const float v = box[size_t((z * 4 + y) * 8 + x)];
          const bool dead = mask[size_t((z + 1) * 5 + y)] == 0;
          nan += std::isnan(v);
          wrong += dead ? !std::isnan(v) : v != values[size_t(((z + 1) * 5 + y) * 8 + x)];
        }
    INFO(name);
    CHECK(nan == 2 * 8);
    CHECK(wrong == 0);
  }
}

TEST_CASE("loader: same batches for any thread count; dp ranks draw disjoint samples") {
  const auto sampler = std::make_shared<const CropSampler>(std::vector<std::shared_ptr<const VolumeSource>>{synthetic_volume()},
                                                           options());
  auto collect = [&](LoaderPlan plan, int threads, int prefetch) {
    PrefetchLoader loader(sampler, plan, threads, prefetch);
    std::vector<std::vector<float>> out;
    for (int64_t i = 0; i < plan.total_batches(); ++i) {
      const LoadedBatch b = loader.next();
      out.emplace_back(b.crops.begin(), b.crops.end());
      CHECK(b.step == plan.first_step + i / plan.micro_batches());
    }
    CHECK_THROWS_WITH(loader.next(), test::contains("consumed"));
    return out;
  };
  const LoaderPlan whole{2, 5, 4, 2, 0};  // steps 2..4, 4 samples per step in micro-batches of 2
  const auto one = collect(whole, 1, 1), many = collect(whole, 3, 4);
  CHECK(one == many);
  // Rank 1 of 2 (samples 2 and 3 of each step) sees the second micro-batch of each step.
  const auto rank1 = collect({2, 5, 2, 2, 2}, 2, 2);
  REQUIRE(rank1.size() == 3);
  for (size_t s = 0; s < 3; ++s) CHECK(rank1[s] == one[2 * s + 1]);
  CHECK_THROWS_WITH(PrefetchLoader(sampler, {0, 1, 4, 3, 0}, 1, 1), test::contains("does not divide"));
}

TEST_CASE("sampler: a volume whose trace mask leaves no crop to train on is refused, naming it") {
  const auto dir = tmp_dir("all-dead");
  const std::string url = (dir / "v.mdio").string();
  auto store = std::make_shared<io::FileStore>(url);
  io::mdio::write_v1(store, "", std::vector<int64_t>{16, 16, 16}, synthesize_seismic({{16, 16, 16}, 1}));
  auto write_mask = [&](const std::vector<uint8_t>& mask) {
    io::zarr::WriteOptions w;
    w.dimension_names = std::vector<std::string>{"inline", "crossline"};
    io::zarr::write_array<uint8_t>(store, "trace_mask", std::vector<int64_t>{16, 16}, mask, w,
                                   io::zarr::DataType{io::zarr::Kind::Bool, 1, false});
  };
  std::vector<uint8_t> mask(16 * 16, 0);
  write_mask(mask);
  auto o = options({8, 8, 8});
  o.min_live_fraction = 0;  // even a sampler that takes any crop has nothing to take
  CHECK_THROWS_WITH(CropSampler({open_volume(url)}, o), test::contains(url + ": its trace mask marks every trace dead"));
  // One live trace: the best 8×8 footprint holds 1/64 live traces.
  mask[5 * 16 + 9] = 1;
  write_mask(mask);
  o.min_live_fraction = 0.5;
  CHECK_THROWS_WITH(CropSampler({open_volume(url)}, o),
                    test::contains(url + ": no 8×8-trace crop footprint has data.min_live_fraction = 0.5 of its traces "
                                         "live (the best has 0.015625)"));
  o.min_live_fraction = 1.0 / 64;
  const CropSampler sampler({open_volume(url)}, o);
  CHECK(sampler.draw(0, 0).live == 1.0 / 64);
}

TEST_CASE("sampler: a corrupt chunk read without the cache: on_error fail names it, skip redraws around it") {
  const auto dir = tmp_dir("corrupt");
  const std::string url = (dir / "bad.zarr").string();
  test::write_corrupt_volume(url, 32, 8);  // an 8³ crop reads chunk c/0/0/0 in (8/25)³ ≈ 3 % of the draws
  const std::shared_ptr<const VolumeSource> volume = open_volume(url, "", 0);
  REQUIRE(dynamic_cast<const ZarrVolume&>(*volume).array().cache().capacity_bytes() == 0);
  auto o = options({8, 8, 8});
  std::vector<float> crop(8 * 8 * 8);

  // fail (the default): the read's error, naming the store and the chunk.
  const CropSampler failing({volume}, o);
  uint64_t bad = 0;
  while (!test::reads_corrupt_chunk(failing.draw(1, bad), 8)) ++bad;
  CHECK_THROWS_WITH(failing.sample(1, bad, crop), test::contains(url) && test::contains(test::corrupt_chunk_key));

  // skip: every draw a sample skipped reads the corrupt chunk, the one it keeps does not.
  o.on_error = ReadErrorPolicy::skip;
  const auto skipping = std::make_shared<const CropSampler>(std::vector{volume}, o);
  int64_t skips = 0;
  for (uint64_t i = 0; i < 100; ++i) {
    const std::vector<std::string> skipped = skipping->sample(1, i, crop);
    for (size_t r = 0; r < skipped.size(); ++r) {
      CHECK(test::reads_corrupt_chunk(skipping->draw(1, i, int(r)), 8));
      CHECK_THAT(skipped[r], test::contains(test::corrupt_chunk_key));
    }
    CHECK(!test::reads_corrupt_chunk(skipping->draw(1, i, int(skipped.size())), 8));
    CHECK(std::all_of(crop.begin(), crop.end(), [](float v) { return std::isfinite(v); }));
    skips += int64_t(skipped.size());
  }
  CHECK(skipping->sample(1, bad, crop).size() >= 1);
  CHECK(skips >= 2);

  // The loader hands out the same crops and the same skips for any thread count.
  auto collect = [&](int threads) {
    PrefetchLoader loader(skipping, LoaderPlan{0, 10, 8, 4, 0}, threads, 3);
    std::vector<std::vector<float>> crops;
    std::vector<std::string> errors;
    for (int64_t b = 0; b < loader.plan().total_batches(); ++b) {
      const LoadedBatch batch = loader.next();
      crops.emplace_back(batch.crops.begin(), batch.crops.end());
      errors.insert(errors.end(), batch.skipped.begin(), batch.skipped.end());
    }
    return std::pair{crops, errors};
  };
  const auto one = collect(1), many = collect(4);
  CHECK(one.first == many.first);
  CHECK(one.second == many.second);
  CHECK(one.second.size() >= 1);

  // A sample whose reads keep failing ends after max_redraws of them.
  o.max_redraws = 1;
  const CropSampler strict({volume}, o);
  CHECK_THROWS_WITH(strict.sample(1, bad, crop), test::contains("data.on_error skip: 1 reads in a row failed for sample") &&
                                                     test::contains(test::corrupt_chunk_key));
}
