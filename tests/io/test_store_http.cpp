// HttpStore against real servers on loopback. nginx: the same bytes as FileStore for whole
// values, ranges and suffix ranges; 404 → nullopt; 64 requests in flight over reused
// connections, from several threads at once; get_each hands values on as they finish; get_chained
// starts the reads its sinks ask for; Zarr arrays read with the cache off fetch only the blosc
// blocks a box needs and give the values local reads give, and a chunk whose offsets point outside
// it is an error naming its key. fault_server.py: 503 / 429 / dropped connections
// that clear → the read succeeds after retries; retries spent → an error naming the URL and
// status; a server that never answers → an error after the timeout; the 403 policy.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include <random>

#include "servers/servers.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/store_http.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "sfm_test.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io;
namespace fs = std::filesystem;

namespace {

Bytes pattern(size_t size, unsigned seed) {
  Bytes bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = std::byte((i * 131 + seed * 7 + i / 251) & 0xff);
  return bytes;
}

Bytes text(const std::string& s) {
  const auto* data = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(data, data + s.size());
}

// The served directory, written once through a FileStore.
FileStore& local() {
  static FileStore store = [] {
    FileStore files(sfm::test::scratch_dir("store_http_data"));
    files.set("small.txt", text("0123456789"));
    files.set("a/b/0.0.0", pattern(100'000, 1));
    files.set("big.bin", pattern(3'000'000, 2));
    files.set("odd names/a b+c$d~e", pattern(333, 3));
    for (int i = 0; i < 256; ++i) files.set("many/" + std::to_string(i), pattern(1000 + 37 * size_t(i), unsigned(i)));
    return files;
  }();
  return store;
}

sfm::test::Server& nginx() {
  static sfm::test::Server server = sfm::test::start_nginx(local().root(), sfm::test::scratch_dir("store_http_nginx"));
  return server;
}

sfm::test::Server& fault_server() {
  static sfm::test::Server server = sfm::test::start_fault_server(sfm::test::scratch_dir("store_http_fault"));
  return server;
}

HttpOptions quick(int attempts, double timeout_s = 10) {
  HttpOptions options;
  options.max_attempts = attempts;
  options.backoff_s = 0.05;
  options.timeout_s = timeout_s;
  return options;
}

}  // namespace

TEST_CASE("HttpStore over nginx reads what FileStore reads", "[io][store][http]") {
  HttpStore http(nginx().url() + "/");
  for (const std::string key : {"small.txt", "a/b/0.0.0", "big.bin", "odd names/a b+c$d~e"}) {
    const int64_t size = int64_t(local().get({key})->size());
    for (const ByteRange range : {ByteRange{size / 2, 20}, ByteRange{0, -1}, ByteRange{5, -1}, ByteRange{-100, -1},
                                  ByteRange{-1'000'000'000, -1}, ByteRange{size - 1, 1}, ByteRange{size - 5, 100}}) {
      INFO(key << " [" << range.offset << ", " << range.length << "]");
      const StoreRequest request{key, range};
      CHECK(http.get(request) == local().get(request));
    }
    CHECK(http.get({key}) == local().get({key}));
  }
}

TEST_CASE("HttpStore reads absent keys as nullopt and refuses bad keys", "[io][store][http]") {
  HttpStore http(nginx().url());
  CHECK(http.get({"missing"}) == std::nullopt);
  CHECK(http.get({"a/missing/0.0.0", ByteRange{-8, -1}}) == std::nullopt);
  CHECK_THROWS_WITH(http.get({"../etc/passwd"}), sfm::test::contains("refused key"));
  CHECK_THROWS_WITH(http.get({"a/b/0.0.0", ByteRange{100'000, 1}}),
                    sfm::test::contains("HTTP 416") && sfm::test::contains(http.url_of("a/b/0.0.0")));
  CHECK_THROWS_WITH(http.set("small.txt", text("x")), sfm::test::contains("read-only"));
}

TEST_CASE("HttpStore keeps 64 requests in flight over reused connections", "[io][store][http]") {
  HttpStore http(nginx().url());
  std::vector<StoreRequest> requests;
  for (int i = 0; i < 256; ++i)
    requests.push_back({"many/" + std::to_string(i), i % 2 ? std::optional(ByteRange{i, 500}) : std::nullopt});
  const auto expected = local().get_many(requests);

  const auto start = std::chrono::steady_clock::now();
  CHECK(http.get_many(requests) == expected);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const HttpStats first = http.stats();
  CHECK(first.peak_in_flight == 64);
  CHECK(first.attempts == 256);
  CHECK(first.connections <= 64);
  WARN("256 GETs from nginx with 64 in flight: " << seconds * 1e3 << " ms, " << first.connections
                                                 << " connections opened");

  // Four threads at once share the client: every answer right, connections reused.
  std::vector<std::jthread> threads;
  std::atomic<int> right{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] { right += http.get_many(requests) == expected; });
  threads.clear();
  CHECK(right == 4);
  const HttpStats second = http.stats();
  CHECK(second.peak_in_flight == 64);
  CHECK(second.connections - first.connections <= 4);
}

TEST_CASE("HttpStore::get_each hands each value on as its transfer finishes", "[io][store][http]") {
  HttpStore http(nginx().url());
  std::vector<StoreRequest> requests;
  for (int i = 0; i < 256; ++i)
    requests.push_back({"many/" + std::to_string(i), i % 2 ? std::optional(ByteRange{i, 500}) : std::nullopt});
  requests.push_back({"absent/key"});
  requests.push_back({"big.bin"});
  const auto expected = local().get_many(requests);
  for (const size_t threads : {size_t(0), size_t(1), size_t(3)}) {  // 0: everything on the caller's thread
    INFO(threads << " pool threads");
    ThreadPool pool(threads);
    std::vector<std::optional<Bytes>> got(requests.size());
    std::vector<std::atomic<int>> calls(requests.size());
    http.get_each(requests, pool, [&](size_t i, std::optional<std::span<const std::byte>> value) {
      ++calls[i];
      if (value) got[i] = Bytes(value->begin(), value->end());
    });
    CHECK(got == expected);
    for (const auto& c : calls) CHECK(c == 1);
  }
  // A failed request or sink fails the batch; every other value still arrives.
  HttpStore faulty(fault_server().url(), quick(1));
  ThreadPool pool(2);
  const std::vector<StoreRequest> mixed{{"ok/0/a"}, {"status/400/b"}, {"ok/0/c"}};
  std::atomic<int> delivered{0};
  CHECK_THROWS_WITH(faulty.get_each(mixed, pool, [&](size_t, auto) { ++delivered; }), sfm::test::contains("HTTP 400"));
  CHECK(delivered == 2);
  CHECK_THROWS_WITH(http.get_each(requests, pool, [&](size_t i, auto) { if (i == 9) sfm::fail("sink 9 failed"); }),
                    sfm::test::contains("sink 9 failed"));
}

TEST_CASE("HttpStore::get_chained starts the reads its sinks ask for beside those in flight", "[io][store][http]") {
  HttpStore http(nginx().url());
  // Each value of many/i asks for the next 100 bytes of big.bin at offset 100 * i, tagged 1000 + i.
  std::vector<StoreRequest> requests;
  for (int i = 0; i < 64; ++i) requests.push_back({"many/" + std::to_string(i)});
  const Bytes big = *local().get({"big.bin"});
  for (const size_t threads : {size_t(0), size_t(2)}) {
    ThreadPool pool(threads);
    std::mutex mutex;
    // Sinks run on pool threads, where Catch2 assertions are not safe: they only record what they
    // got (an absent value as nullopt), and the checks below run on this thread after the call.
    std::map<size_t, std::optional<Bytes>> got;
    http.get_chained(requests, pool, [&](size_t tag, std::optional<std::span<const std::byte>> value, const ReadMore& more) {
      {
        std::lock_guard lock(mutex);
        got[tag] = value ? std::optional(Bytes(value->begin(), value->end())) : std::nullopt;
      }
      if (tag < 64) more({"big.bin", ByteRange{int64_t(100 * tag), 100}}, 1000 + tag);
    });
    REQUIRE(got.size() == 128);
    for (size_t i = 0; i < 64; ++i) {
      CHECK(got[i] == local().get(requests[i]));
      CHECK(got[1000 + i] == Bytes(big.begin() + ptrdiff_t(100 * i), big.begin() + ptrdiff_t(100 * i + 100)));
    }
  }
  // A later read that fails fails the call, after every other read and sink has finished.
  ThreadPool pool(2);
  std::atomic<int> sinks{0};
  CHECK_THROWS_WITH(http.get_chained(requests, pool,
                                     [&](size_t tag, auto, const ReadMore& more) {
                                       ++sinks;
                                       if (tag == 5) more({"a/b/0.0.0", ByteRange{200'000, 1}}, 99);
                                     }),
                    sfm::test::contains("HTTP 416"));
  CHECK(sinks == 64);
}

namespace {

namespace zarr = sfm::io::zarr;

// Zarr arrays written into nginx's directory: blosc chunks of several shapes, dtypes (so blosc
// typesizes) and shuffles, in v2 and v3, with edge chunks, and one whose offsets (4112 bytes) run
// past the reader's 4 KiB guess at the header.
struct BloscCase {
  std::string path;
  zarr::DataType dtype;
  zarr::WriteOptions options;
};

std::vector<BloscCase> blosc_cases() {
  const auto v3 = [](std::vector<int64_t> chunks, const char* cname, const char* shuffle, int typesize, int blocksize) {
    zarr::WriteOptions o;
    o.chunks = std::move(chunks);
    o.codecs = zarr::json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                            {{"name", "blosc"},
                             {"configuration",
                              {{"cname", cname}, {"clevel", 5}, {"shuffle", shuffle}, {"typesize", typesize}, {"blocksize", blocksize}}}}});
    return o;
  };
  const auto v2 = [](std::vector<int64_t> chunks, const char* cname, int shuffle, int blocksize) {
    zarr::WriteOptions o;
    o.zarr_format = 2;
    o.chunks = std::move(chunks);
    o.compressor_json = {{"id", "blosc"}, {"cname", cname}, {"clevel", 5}, {"shuffle", shuffle}, {"blocksize", blocksize}};
    return o;
  };
  using zarr::Kind;
  const zarr::DataType f32{Kind::Float, 4, false}, f64{Kind::Float, 8, false}, i16{Kind::Int, 2, false},
      u8{Kind::UInt, 1, false};
  return {
      {"blosc/v3_f32_shuffle", f32, v3({16, 20, 12}, "zstd", "shuffle", 4, 1024)},
      {"blosc/v3_f32_bitshuffle", f32, v3({10, 37, 8}, "lz4", "bitshuffle", 4, 512)},
      {"blosc/v3_f64_noshuffle", f64, v3({7, 9, 29}, "zstd", "noshuffle", 8, 2048)},
      {"blosc/v3_u8_shuffle", u8, v3({16, 16, 16}, "blosclz", "shuffle", 1, 256)},
      {"blosc/v3_f32_many_blocks", f32, v3({32, 32, 32}, "lz4", "shuffle", 4, 128)},
      {"blosc/v3_f32_large", f32, v3({24, 20, 29}, "zstd", "shuffle", 4, 4096)},
      {"blosc/v2_f32_lz4", f32, v2({16, 20, 12}, "lz4", 1, 1024)},
      {"blosc/v2_i16_zstd_bitshuffle", i16, v2({12, 11, 10}, "zstd", 2, 512)},
      {"blosc/v2_f32_default_blocks", f32, v2({45, 37, 29}, "zstd", 1, 0)},
  };
}

const std::vector<int64_t> kBloscShape{45, 37, 29};

// Integer values (exact in every dtype above, uint8 included), written once.
const std::vector<float>& blosc_values() {
  static const std::vector<float> values = [] {
    std::vector<float> v(size_t(zarr::nd::count(kBloscShape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float((uint32_t(i) * 2654435761u >> 9) % 251);  // compresses little
    auto files = std::make_shared<FileStore>(local().root());
    for (const BloscCase& c : blosc_cases())
      zarr::write_array<float>(files, c.path, kBloscShape, v, c.options, c.dtype);
    return v;
  }();
  return values;
}

zarr::Array open_uncached(std::shared_ptr<Store> store, const std::string& path) {
  zarr::ArrayOptions options;
  options.cache_bytes = 0;
  return zarr::Array::open(std::move(store), path, options);
}

}  // namespace

TEST_CASE("Zarr over HTTP reads only the blosc blocks a box needs, the same values as local reads", "[io][zarr][http]") {
  using sfm::zarr_test::crop;
  using sfm::zarr_test::first_difference;
  const std::vector<float>& values = blosc_values();
  auto http = std::make_shared<HttpStore>(nginx().url());
  auto files = std::make_shared<FileStore>(local().root());
  std::mt19937 rng(5);
  for (const BloscCase& c : blosc_cases()) {
    INFO(c.path);
    const zarr::Array remote = open_uncached(http, c.path);
    const zarr::Array local_uncached = open_uncached(files, c.path);
    const zarr::Array local_cached = zarr::Array::open(files, c.path);  // whole chunks
    const std::vector<int64_t>& chunk = remote.metadata().chunk_shape();
    // Boxes on the first and last rows and blocks of chunks, across chunk edges, at the array's
    // edge (edge chunks), and random ones; each read twice (the second with the offsets known).
    std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes{
        {{0, 0, 0}, {1, kBloscShape[1], kBloscShape[2]}},
        {{std::min(chunk[0], kBloscShape[0] - 2) - 1, 3, 2}, {2, 20, 20}},
        {{chunk[0] % kBloscShape[0], 0, 0}, {1, 5, 5}},
        {{kBloscShape[0] - 1, 0, 0}, {1, kBloscShape[1], kBloscShape[2]}},
        {{kBloscShape[0] - 3, kBloscShape[1] - 4, kBloscShape[2] - 5}, {3, 4, 5}},
        {{1, 1, 1}, {kBloscShape[0] - 2, kBloscShape[1] - 2, kBloscShape[2] - 2}},
    };
    for (int k = 0; k < 12; ++k) {
      std::vector<int64_t> start(3), box(3);
      for (size_t d = 0; d < 3; ++d) {
        start[d] = int64_t(rng() % uint64_t(kBloscShape[d]));
        box[d] = 1 + int64_t(rng() % uint64_t(kBloscShape[d] - start[d]));
      }
      boxes.emplace_back(start, box);
    }
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& [start, box] : boxes) {
        INFO("pass " << pass << " start " << start[0] << "," << start[1] << "," << start[2] << " box " << box[0] << ","
                     << box[1] << "," << box[2]);
        const std::vector<float> got = remote.read_box(start, box);
        CHECK(first_difference(got, crop(values, kBloscShape, start, box)) == -1);
        CHECK(got == local_uncached.read_box(start, box));
        CHECK(got == local_cached.read_box(start, box));
      }
  }
}

TEST_CASE("Zarr over HTTP: a box's blocks cost fewer bytes than its chunks, and the offsets come first", "[io][zarr][http]") {
  blosc_values();
  auto http = std::make_shared<HttpStore>(nginx().url());
  for (const std::string path : {"blosc/v3_f32_large", "blosc/v3_f32_many_blocks"}) {
    INFO(path);
    const zarr::Array whole = zarr::Array::open(http, path);  // cache on: whole chunks
    const zarr::Array parts = open_uncached(http, path);
    const std::vector<int64_t>& chunk = whole.metadata().chunk_shape();
    // The last two rows of the first chunk row (past the first 4 KiB of each chunk), across all
    // chunks of dims 1 and 2.
    const std::vector<int64_t> start{chunk[0] - 2, 0, 0}, box{2, kBloscShape[1], kBloscShape[2]};
    const int64_t chunks = ((kBloscShape[1] + chunk[1] - 1) / chunk[1]) * ((kBloscShape[2] + chunk[2] - 1) / chunk[2]);
    CHECK(whole.read_box(start, box) == parts.read_box(start, box));
    const zarr::ReadStats w = whole.stats(), first = parts.stats();
    CHECK(w.requests == uint64_t(chunks));
    // First read: the header and offsets, then the blocks (the many-blocks chunk's offsets take a
    // third read: they run past the 4 KiB guess).
    CHECK(first.requests == uint64_t(chunks * (path == "blosc/v3_f32_many_blocks" ? 3 : 2)));
    CHECK(first.bytes_fetched < w.bytes_fetched);
    // Later reads know the offsets: one read of the blocks per chunk, a small part of the chunk.
    parts.reset_stats();
    CHECK(whole.read_box(start, box) == parts.read_box(start, box));
    const zarr::ReadStats later = parts.stats();
    CHECK(later.requests == uint64_t(chunks));
    CHECK(later.bytes_fetched * 3 < w.bytes_fetched);
    WARN(path << ": " << w.bytes_fetched << " bytes in whole chunks, " << first.bytes_fetched
              << " in headers and blocks, then " << later.bytes_fetched << " in blocks");
  }
}

TEST_CASE("Zarr over HTTP: a blosc chunk whose offsets point outside it is an error naming its key", "[io][zarr][http]") {
  blosc_values();
  auto files = std::make_shared<FileStore>(local().root());
  auto http = std::make_shared<HttpStore>(nginx().url());
  const std::string key = "blosc/v3_f32_shuffle/c/1/0/0";
  const Bytes good = *files->get({key});
  const zarr::codec::BloscHeader header = zarr::codec::blosc_header(good, key);
  REQUIRE(header.blocks() > 4);
  const std::vector<int64_t> start{16 + 8, 0, 0}, box{1, 4, 4};  // row 8 of chunk (1, 0, 0): in block 3
  const size_t block = 8 * 20 * 12 * 4 / header.blocksize;
  for (const uint32_t offset : {uint32_t(header.cbytes + 100), uint32_t(header.cbytes), uint32_t(8), 0xFFFFFFF0u}) {
    INFO("offset " << offset);
    Bytes bad = good;
    zarr::codec::store_le32(bad.data() + zarr::codec::kBloscHeaderBytes + 4 * block, offset);
    files->set(key, bad);
    CHECK_THROWS_WITH(open_uncached(http, "blosc/v3_f32_shuffle").read_box(start, box),
                      sfm::test::contains(key) && sfm::test::contains("corrupt offset table") &&
                          sfm::test::contains("block " + std::to_string(block)));
  }
  // A header claiming more bytes than the chunk holds: the read of its blocks comes back short or
  // refused, an error naming the key.
  Bytes longer = good;
  zarr::codec::store_le32(longer.data() + 12, uint32_t(good.size() + 5000));
  files->set(key, longer);
  CHECK_THROWS_WITH(open_uncached(http, "blosc/v3_f32_shuffle").read_box(std::vector<int64_t>{16 + 15, 0, 0}, box),
                    sfm::test::contains(key));
  files->set(key, good);
  CHECK(open_uncached(http, "blosc/v3_f32_shuffle").read_box(start, box) ==
        sfm::zarr_test::crop(blosc_values(), kBloscShape, start, box));
}

TEST_CASE("HttpStore retries 503, 429 and dropped connections until they clear", "[io][store][http]") {
  HttpStore http(fault_server().url(), quick(4));
  CHECK(http.get({"fail503/2/a"}) == text("payload of /fail503/2/a"));
  CHECK(http.stats().retries == 2);
  CHECK(http.get({"fail429/1/a"}) == text("payload of /fail429/1/a"));
  CHECK(http.stats().retries == 3);
  // libcurl itself retries once on a reused connection that dies unanswered, so the store's
  // own retries here are one or two.
  CHECK(http.get({"drop/2/a"}) == text("payload of /drop/2/a"));
  CHECK(http.stats().retries >= 4);
  // A server that ignores Range answers 200 with the whole value; the store cuts the range out.
  CHECK(http.get({"ok/0/r", ByteRange{3, 4}}) == text("load"));
  CHECK(http.get({"ok/0/r", ByteRange{-3, -1}}) == text("0/r"));
}

TEST_CASE("HttpStore fails clearly once the retries are spent", "[io][store][http]") {
  HttpStore http(fault_server().url(), quick(3));
  CHECK_THROWS_WITH(http.get({"fail503/10/b"}),
                    sfm::test::contains(http.url_of("fail503/10/b")) && sfm::test::contains("HTTP 503") &&
                        sfm::test::contains("SlowDown: try again") && sfm::test::contains("after 3 attempts") &&
                        sfm::test::contains("key 'fail503/10/b'"));
  // A client error is not retried.
  CHECK_THROWS_WITH(http.get({"status/400/b"}), sfm::test::contains("HTTP 400") && !sfm::test::contains("attempts"));

  const sfm::test::ClosedPort closed;
  HttpStore nobody(closed.url(), quick(2));
  CHECK_THROWS_WITH(nobody.get({"x"}), sfm::test::contains("Couldn't connect") && sfm::test::contains("after 2 attempts"));
  CHECK(nobody.stats().attempts == 2);
}

TEST_CASE("HttpStore gives up on a server that never answers after the timeout", "[io][store][http]") {
  HttpStore http(fault_server().url(), quick(2, 1.0));
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(http.get({"hang/0/c"}), sfm::test::contains(http.url_of("hang/0/c")) &&
                                                 sfm::test::contains("timed out") && sfm::test::contains("after 2 attempts"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Each attempt waited its full second (a busy machine can only make that longer), and there were
  // exactly two: the call ended by the timeout, not by a hang (bounded only by a hang's limit).
  CHECK(http.stats().attempts == 2);
  CHECK(seconds >= 2.0);
  CHECK(seconds < double(sfm::test::kHangLimit.count()));
}

TEST_CASE("HttpStore: 404 is absent, 403 only when configured so", "[io][store][http]") {
  HttpStore strict(fault_server().url(), quick(2));
  CHECK(strict.get({"status/404/d"}) == std::nullopt);
  CHECK_THROWS_WITH(strict.get({"status/403/d"}), sfm::test::contains("HTTP 403") && sfm::test::contains("Injected: status 403"));
  HttpOptions lenient = quick(2);
  lenient.forbidden_as_absent = true;
  CHECK(HttpStore(fault_server().url(), lenient).get({"status/403/d"}) == std::nullopt);
}

TEST_CASE("HttpOptions::from_env reads SFM_HTTP_* variables", "[io][store][http]") {
  ::setenv("SFM_HTTP_TIMEOUT_S", "2.5", 1);
  ::setenv("SFM_HTTP_MAX_ATTEMPTS", "7", 1);
  const HttpOptions options = HttpOptions::from_env();
  CHECK(options.timeout_s == 2.5);
  CHECK(options.max_attempts == 7);
  ::setenv("SFM_HTTP_TIMEOUT_S", "soon", 1);
  CHECK_THROWS_WITH(HttpOptions::from_env(), sfm::test::contains("SFM_HTTP_TIMEOUT_S='soon'"));
  ::unsetenv("SFM_HTTP_TIMEOUT_S");
  ::unsetenv("SFM_HTTP_MAX_ATTEMPTS");
  CHECK(HttpOptions::from_env().timeout_s == HttpOptions{}.timeout_s);
}
