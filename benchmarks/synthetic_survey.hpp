// A synthetic MDIO v1 survey on disk for the data benchmarks (bench_data_wait, bench_crop_read):
// DIR/survey-ZxYxX.mdio, written once per shape (MDIO's default 128³ chunks, blosc-zstd) and
// reused by later runs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sfm/data/synthetic.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/open_store.hpp"

namespace sfm::bench {

inline std::filesystem::path synthetic_survey(const std::filesystem::path& dir, const std::vector<int64_t>& shape) {
  const std::filesystem::path root = std::filesystem::absolute(dir);
  const std::filesystem::path survey =
      root / ("survey-" + std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" + std::to_string(shape[2]) + ".mdio");
  if (!std::filesystem::exists(survey / "zarr.json")) {
    std::filesystem::remove_all(survey);
    std::filesystem::create_directories(survey);
    const std::vector<float> volume = synthesize_seismic({{shape[0], shape[1], shape[2]}, 1});
    io::mdio::write_v1(io::open_store(survey.string()), "", shape, volume, {});
  }
  return survey;
}

}  // namespace sfm::bench
