// Tests of io/zarr/array.hpp, group.hpp, cache.hpp and io/thread_pool.hpp: box reads against
// stores written by zarr-python 3 (the zarrita fixtures and a matrix written at test time), the
// chunk cache and counters, reads with the cache off (partial blosc decoding), groups and
// consolidated metadata, and the fault paths (corrupt chunk,
// truncated shard index, checksum mismatch) naming the chunk key.
#include <atomic>
#include <random>

#include "sfm/io/store_file.hpp"
#include "sfm/io/store_memory.hpp"
#include "sfm/io/zarr/group.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io;
using namespace sfm::io::zarr;
using namespace sfm::zarr_test;

namespace {

// Stores written by zarr-python, kept in the repository (tests/fixtures/zarrita/README.md).
const fs::path kFixtures = fs::path(SFM_SOURCE_DIR) / "tests" / "fixtures" / "zarrita";

// Reads the whole array and a few random boxes, comparing with the expected values.
void check_array(const Array& a, const NpyF32& expected, std::mt19937& rng) {
  REQUIRE(a.shape() == expected.shape);
  const std::vector<float> all = a.read_all();
  const int64_t diff = first_difference(all, expected.values);
  INFO("first difference at flat index " << diff);
  REQUIRE(diff == -1);
  for (int k = 0; k < 3 && a.rank() > 0; ++k) {
    std::vector<int64_t> start(a.rank()), shape(a.rank());
    for (size_t d = 0; d < a.rank(); ++d) {
      const int64_t n = a.shape()[d];
      start[d] = n > 0 ? int64_t(rng() % uint64_t(n)) : 0;
      shape[d] = n > start[d] ? 1 + int64_t(rng() % uint64_t(n - start[d])) : 0;
    }
    const std::vector<float> box = a.read_box(start, shape);
    REQUIRE(first_difference(box, crop(expected.values, expected.shape, start, shape)) == -1);
  }
}

// A store that reads through a FileStore but cannot list keys (as HTTP and S3 stores cannot).
class UnlistableStore final : public Store {
 public:
  explicit UnlistableStore(const fs::path& root) : files_(root) {}
  std::optional<Bytes> get(const StoreRequest& request) override { return files_.get(request); }
  void set(const std::string& key, std::span<const std::byte> value) override { files_.set(key, value); }
  std::string describe() const override { return "unlistable " + files_.describe(); }

 private:
  FileStore files_;
};

}  // namespace

