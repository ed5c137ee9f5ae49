// Random-box read throughput of sfm's Zarr reader, as one JSON object.
//
//   bench_io_read --dir DIR [--shape 384,384,384] [--box 128] [--boxes 24] [--seed 0] [--http URL]
//                 [--in-flight 1,8,64] [--stores chunks64,chunks128]
//
// Writes (once) a synthetic seismic volume as two Zarr v3 stores under DIR, blosc-zstd (clevel 5,
// byte shuffle) as MDIO writes them: chunks64 (64³ chunks, MDIO v0's default) and chunks128 (128³,
// v1's), plus DIR/boxes.json, the box origins that benchmarks/io_read_peers.py reads too. Then
// reads every box from each store with the chunk cache off, so each read fetches and decodes its
// chunks afresh, and reports MB/s of box data (1 MB = 10⁶ bytes; the reads alone are timed) and a
// checksum of the values.
// With --http URL (a server such as nginx serving DIR), the same reads go over HTTP with 1, 8 and
// 64 (or --in-flight) requests in flight. decode_limit is the ceiling of whole-chunk decoding
// (see decode_limit below); each HTTP run's transfer_limit is the ceiling of its transfers: the
// same byte ranges, replayed over the same server with as many in flight, nothing decoded (see
// transfer_limit below). mb_fetched is what the reads fetched from the store.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/http_client.hpp"
#include "sfm/io/store_http.hpp"
#include "sfm/io/store_key.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "bench_args.hpp"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
namespace zarr = sfm::io::zarr;

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

// A Store that forwards to another and notes every read asked of it (get_chained's later reads
// included), so that transfer_limit can replay them.
class RecordingStore final : public sfm::io::Store {
 public:
  using StoreRequest = sfm::io::StoreRequest;
  explicit RecordingStore(std::shared_ptr<sfm::io::Store> inner) : inner_(std::move(inner)) {}

  std::optional<sfm::io::Bytes> get(const StoreRequest& request) override {
    note({&request, 1});
    return inner_->get(request);
  }
  std::vector<std::optional<sfm::io::Bytes>> get_many(std::span<const StoreRequest> requests) override {
    note(requests);
    return inner_->get_many(requests);
  }
  void get_each(std::span<const StoreRequest> requests, sfm::io::ThreadPool& pool, const sfm::io::ValueSink& sink) override {
    note(requests);
    inner_->get_each(requests, pool, sink);
  }
  void get_chained(std::span<const StoreRequest> requests, sfm::io::ThreadPool& pool,
                   const sfm::io::ChainedSink& sink) override {
    note(requests);
    inner_->get_chained(requests, pool, [&](size_t tag, auto value, const sfm::io::ReadMore& more) {
      sink(tag, value, [&](StoreRequest request, size_t next) {
        note({&request, 1});
        more(std::move(request), next);
      });
    });
  }
  void set(const std::string& key, std::span<const std::byte> value) override { inner_->set(key, value); }
  std::string describe() const override { return inner_->describe(); }

  // The reads noted since the last take.
  std::vector<StoreRequest> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(noted_, {});
  }

 private:
  void note(std::span<const StoreRequest> requests) {
    std::lock_guard lock(mutex_);
    noted_.insert(noted_.end(), requests.begin(), requests.end());
  }
  std::shared_ptr<sfm::io::Store> inner_;
  std::mutex mutex_;
  std::vector<StoreRequest> noted_;
};

struct Timing {
  double mb_per_s = 0;
  double seconds = 0;
  double checksum = 0;
  uint64_t requests = 0;
  double mb_fetched = 0;
  double mb_decoded = 0;
  std::vector<std::vector<sfm::io::StoreRequest>> reads;  // per box, the store reads it made
};

