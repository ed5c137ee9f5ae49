// Random-box read throughput of sfm's Zarr reader, as one JSON object.
//
//   bench_io_read --dir DIR [--shape 384,384,384] [--box 128] [--boxes 24] [--seed 0] [--http URL]
//
// Writes (once) a synthetic seismic volume as two Zarr v3 stores under DIR, blosc-zstd (clevel 5,
// byte shuffle) as MDIO writes them: chunks64 (64³ chunks, MDIO v0's default) and chunks128 (128³,
// v1's), plus DIR/boxes.json, the box origins that benchmarks/io_read_peers.py reads too. Then
// reads every box from each store with the chunk cache off, so each read fetches and decodes its
// chunks afresh, and reports MB/s of box data (1 MB = 10⁶ bytes) and a checksum of the values.
// With --http URL (a server such as nginx serving DIR), the same reads go over HTTP with 1, 8 and
// 64 requests in flight.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/store_http.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
namespace zarr = sfm::io::zarr;

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> out;
  for (size_t begin = 0; begin <= text.size();) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    out.push_back(std::stoll(text.substr(begin, comma - begin)));
    begin = comma + 1;
  }
  return out;
}

// Both stores of the synthetic volume, written unless DIR already holds them for this shape.
void write_stores(const fs::path& dir, const std::vector<int64_t>& shape) {
  bool present = true;
  for (const char* name : {"chunks64", "chunks128"}) {
    const fs::path meta = dir / name / "zarr.json";
    present = present && fs::exists(meta) && json::parse(std::ifstream(meta)).at("shape") == json(shape);
  }
  if (present) return;
  sfm::SyntheticSeismicConfig config;
  config.shape = {shape[0], shape[1], shape[2]};
  const std::vector<float> volume = sfm::synthesize_seismic(config);
  for (const int64_t chunk : {64, 128}) {
    const fs::path path = dir / ("chunks" + std::to_string(chunk));
    fs::remove_all(path);
    zarr::WriteOptions options;
    options.chunks = {chunk, chunk, chunk};
    options.dimension_names = {"inline", "crossline", "time"};
    zarr::write_array<float>(std::make_shared<sfm::io::FileStore>(path), "", shape, volume, options);
  }
}

struct Timing {
  double mb_per_s = 0;
  double seconds = 0;
  double checksum = 0;
  uint64_t requests = 0;
  double chunk_mb_decoded = 0;
};

// Reads every box once (after one untimed read that opens connections and warms the page cache).
Timing read_boxes(std::shared_ptr<sfm::io::Store> store, const std::vector<std::vector<int64_t>>& boxes, int64_t box) {
  zarr::ArrayOptions options;
  options.cache_bytes = 0;
  const zarr::Array array = zarr::Array::open(std::move(store), "", options);
  const std::vector<int64_t> extent(3, box);
  std::vector<float> out(size_t(box * box * box));
  array.read_box(boxes.front(), extent, out);
  array.reset_stats();
  Timing t;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& start : boxes) {
    array.read_box(start, extent, out);
    double sum = 0;
    for (const float v : out) sum += double(v);
    t.checksum += sum;
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.mb_per_s = double(boxes.size()) * double(out.size()) * 4e-6 / t.seconds;
  t.requests = array.stats().requests;
  const auto& chunk = array.metadata().chunk_shape();
  t.chunk_mb_decoded = double(array.stats().chunks_decoded) * double(chunk[0] * chunk[1] * chunk[2]) * 4e-6;
  return t;
}

json to_json(const Timing& t) {
  return {{"mb_per_s", t.mb_per_s}, {"seconds", t.seconds}, {"checksum", t.checksum}, {"requests", t.requests},
          {"chunk_mb_decoded", t.chunk_mb_decoded}};
}

}  // namespace

int main(int argc, char** argv) try {
  fs::path dir;
  std::vector<int64_t> shape{384, 384, 384};
  int64_t box = 128, count = 24;
  uint64_t seed = 0;
  std::string http;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--dir") dir = value;
    else if (key == "--shape") shape = parse_list(value);
    else if (key == "--box") box = std::stoll(value);
    else if (key == "--boxes") count = std::stoll(value);
    else if (key == "--seed") seed = std::stoull(value);
    else if (key == "--http") http = value;
    else sfm::fail("unknown option ", key);
  }
  SFM_CHECK(!dir.empty(), "--dir is required");
  SFM_CHECK(shape.size() == 3 && box > 0 && count > 0, "--shape needs 3 extents, --box and --boxes must be positive");
  for (const int64_t e : shape) SFM_CHECK(e >= box, "--shape extents must be at least --box");
  fs::create_directories(dir);
  write_stores(dir, shape);

  // Box origins, uniform over the volume (not chunk-aligned), shared with the peers' script.
  const sfm::Rng rng(seed, 0);
  std::vector<std::vector<int64_t>> boxes;
  for (int64_t b = 0; b < count; ++b) {
    std::vector<int64_t> start(3);
    for (size_t d = 0; d < 3; ++d)
      start[d] = std::min(shape[d] - box, int64_t(double(rng.uniform(uint64_t(3 * b) + d)) * double(shape[d] - box + 1)));
    boxes.push_back(start);
  }
  std::ofstream(dir / "boxes.json") << json{{"box", box}, {"starts", boxes}}.dump();

  json results = json::object();
  for (const char* name : {"chunks64", "chunks128"}) {
    json r{{"local", to_json(read_boxes(std::make_shared<sfm::io::FileStore>(dir / name), boxes, box))}};
    if (!http.empty())
      for (const int in_flight : {1, 8, 64}) {
        sfm::io::HttpOptions options;
        options.max_in_flight = in_flight;
        r["http_" + std::to_string(in_flight)] =
            to_json(read_boxes(std::make_shared<sfm::io::HttpStore>(http + "/" + name, options), boxes, box));
      }
    results[name] = r;
  }
  std::printf("%s\n", json{{"benchmark", "io_read"},
                           {"implementation", "sfm"},
                           {"cpus", std::thread::hardware_concurrency()},
                           {"decode_threads", sfm::io::ThreadPool::shared().size()},
                           {"shape", shape},
                           {"box", box},
                           {"boxes", count},
                           {"codec", "blosc zstd clevel 5 shuffle"},
                           {"results", results}}
                          .dump()
                          .c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_io_read: error: %s\n", e.what());
  return 2;
}