TEST_CASE("arrays written and read in a MemoryStore: dtypes, formats, edge chunks, cache, counters", "[io][zarr]") {
  auto store = std::make_shared<MemoryStore>();
  const std::vector<int64_t> shape{9, 10, 11};
  std::vector<double> values(990);
  for (size_t i = 0; i < values.size(); ++i) values[i] = double(int64_t(i * 37 % 251) - 100);
  const std::vector<DataType> types{{Kind::Bool, 1, false}, {Kind::Int, 1, false},  {Kind::UInt, 1, false},
                                    {Kind::Int, 2, false},  {Kind::UInt, 2, false}, {Kind::Int, 4, false},
                                    {Kind::UInt, 4, false}, {Kind::Int, 8, false},  {Kind::UInt, 8, false},
                                    {Kind::Float, 2, false}, {Kind::Float, 4, false}, {Kind::Float, 8, false}};
  std::mt19937 rng(7);
  int n = 0;
  for (int format : {2, 3})
    for (const DataType& t : types)
      for (bool big : {false, true}) {
        WriteOptions o;
        o.zarr_format = format;
        o.chunks = {4, 3, 5};
        o.big_endian = big;
        o.order = n % 2 ? 'F' : 'C';
        if (format == 3 && n % 3 == 0) o.shard_shape = {8, 6, 10};
        o.compressor = std::vector<std::string>{"blosc", "zstd", "gzip", "none"}[size_t(n % 4)];
        std::string path = "a";
        path += std::to_string(n++);
        INFO(path << " format " << format << " " << t.v3_name() << (big ? " big" : "") << " " << o.compressor);
        write_array<double>(store, path, shape, values, o, t);
        NpyF32 expected{shape, {}};
        for (double v : values) {
          float f = float(v);
          if (t.kind == Kind::Bool) f = v != 0 ? 1.0f : 0.0f;
          else if (t.kind == Kind::UInt && v < 0) f = float(t.size == 8 ? double(uint64_t(int64_t(v)))
                                                                          : double(uint64_t(int64_t(v)) & ((uint64_t(1) << (8 * t.size)) - 1)));
          else if (t.kind == Kind::Int && t.size == 1) f = float(int8_t(int64_t(v)));
          expected.values.push_back(f);
        }
        Array a = Array::open(store, path);
        CHECK(a.metadata().dtype.kind == t.kind);
        check_array(a, expected, rng);
      }
  SECTION("zero-dimensional arrays") {
    for (int format : {2, 3}) {
      WriteOptions o;
      o.zarr_format = format;
      const std::vector<int64_t> scalar;
      const std::vector<float> v{42.5f};
      write_array<float>(store, "scalar" + std::to_string(format), scalar, v, o);
      CHECK(Array::open(store, "scalar" + std::to_string(format)).read_all() == v);
    }
    CHECK(store->get({"scalar3/c", std::nullopt}).has_value());
    CHECK(store->get({"scalar2/0", std::nullopt}).has_value());
  }
  SECTION("the cache serves repeated reads; counters count") {
    Array a = Array::open(store, "a1");
    const std::vector<int64_t> start{1, 2, 3}, box{5, 5, 5};
    a.read_box(start, box);
    const ReadStats first = a.stats();
    CHECK(first.requests == 2 * 3 * 2);
    CHECK(first.cache_misses == 12);
    CHECK(first.bytes_fetched > 0);
    CHECK(first.chunks_decoded == 12);
    a.read_box(start, box);
    CHECK(a.stats().requests == first.requests);
    CHECK(a.stats().cache_hits == 12);
    Array copy = a;  // copies share cache and counters
    copy.read_box(start, box);
    CHECK(a.stats().cache_hits == 24);
    a.cache().set_capacity(0);
    a.read_box(start, box);
    CHECK(a.stats().requests == 2 * first.requests);
    Array small = Array::open(store, "a1", ArrayOptions{2000, nullptr});  // room for about one chunk
    small.read_box(start, box);
    CHECK(small.cache().used_bytes() <= 2000);
  }
  SECTION("boxes outside the array are refused; the caller's buffer must fit") {
    Array a = Array::open(store, "a0");
    const std::vector<int64_t> s0{0, 0, 0}, s1{5, 0, 0}, big{5, 10, 11}, neg{-1, 0, 0}, one{1, 1, 1}, two{1, 1};
    expect_error([&] { a.read_box(s1, big); }, {"outside", "memory://", "a0"});
    expect_error([&] { a.read_box(neg, one); }, {"outside"});
    expect_error([&] { a.read_box(two, two); }, {"outside"});
    std::vector<float> buffer(2);
    expect_error([&] { a.read_box(s0, one, buffer); }, {"buffer"});
    const std::vector<int64_t> empty{0, 0, 0};
    CHECK(a.read_box(s1, empty).empty());
  }
}

