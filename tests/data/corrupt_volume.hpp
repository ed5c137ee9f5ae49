// A Zarr array on disk with one chunk that does not decode, for the data.on_error tests (sampler,
// loader, trainer): a synthetic seismic cube written by sfm's writer (v3, blosc-zstd, cubic chunks),
// then the first chunk's file (key c/0/0/0) overwritten with bytes that are no blosc frame.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sfm/data/sampler.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace sfm::test {

inline constexpr const char* corrupt_chunk_key = "c/0/0/0";

// Writes the array at `path` (side³ voxels in chunk³ chunks) and corrupts chunk c/0/0/0.
inline void write_corrupt_volume(const std::filesystem::path& path, int64_t side, int64_t chunk) {
  const std::vector<int64_t> shape{side, side, side};
  io::zarr::WriteOptions w;
  w.chunks = {chunk, chunk, chunk};
  io::zarr::write_array<float>(std::make_shared<io::FileStore>(path), "", shape,
                               synthesize_seismic({{side, side, side}, 2}), w);
  std::ofstream(path / "c" / "0" / "0" / "0", std::ios::binary | std::ios::trunc) << std::string(300, '\x5a');
}

// Whether the crop `d` reads chunk c/0/0/0 (chunk³ voxels at the origin).
inline bool reads_corrupt_chunk(const CropDraw& d, int64_t chunk) {
  return d.origin[0] < chunk && d.origin[1] < chunk && d.origin[2] < chunk;
}

}  // namespace sfm::test
