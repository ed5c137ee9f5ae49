// How fast the trainer's reader threads cut random crops from a survey on disk. `--threads` threads
// (the loader's data.threads) read the same uniformly random crops from a synthetic MDIO survey
// (sfm's writer: 128³ chunks, blosc-zstd), two ways in one run:
//   trainer  the volume opened as the trainer opens it (data/volume.hpp, open_volume with
//            data.cache_mib): a decoded-chunk cache only when the survey fits in it, else none, so
//            each read decodes just the blosc blocks its crop needs;
//   cached   the same reads through a decoded-chunk cache of the same budget, kept on (whole chunks
//            decoded, later reads of them served from memory).
// Two rounds each, alternating, every round from cold caches; prints one JSON object with MB/s of crop data (1 MB = 10⁶ bytes),
// the cache hit rate of the cached reads and the ratio trainer / cached.
//
//   bench_crop_read [--shape 512,512,512] [--crop 128,128,128] [--crops 192] [--threads 4]
//                   [--cache-mib 256] [--dir build/data-wait]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/data/volume.hpp"
#include "bench_args.hpp"
#include "synthetic_survey.hpp"

namespace {

// Reads every crop of `origins` once on `threads` threads; MB/s of crop data.
double read_crops(const sfm::VolumeSource& volume, const std::vector<sfm::Box3>& origins, const sfm::Box3& crop, int threads) {
  std::atomic<size_t> next{0};
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> readers;
    for (int t = 0; t < threads; ++t)
      readers.emplace_back([&] {
        std::vector<float> out(size_t(sfm::box_voxels(crop)));
        for (size_t k; (k = next++) < origins.size();) volume.read(origins[k], crop, out);
      });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(origins.size()) * double(sfm::box_voxels(crop)) * 4e-6 / seconds;
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<int64_t> shape{512, 512, 512}, crop_extent{128, 128, 128};
  int64_t crops = 192, cache_mib = 256;
  int threads = 4;
  std::string dir = "build/data-wait";
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    SFM_CHECK(i + 1 < argc, key, " needs a value");
    const std::string value = argv[i + 1];
    if (key == "--shape") shape = sfm::bench::int_list(key, value, 3);
    else if (key == "--crop") crop_extent = sfm::bench::int_list(key, value, 3);
    else if (key == "--crops") crops = std::stoll(value);
    else if (key == "--threads") threads = std::stoi(value);
    else if (key == "--cache-mib") cache_mib = std::stoll(value);
    else if (key == "--dir") dir = value;
    else sfm::fail("unknown option ", key);
  }
  SFM_CHECK(crops > 0 && threads > 0 && cache_mib >= 0, "--crops and --threads must be positive, --cache-mib not negative");
  for (size_t d = 0; d < 3; ++d) SFM_CHECK(crop_extent[d] <= shape[d], "--crop must fit in --shape");
  const std::filesystem::path survey = sfm::bench::synthetic_survey(dir, shape);
  const size_t budget = size_t(cache_mib) << 20;
  const sfm::Box3 crop{crop_extent[0], crop_extent[1], crop_extent[2]};

  const sfm::Rng rng(1, 0);
  std::vector<sfm::Box3> origins(static_cast<size_t>(crops));
  for (size_t k = 0; k < origins.size(); ++k)
    for (size_t d = 0; d < 3; ++d)
      origins[k][d] = std::min(shape[d] - crop[d], int64_t(double(rng.uniform(3 * k + d)) * double(shape[d] - crop[d] + 1)));

  const auto trainer = sfm::open_volume(survey.string(), "", budget);
  const sfm::io::zarr::Array& opened = dynamic_cast<const sfm::ZarrVolume&>(*trainer).array();
  sfm::io::zarr::ArrayOptions keep;
  keep.cache_bytes = budget;
  const sfm::ZarrVolume cached(sfm::io::zarr::Array(opened.store(), opened.path(), opened.metadata(), keep), std::nullopt,
                               survey.string());
  std::vector<double> trainer_mb_s, cached_mb_s;
  for (int round = 0; round < 2; ++round) {  // each round from cold caches
    cached.array().cache().clear();
    opened.cache().clear();
    cached_mb_s.push_back(read_crops(cached, origins, crop, threads));
    trainer_mb_s.push_back(read_crops(*trainer, origins, crop, threads));
  }
  const auto mean = [](const std::vector<double>& v) { return (v[0] + v[1]) / 2; };
  const sfm::io::zarr::ReadStats stats = cached.array().stats();
  std::printf("%s\n", nlohmann::json{{"benchmark", "crop_read"},
                                     {"survey", survey.string()},
                                     {"shape", shape},
                                     {"chunks", opened.metadata().chunk_shape()},
                                     {"crop", crop_extent},
                                     {"crops", crops},
                                     {"threads", threads},
                                     {"cpus", std::thread::hardware_concurrency()},
                                     {"cache_mib", cache_mib},
                                     {"trainer_cache_mib", opened.cache().capacity_bytes() >> 20},
                                     {"trainer_mb_per_s", trainer_mb_s},
                                     {"cached_mb_per_s", cached_mb_s},
                                     {"cached_hit_rate", double(stats.cache_hits) / double(stats.cache_hits + stats.cache_misses)},
                                     {"ratio_trainer_over_cached", mean(trainer_mb_s) / mean(cached_mb_s)}}
                          .dump(1)
                          .c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_crop_read: %s\n", e.what());
  return 2;
}