TEST_CASE("reads with the cache off decode only the rows they need and match reads with it on", "[io][zarr]") {
  // Chunks of 8 x 12 x 10 float32 (3840 bytes) in blosc blocks of 512 bytes: a box that crosses a
  // chunk in dim 0 decodes only the blocks holding its rows; v2, v3 and sharded arrays, every
  // shuffle, and a pipeline (gzip) that cannot decode part of a chunk and decodes all of it.
  auto store = std::make_shared<MemoryStore>();
  const std::vector<int64_t> shape{29, 31, 23};
  std::vector<float> values(size_t(nd::count(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(int64_t(i * 7919 % 10007) - 5000) * 0.25f;
  const NpyF32 expected{shape, values};
  const auto blosc = [](const char* shuffle) {
    return json{{"name", "blosc"},
                {"configuration", {{"cname", "zstd"}, {"clevel", 3}, {"shuffle", shuffle}, {"typesize", 4}, {"blocksize", 512}}}};
  };
  int n = 0;
  const auto write = [&](const WriteOptions& o) {
    const std::string path = "r" + std::to_string(n++);
    write_array<float>(store, path, shape, values, o);
    return path;
  };
  std::vector<std::string> paths;
  for (const char* shuffle : {"noshuffle", "shuffle", "bitshuffle"}) {
    WriteOptions o;
    o.chunks = {8, 12, 10};
    o.codecs = json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}, blosc(shuffle)});
    paths.push_back(write(o));
  }
  {
    WriteOptions o;
    o.zarr_format = 2;
    o.chunks = {8, 12, 10};
    o.compressor_json = {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 512}};
    paths.push_back(write(o));
  }
  {
    WriteOptions o;
    o.codecs = json::array({{{"name", "sharding_indexed"},
                             {"configuration",
                              {{"chunk_shape", {8, 12, 10}},
                               {"codecs", json::array({{{"name", "bytes"}}, blosc("shuffle")})},
                               {"index_codecs", json::array({{{"name", "bytes"}}, {{"name", "crc32c"}}})}}}}});
    o.chunks = {16, 24, 20};
    paths.push_back(write(o));
  }
  {
    WriteOptions o;
    o.chunks = {8, 12, 10};
    o.compressor = "gzip";
    paths.push_back(write(o));
  }
  std::mt19937 rng(11);
  for (const std::string& path : paths) {
    INFO(path);
    const Array uncached = Array::open(store, path, ArrayOptions{0, nullptr});
    const Array cached = Array::open(store, path);
    check_array(uncached, expected, rng);
    for (int k = 0; k < 20; ++k) {
      std::vector<int64_t> start(3), box(3);
      for (size_t d = 0; d < 3; ++d) {
        start[d] = int64_t(rng() % uint64_t(shape[d]));
        box[d] = 1 + int64_t(rng() % uint64_t(shape[d] - start[d]));
      }
      INFO("start " << start[0] << "," << start[1] << "," << start[2] << " box " << box[0] << "," << box[1] << "," << box[2]);
      const std::vector<float> got = uncached.read_box(start, box);
      CHECK(got == cached.read_box(start, box));
      CHECK(first_difference(got, crop(values, shape, start, box)) == -1);
    }
    // One row of dim 0 across 3 x 2 chunks. blosc_scatter decompresses only the blosc blocks that
    // hold the box's elements (worked out here from each chunk's header; the sharded array's inner
    // chunks are r1's); libblosc's getitem (bit shuffle) decodes the row, gzip whole chunks.
    uncached.reset_stats();
    const std::vector<int64_t> start{3, 5, 5}, box{1, 20, 15};
    CHECK(first_difference(uncached.read_box(start, box), crop(values, shape, start, box)) == -1);
    CHECK(uncached.stats().chunks_decoded == 6);
    const bool whole = path == paths.back(), getitem = path == paths[2];
    uint64_t expected_bytes = whole ? 6 * 3840 : getitem ? 6 * 480 : 0;
    const std::string headers = path == paths[4] ? paths[1] : path;  // the array whose chunks hold the headers
    const Array plain = Array::open(store, headers);
    for (int64_t cy = 0; cy < 3 && !whole && !getitem; ++cy)
      for (int64_t cx = 0; cx < 2; ++cx) {
        const std::vector<int64_t> index{0, cy, cx};
        const auto chunk = store->get(StoreRequest{headers + "/" + plain.metadata().chunk_key(index), std::nullopt});
        REQUIRE(chunk.has_value());
        const codec::BloscHeader h = codec::blosc_header(*chunk, "test");
        const int64_t y0 = std::max<int64_t>(5, 12 * cy) - 12 * cy, y1 = std::min<int64_t>(25, 12 * cy + 12) - 12 * cy;
        const int64_t x0 = std::max<int64_t>(5, 10 * cx) - 10 * cx, x1 = std::min<int64_t>(20, 10 * cx + 10) - 10 * cx;
        const size_t first = size_t(((3 * 12 + y0) * 10 + x0) * 4), last = size_t(((3 * 12 + y1 - 1) * 10 + x1 - 1) * 4);
        for (size_t b = first / h.blocksize; b <= last / h.blocksize; ++b)
          expected_bytes += std::min(h.blocksize, h.nbytes - b * h.blocksize);
      }
    CHECK(uncached.stats().bytes_decoded == expected_bytes);
    // Less than the whole chunks, but for lz4, whose 512-byte blocks blosc enlarged (it splits
    // them into byte planes) to one block per chunk.
    if (path != paths.back() && path != paths[3]) CHECK(expected_bytes < 6 * 3840);
  }
}