// Reads every box once (after one untimed read that opens connections and warms the page cache).
Timing read_boxes(std::shared_ptr<sfm::io::Store> store, const std::vector<std::vector<int64_t>>& boxes, int64_t box) {
  zarr::ArrayOptions options;
  options.cache_bytes = 0;
  const auto recording = std::make_shared<RecordingStore>(std::move(store));
  const zarr::Array array = zarr::Array::open(recording, "", options);
  const std::vector<int64_t> extent(3, box);
  std::vector<float> out(size_t(box * box * box));
  array.read_box(boxes.front(), extent, out);
  array.reset_stats();
  recording->take();
  Timing t;
  for (const auto& start : boxes) {
    const auto t0 = std::chrono::steady_clock::now();
    array.read_box(start, extent, out);
    t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.reads.push_back(recording->take());
    double sum = 0;
    for (const float v : out) sum += double(v);
    t.checksum += sum;
  }
  t.mb_per_s = double(boxes.size()) * double(out.size()) * 4e-6 / t.seconds;
  t.requests = array.stats().requests;
  t.mb_fetched = double(array.stats().bytes_fetched) * 1e-6;
  t.mb_decoded = double(array.stats().bytes_decoded) * 1e-6;
  return t;
}

// The ceiling of an HTTP run's transfers on this machine: for each box in turn, the reads it made
// (`reads`, recorded by read_boxes) all started at once over one HttpClient with `in_flight`
// transfers, bodies received into pooled buffers as sfm receives them and dropped; no decoding, no
// second phase waiting for a first. MB/s of box data, as above (one untimed pass first).
json transfer_limit(const std::string& base_url, int in_flight, const std::vector<std::vector<sfm::io::StoreRequest>>& reads,
                    int64_t box) {
  sfm::io::HttpOptions options;
  options.max_in_flight = in_flight;
  sfm::io::HttpClient client(options);
  std::vector<std::vector<sfm::io::HttpRequest>> http(reads.size());
  for (size_t b = 0; b < reads.size(); ++b)
    for (const sfm::io::StoreRequest& request : reads[b]) {
      sfm::io::HttpRequest h;
      h.url = base_url + "/" + sfm::io::uri_encode(request.key, true);
      if (request.range) h.headers.emplace_back("Range", sfm::io::http_range(*request.range));
      http[b].push_back(std::move(h));
    }
  double bytes = 0;
  const auto pass = [&] {
    bytes = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& requests : http) {
      std::vector<sfm::io::HttpResponse> responses(requests.size());
      client.run(requests, responses, {}, true);
      for (const sfm::io::HttpResponse& response : responses) {
        SFM_CHECK(response.status == 200 || response.status == 206, "transfer_limit: HTTP ", response.status);
        bytes += double(response.bytes().size());
      }
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  pass();  // untimed: opens the connections
  const double seconds = pass();
  size_t requests = 0;
  for (const auto& r : http) requests += r.size();
  return {{"mb_per_s", double(reads.size()) * double(box * box * box) * 4e-6 / seconds},
          {"seconds", seconds},
          {"requests", requests},
          {"mb_fetched", bytes * 1e-6}};
}

// The ceiling for those reads on this machine: the chunks they decode (the same list, in the same
// order), already in memory, blosc-decompressed on every decode thread, each thread into its own
// reused buffer: no store, no copy into the box, no allocation. MB/s of box data, as above, and the
// memcpy bandwidth of all threads together (GB/s of bytes copied) for scale.
json decode_limit(const fs::path& path, const std::vector<std::vector<int64_t>>& boxes, int64_t box) {
  auto store = std::make_shared<sfm::io::FileStore>(path);
  const zarr::Array array = zarr::Array::open(store, "");
  const std::vector<int64_t>& chunk = array.metadata().chunk_shape();
  std::map<std::string, sfm::io::Bytes> stored;
  std::vector<const sfm::io::Bytes*> chunks;
  for (const auto& start : boxes) {
    std::vector<int64_t> first(3), extent(3);
    for (size_t d = 0; d < 3; ++d) {
      first[d] = start[d] / chunk[d];
      extent[d] = (start[d] + box - 1) / chunk[d] - first[d] + 1;
    }
    zarr::nd::for_each_index(extent, [&](std::span<const int64_t> i) {
      std::vector<int64_t> index(3);
      for (size_t d = 0; d < 3; ++d) index[d] = first[d] + i[d];
      const std::string key = array.metadata().chunk_key(index);
      auto it = stored.find(key);
      if (it == stored.end()) it = stored.emplace(key, store->get({key}).value()).first;
      chunks.push_back(&it->second);
    });
  }
  sfm::io::ThreadPool& pool = sfm::io::ThreadPool::shared();
  const size_t nbytes = size_t(zarr::nd::count(chunk)) * sizeof(float);
  const auto buffer = [&] {
    thread_local std::vector<std::byte> mine;
    mine.resize(nbytes);
    return std::span<std::byte>(mine);
  };
  const auto decode_all = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(chunks.size(), [&](size_t k) {
      SFM_CHECK(zarr::codec::blosc_decode_into(*chunks[k], buffer(), "decode_limit"), "decode_limit: not a blosc chunk");
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  decode_all();  // untimed: sizes the threads' buffers
  const double decode_s = decode_all();
  const size_t copies = chunks.size();
  const auto t1 = std::chrono::steady_clock::now();
  pool.parallel_for(copies, [&](size_t k) {
    const sfm::io::Bytes& from = *chunks[k % chunks.size()];
    std::memcpy(buffer().data(), from.data(), std::min(nbytes, from.size()));
  });
  const double copy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  double copied = 0;
  for (size_t k = 0; k < copies; ++k) copied += double(std::min(nbytes, chunks[k % chunks.size()]->size()));
  return {{"mb_per_s", double(boxes.size()) * double(box * box * box) * 4e-6 / decode_s},
          {"seconds", decode_s},
          {"chunks", chunks.size()},
          {"decoded_mb_per_s", double(chunks.size()) * double(nbytes) * 1e-6 / decode_s},
          {"memcpy_gb_per_s", copied * 1e-9 / copy_s}};
}

json to_json(const Timing& t) {
  return {{"mb_per_s", t.mb_per_s}, {"seconds", t.seconds},       {"checksum", t.checksum},
          {"requests", t.requests}, {"mb_fetched", t.mb_fetched}, {"mb_decoded", t.mb_decoded}};
}

}  // namespace

int main(int argc, char** argv) try {
  fs::path dir;
  std::vector<int64_t> shape{384, 384, 384};
  int64_t box = 128, count = 24;
  uint64_t seed = 0;
  std::string http;
  std::vector<int64_t> in_flight{1, 8, 64};
  std::vector<std::string> stores{"chunks64", "chunks128"};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--dir") dir = value;
    else if (key == "--shape") shape = sfm::bench::int_list(key, value, 3);
    else if (key == "--box") box = std::stoll(value);
    else if (key == "--boxes") count = std::stoll(value);
    else if (key == "--seed") seed = std::stoull(value);
    else if (key == "--http") http = value;
    else if (key == "--in-flight") in_flight = sfm::bench::int_list(key, value);
    else if (key == "--stores") stores = sfm::bench::split_list(value);
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
  for (const std::string& name : stores) {
    SFM_CHECK(name == "chunks64" || name == "chunks128", "--stores: unknown store '", name, "'");
    json r{{"local", to_json(read_boxes(std::make_shared<sfm::io::FileStore>(dir / name), boxes, box))},
           {"decode_limit", decode_limit(dir / name, boxes, box)}};
    if (!http.empty())
      for (const int64_t n : in_flight) {
        sfm::io::HttpOptions options;
        options.max_in_flight = int(n);
        const Timing t = read_boxes(std::make_shared<sfm::io::HttpStore>(http + "/" + name, options), boxes, box);
        json run = to_json(t);
        run["transfer_limit"] = transfer_limit(http + "/" + name, int(n), t.reads, box);
        r["http_" + std::to_string(n)] = run;
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