TEST_CASE("groups: open_node, consolidated metadata, listing", "[io][zarr]") {
  SECTION("zarrita v2 root: consolidated .zmetadata lists the arrays") {
    auto store = std::make_shared<FileStore>(kFixtures / "v2" / "data.zarr");
    Node root = open_node(store, "");
    REQUIRE(std::holds_alternative<Group>(root));
    const Group& g = std::get<Group>(root);
    CHECK(g.zarr_format() == 2);
    CHECK(g.has_consolidated());
    const auto children = g.children();
    CHECK(std::find(children.begin(), children.end(), "1d.contiguous.zstd.i2") != children.end());
    Array a = g.open_array("1d.contiguous.zstd.i2");
    CHECK(a.read_all() == std::vector<float>{1, 2, 3, 4});
    CHECK(std::holds_alternative<Array>(open_node(store, "2d.chunked.i2")));
  }
  SECTION("zarrita v3: inline consolidated metadata in a subgroup; listing only where the store lists") {
    auto store = std::make_shared<FileStore>(kFixtures / "v3" / "data.zarr");
    Group root = Group::open(store, "");
    CHECK(!root.has_consolidated());
    const auto listed = root.children();
    CHECK(std::find(listed.begin(), listed.end(), "consolidated") != listed.end());
    CHECK(std::find(listed.begin(), listed.end(), "my group with spaces") != listed.end());
    Group unlistable = Group::open(std::make_shared<UnlistableStore>(kFixtures / "v3" / "data.zarr"), "");
    expect_error([&] { unlistable.children(); }, {"cannot list", "consolidated"});
    Group c = root.open_group("consolidated");
    CHECK(c.has_consolidated());
    CHECK(c.attributes()["answer"] == 42);
    CHECK(c.children() == std::vector<std::string>{"1d.chunked.i2", "2d.contiguous.i2", "nested"});
    CHECK(c.array_paths() == std::vector<std::string>{"1d.chunked.i2", "2d.contiguous.i2", "nested/1d.i2"});
    Group nested = c.open_group("nested");
    CHECK(nested.children() == std::vector<std::string>{"1d.i2"});
    CHECK(nested.open_array("1d.i2").read_all().size() == 4);
    CHECK(std::holds_alternative<Group>(open_node(store, "my group with spaces")));
    expect_error([&] { open_node(store, "no/such/node"); }, {"no Zarr array or group", "no/such/node"});
    expect_error([&] { Array::open(store, "consolidated"); }, {"group, not an array"});
  }
  SECTION("a listable store lists children without consolidated metadata") {
    auto store = std::make_shared<MemoryStore>();
    write_group(*store, "", 3);
    write_group(*store, "g", 3, json{{"k", "v"}});
    const std::vector<int64_t> shape{4};
    const std::vector<float> v{1, 2, 3, 4};
    write_array<float>(store, "g/x", shape, v);
    write_array<float>(store, "y", shape, v);
    Group root = Group::open(store, "");
    CHECK(root.children() == std::vector<std::string>{"g", "y"});
    CHECK(root.array_paths() == std::vector<std::string>{"g/x", "y"});
    CHECK(root.open_group("g").attributes()["k"] == "v");
  }
}

TEST_CASE("zarrita fixtures: every numeric array reads back zarr-python's values", "[io][zarr][python]") {
  for (const char* version : {"v2", "v3"}) {
    const fs::path root = kFixtures / version / "data.zarr";
    const fs::path out = sfm::test::scratch_dir(std::string("zarrita-") + version);
    run_python("dump_arrays.py", "'" + root.string() + "' '" + out.string() + "'");
    auto store = std::make_shared<FileStore>(root);
    std::mt19937 rng(3);
    int read = 0, refused = 0;
    for (const json& entry : read_json(out / "manifest.json")) {
      const std::string path = entry["path"];
      INFO(version << " array '" << path << "'");
      // Filters (delta, fixedscaleoffset, bitround, vlen codecs) and non-numeric dtypes are refused.
      const bool filtered = path.find("delta") != std::string::npos || path.find("bitround") != std::string::npos ||
                            path.find("fixedscaleoffset") != std::string::npos;
      if (!entry.value("numeric", false) || filtered) {
        expect_error([&] { Array::open(store, path).read_all(); }, {"unsupported", path});
        if (!entry.value("numeric", false)) {  // the error names the stored dtype
          const bool v2 = fs::exists(root / path / ".zarray");
          const json meta = read_json(root / path / (v2 ? ".zarray" : "zarr.json"));
          const json type = v2 ? meta["dtype"] : meta["data_type"];
          const std::string name = type.is_string() ? type.get<std::string>() : type.value("name", type.dump());
          expect_error([&] { Array::open(store, path); }, {name});
        }
        ++refused;
        continue;
      }
      check_array(Array::open(store, path), read_npy_f32(out / std::string(entry["npy"])), rng);
      ++read;
    }
    CHECK(read >= (std::string(version) == "v2" ? 20 : 30));
    CHECK(refused >= 5);
  }
  // Independent spot checks from the generator's literals.
  auto v3 = std::make_shared<FileStore>(kFixtures / "v3" / "data.zarr");
  CHECK(Array::open(v3, "1d.contiguous.f4.be").read_all() == std::vector<float>{-1000.5f, 0, 1000.5f, 0});
  CHECK(Array::open(v3, "1d.contiguous.b1").read_all() == std::vector<float>{1, 0, 1, 0});
  CHECK(Array::open(v3, "1d.chunked.filled.compressed.sharded.i2").read_all() == std::vector<float>{1, 2, 0, 0});
}

TEST_CASE("zarr-python 3 matrix: codecs x shuffles x dtypes x orders x separators x fills x sharding", "[io][zarr][python]") {
  const fs::path out = sfm::test::scratch_dir("zarr-matrix");
  run_python("write_matrix.py", "'" + out.string() + "'");
  auto store = std::make_shared<FileStore>(out / "store");
  std::mt19937 rng(11);
  size_t n = 0;
  for (const json& entry : read_json(out / "manifest.json")) {
    INFO(std::string(entry["what"]) << " at '" << std::string(entry["path"]) << "'");
    check_array(Array::open(store, entry["path"]), read_npy_f32(out / std::string(entry["npy"])), rng);
    ++n;
  }
  CHECK(n > 400);
}

TEST_CASE("faults name the chunk key: corrupt chunk, truncated shard index, checksum mismatch", "[io][zarr]") {
  const fs::path dir = sfm::test::scratch_dir("zarr-faults");
  auto store = std::make_shared<FileStore>(dir);
  const std::vector<int64_t> shape{8, 8};
  std::vector<float> values(64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  const auto corrupt = [&](const std::string& key, const std::function<void(Bytes&)>& edit) {
    Bytes b = *store->get({key, std::nullopt});
    edit(b);
    store->set(key, b);
  };
  SECTION("corrupt blosc chunk (v2)") {
    WriteOptions o;
    o.zarr_format = 2;
    o.chunks = {4, 4};
    write_array<float>(store, "v2", shape, values, o);
    corrupt("v2/1.0", [](Bytes& b) { b.resize(b.size() / 2); });
    const std::vector<int64_t> s{0, 0}, box{4, 4}, all{8, 8};
    CHECK(Array::open(store, "v2").read_box(s, box) == std::vector<float>{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27});
    expect_error([&] { Array::open(store, "v2").read_box(s, all); }, {"v2/1.0", "blosc", dir.string()});
  }
  SECTION("garbage zstd chunk (v3)") {
    WriteOptions o;
    o.chunks = {4, 4};
    o.compressor = "zstd";
    write_array<float>(store, "v3", shape, values, o);
    corrupt("v3/c/0/1", [](Bytes& b) { for (auto& x : b) x = std::byte{0x5a}; });
    expect_error([&] { Array::open(store, "v3").read_all(); }, {"v3/c/0/1", "zstd"});
  }
  SECTION("truncated shard index") {
    WriteOptions o;
    o.chunks = {2, 2};
    o.shard_shape = {4, 4};
    write_array<float>(store, "sh", shape, values, o);
    corrupt("sh/c/1/1", [](Bytes& b) { b.resize(20); });
    expect_error([&] { Array::open(store, "sh").read_all(); }, {"sh/c/1/1", "truncated shard index"});
    // Written afresh, so that the one fault is the checksum (the shards' indexes are checked in
    // parallel: with both faults either could be reported first).
    write_array<float>(store, "sh", shape, values, o);
    corrupt("sh/c/0/1", [](Bytes& b) { b[b.size() - 10] ^= std::byte{0x40}; });
    expect_error([&] { Array::open(store, "sh").read_all(); }, {"sh/c/0/1", "checksum mismatch"});
  }
  SECTION("crc32c mismatch in a chunk") {
    WriteOptions o;
    o.chunks = {4, 8};
    o.compressor = "none";
    o.crc32c = true;
    write_array<float>(store, "crc", shape, values, o);
    corrupt("crc/c/1/0", [](Bytes& b) { b[5] ^= std::byte{1}; });
    const std::vector<int64_t> s{0, 0}, box{4, 8};
    CHECK(Array::open(store, "crc").read_box(s, box).size() == 32);
    expect_error([&] { Array::open(store, "crc").read_all(); }, {"crc/c/1/0", "checksum mismatch"});
  }
  SECTION("invalid metadata JSON") {
    const std::string text = "{not json";
    store->set("bad/zarr.json", std::as_bytes(std::span(text.data(), text.size())));
    expect_error([&] { Array::open(store, "bad"); }, {"bad/zarr.json", "JSON"});
  }
}

TEST_CASE("thread pool runs every task and rethrows the first error", "[io]") {
  ThreadPool pool(3);
  std::atomic<int> sum{0};
  pool.parallel_for(1000, [&](size_t i) { sum += int(i); });
  CHECK(sum == 999 * 1000 / 2);
  std::atomic<int> ran{0};
  expect_error([&] { pool.parallel_for(50, [&](size_t i) { ++ran; if (i == 17) sfm::fail("task 17 failed"); }); },
               {"task 17 failed"});
  CHECK(ran == 50);
  // Nested use runs inline instead of deadlocking.
  std::atomic<int> inner{0};
  pool.parallel_for(4, [&](size_t) { pool.parallel_for(4, [&](size_t) { ++inner; }); });
  CHECK(inner == 16);
}

TEST_CASE("read_box_f64: zarr-python's float64 arrays (v2, big-endian v3, sharded with a missing inner chunk) read exactly", "[io][zarr][python]") {
  const fs::path dir = sfm::test::scratch_dir("zarr_float64");
  run_python("write_float64.py", "'" + dir.string() + "'");
  const auto store = std::make_shared<FileStore>(dir / "store");
  const auto expected = [](int64_t r, int64_t c, bool sharded) {
    if (sharded && r < 2 && c >= 3 && c < 6) return 6.5e6;  // the unwritten inner chunk: the fill value
    return 6.7e6 + 0.001 * double(r * 9 + c);
  };
  for (const std::string path : {"v2/a", "v3_be", "v3_sharded"}) {
    INFO(path);
    const Array array = std::get<Array>(open_node(store, path));
    const bool sharded = path == "v3_sharded";
    const std::vector<int64_t> start{1, 2}, shape{5, 6};
    const std::vector<double> box = array.read_box_f64(start, shape);
    const std::vector<float> as_float = array.read_box(start, shape);
    int64_t wrong = 0, float_loses = 0;
    for (int64_t r = 0; r < 5; ++r)
      for (int64_t c = 0; c < 6; ++c) {
        const double want = expected(r + 1, c + 2, sharded);
        wrong += box[size_t(r * 6 + c)] != want;
        float_loses += double(as_float[size_t(r * 6 + c)]) != want;
      }
    CHECK(wrong == 0);
    CHECK(float_loses > 20);  // what the float32 path returns is not the stored value
    const std::vector<double> all = array.read_box_f64(std::vector<int64_t>{0, 0}, array.shape());
    REQUIRE(all.size() == 63);
    CHECK(all[62] == expected(6, 8, sharded));
  }
}
