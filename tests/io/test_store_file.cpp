// FileStore: round trips, ranges and suffix ranges, absent keys, refused keys, get_many, get_each,
// get_chained (and Store's default get_chained, in rounds), listing; the BufferPool get_each reads into.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

#include "sfm/io/store_file.hpp"
#include "sfm/io/store_memory.hpp"
#include "sfm_test.hpp"

using sfm::io::ByteRange;
using sfm::io::Bytes;
using sfm::io::FileStore;
using sfm::io::StoreRequest;
namespace fs = std::filesystem;

namespace {

Bytes pattern(size_t size, unsigned seed = 0) {
  Bytes bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = std::byte((i * 31 + seed) & 0xff);
  return bytes;
}

Bytes slice(const Bytes& bytes, size_t begin, size_t end) { return Bytes(bytes.begin() + begin, bytes.begin() + end); }

std::string text_of(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("FileStore writes and reads back values, creating directories", "[io][store]") {
  const fs::path root = sfm::test::scratch_dir("store_file_roundtrip");
  FileStore store(root / "x.zarr");
  const Bytes value = pattern(1000);
  store.set("a/b/c.bin", value);
  CHECK(store.get({"a/b/c.bin"}) == value);
  CHECK(fs::file_size(root / "x.zarr/a/b/c.bin") == 1000);

  store.set("a/b/c.bin", pattern(10, 7));  // overwrite
  CHECK(store.get({"a/b/c.bin"}) == pattern(10, 7));
  store.set("empty", {});
  CHECK(store.get({"empty"}) == Bytes{});
  CHECK(store.describe() == "file://" + (root / "x.zarr").string());

  // Temporary files never stay behind.
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) files += entry.is_regular_file();
  CHECK(files == 2);
}

TEST_CASE("FileStore reads ranges and suffix ranges with HTTP semantics", "[io][store]") {
  FileStore store(sfm::test::scratch_dir("store_file_ranges"));
  const Bytes value = pattern(1000);
  store.set("v", value);
  const auto read = [&](int64_t offset, int64_t length) { return store.get({"v", ByteRange{offset, length}}); };
  CHECK(read(10, 20) == slice(value, 10, 30));
  CHECK(read(0, 1) == slice(value, 0, 1));
  CHECK(read(990, -1) == slice(value, 990, 1000));
  CHECK(read(990, 100) == slice(value, 990, 1000));  // cut at the end
  CHECK(read(-16, -1) == slice(value, 984, 1000));   // the last 16 bytes
  CHECK(read(-5000, -1) == value);                   // a suffix longer than the value: all of it
  CHECK(read(999, 1) == slice(value, 999, 1000));

  CHECK_THROWS_WITH(read(1000, 1), sfm::test::contains("past the end") && sfm::test::contains("'v'"));
  CHECK_THROWS_WITH(read(0, 0), sfm::test::contains("invalid byte range"));
  CHECK_THROWS_WITH(read(5, -2), sfm::test::contains("invalid byte range"));
  CHECK_THROWS_WITH(read(-5, 3), sfm::test::contains("invalid byte range"));
  CHECK(store.get({"absent", ByteRange{0, 10}}) == std::nullopt);
}

TEST_CASE("FileStore reads absent keys as nullopt", "[io][store]") {
  const fs::path root = sfm::test::scratch_dir("store_file_absent");
  FileStore store(root);
  store.set("group/array/0.0.0", pattern(8));
  CHECK(store.get({"missing"}) == std::nullopt);
  CHECK(store.get({"group/missing/0.0.0"}) == std::nullopt);
  CHECK(store.get({"group/array/0.0.0/below"}) == std::nullopt);  // a value is not a directory
  CHECK(store.get({"group/array"}) == std::nullopt);              // a directory is not a value
  FileStore nowhere(root / "does-not-exist");
  CHECK(nowhere.get({"zarr.json"}) == std::nullopt);
}

TEST_CASE("FileStore refuses keys that could leave its root", "[io][store]") {
  const fs::path root = sfm::test::scratch_dir("store_file_keys");
  fs::create_directories(root / "inside");
  std::ofstream(root / "secret") << "outside the store";
  FileStore store(root / "inside");
  const std::vector<std::string> bad = {
      "", "/etc/passwd", "../secret", "a/../../secret", "a/..", "..", "a//b", "a/", "./a", "a/./b",
      "a\\..\\secret", std::string("a\0b", 3)};
  for (const std::string& key : bad) {
    INFO("key: " << key);
    CHECK_THROWS_WITH(store.get({key}), sfm::test::contains("refused key") && sfm::test::contains(store.describe()));
    CHECK_THROWS_WITH(store.set(key, pattern(4)), sfm::test::contains("refused key"));
    const StoreRequest request{key, ByteRange{0, 4}};
    CHECK_THROWS_AS(store.get_many({&request, 1}), sfm::Error);
  }
  CHECK(text_of(root / "secret") == "outside the store");
  CHECK(fs::is_empty(root / "inside"));
  // Dots inside a segment are ordinary names.
  store.set(".zattrs", pattern(3));
  store.set("a/..b/c..", pattern(3));
  CHECK(store.get({"a/..b/c.."}) == pattern(3));
}

TEST_CASE("FileStore::get_many returns results in request order", "[io][store]") {
  FileStore store(sfm::test::scratch_dir("store_file_many"));
  std::vector<StoreRequest> requests;
  std::vector<std::optional<Bytes>> expected;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "c/" + std::to_string(i % 7) + "/" + std::to_string(i);
    const Bytes value = pattern(100 + i, unsigned(i));
    if (i % 5 != 0) store.set(key, value);  // every fifth key is absent
    const bool ranged = i % 3 == 0;
    requests.push_back({key, ranged ? std::optional(ByteRange{-50, -1}) : std::nullopt});
    expected.push_back(i % 5 == 0 ? std::nullopt
                                  : std::optional(ranged ? slice(value, value.size() - 50, value.size()) : value));
  }
  CHECK(store.get_many(requests) == expected);
  CHECK(store.get_many({}).empty());

  // One bad request fails the batch with its own key named.
  requests[17].range = ByteRange{100000, 1};
  CHECK_THROWS_WITH(store.get_many(requests), sfm::test::contains(requests[17].key));
}

TEST_CASE("FileStore::get_each hands every value to the sink once, from reused buffers", "[io][store]") {
  FileStore store(sfm::test::scratch_dir("store_file_each"));
  std::vector<StoreRequest> requests;
  for (int i = 0; i < 120; ++i) {
    const std::string key = "k/" + std::to_string(i);
    if (i % 4 != 0) store.set(key, pattern(size_t(1000 + 37 * (i % 11)), unsigned(i)));  // every fourth key is absent
    requests.push_back({key, i % 3 == 0 ? std::optional(ByteRange{-50, -1}) : std::nullopt});
  }
  const std::vector<std::optional<Bytes>> expected = store.get_many(requests);
  sfm::io::ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {  // later rounds read into buffers earlier ones used
    std::vector<std::optional<Bytes>> got(requests.size());
    std::vector<std::atomic<int>> calls(requests.size());
    store.get_each(requests, pool, [&](size_t i, std::optional<std::span<const std::byte>> value) {
      ++calls[i];
      if (value) got[i] = Bytes(value->begin(), value->end());
    });
    CHECK(got == expected);
    for (const auto& c : calls) CHECK(c == 1);
  }
  // A failing read or sink fails the batch, naming the key; the other values still arrive.
  requests[17].range = ByteRange{100000, 1};
  std::atomic<int> delivered{0};
  CHECK_THROWS_WITH(store.get_each(requests, pool, [&](size_t, auto) { ++delivered; }),
                    sfm::test::contains(requests[17].key));
  CHECK(delivered == int(requests.size()) - 1);
  requests[17].range.reset();
  CHECK_THROWS_WITH(store.get_each(requests, pool, [&](size_t i, auto) { if (i == 5) sfm::fail("sink 5 failed"); }),
                    sfm::test::contains("sink 5 failed"));
}

TEST_CASE("get_chained reads what sinks ask for, in FileStore and in Store's default rounds", "[io][store]") {
  FileStore files(sfm::test::scratch_dir("store_file_chained"));
  sfm::io::MemoryStore memory;
  std::vector<StoreRequest> requests;
  for (int i = 0; i < 40; ++i) {
    const Bytes value = pattern(size_t(500 + i), unsigned(i));
    files.set("k/" + std::to_string(i), value);
    memory.set("k/" + std::to_string(i), value);
    requests.push_back({"k/" + std::to_string(i), ByteRange{0, 16}});
  }
  sfm::io::Store* stores[] = {&files, &memory};
  for (sfm::io::Store* store : stores) {
    INFO(store->describe());
    sfm::io::ThreadPool pool(2);
    std::mutex mutex;
    // Sinks run on pool threads, where Catch2 assertions are not safe: they only record what they
    // got (an absent value as nullopt), and the checks below run on this thread after the call.
    std::map<size_t, std::optional<Bytes>> got;
    // Each first read (the first 16 bytes) asks for the rest of its value, which asks for its last byte.
    store->get_chained(requests, pool, [&](size_t tag, std::optional<std::span<const std::byte>> value, const sfm::io::ReadMore& more) {
      {
        std::lock_guard lock(mutex);
        got[tag] = value ? std::optional(Bytes(value->begin(), value->end())) : std::nullopt;
      }
      const std::string& key = requests[tag % 100].key;
      if (tag < 100) more({key, ByteRange{16, -1}}, 100 + tag);
      else if (tag < 200) more({key, ByteRange{-1, -1}}, 100 + tag);
    });
    REQUIRE(got.size() == 120);
    for (size_t i = 0; i < 40; ++i) {
      const Bytes value = pattern(500 + i, unsigned(i));
      CHECK(got[i] == slice(value, 0, 16));
      CHECK(got[100 + i] == slice(value, 16, value.size()));
      CHECK(got[200 + i] == slice(value, value.size() - 1, value.size()));
    }
    // A failing sink of a later read fails the call.
    CHECK_THROWS_WITH(store->get_chained(requests, pool,
                                         [&](size_t tag, auto, const sfm::io::ReadMore& more) {
                                           if (tag == 7) more({"k/7"}, 1000);
                                           if (tag == 1000) sfm::fail("sink of read 1000 failed");
                                         }),
                      sfm::test::contains("read 1000 failed"));
  }
}

TEST_CASE("BufferPool hands out buffers of any size, reusing idle ones and keeping within its bounds", "[io][store]") {
  sfm::io::BufferPool pool(3, 10000);
  const std::byte* first = nullptr;
  {
    auto a = pool.get(4000);
    REQUIRE(a.size() == 4000);
    first = a.bytes().data();
    std::fill(a.bytes().begin(), a.bytes().end(), std::byte{7});
  }
  CHECK(pool.idle_count() == 1);
  CHECK(pool.idle_bytes() == 4500);  // an eighth more than asked
  {
    auto smaller = pool.get(100);  // the idle 4000-byte buffer serves it
    CHECK(smaller.bytes().data() == first);
    CHECK(smaller.size() == 100);
    CHECK(pool.idle_count() == 0);
    auto larger = pool.get(4600);  // nothing idle fits: a new one
    CHECK(larger.bytes().data() != first);
    sfm::io::BufferPool::Buffer moved = std::move(larger);
    CHECK(moved.size() == 4600);
    CHECK(larger.size() == 0);
  }
  CHECK(pool.idle_count() == 2);
  CHECK(pool.idle_bytes() == 4500 + 5175);
  { auto big = pool.get(20000); }  // over the byte bound: dropped, not kept
  CHECK(pool.idle_bytes() == 4500 + 5175);
  {
    auto a = pool.get(1), b = pool.get(1), c = pool.get(1), d = pool.get(1);
  }
  CHECK(pool.idle_count() <= 3);
  CHECK(pool.idle_bytes() <= 10000);
}

TEST_CASE("FileStore lists the keys under a prefix, sorted, without temporary files", "[io][store]") {
  const fs::path root = sfm::test::scratch_dir("store_file_list");
  FileStore store(root);
  for (const std::string key : {"zarr.json", "a/zarr.json", "a/c/0/1", "a/c/0/0", "ab/zarr.json", "b/.zarray"})
    store.set(key, pattern(4));
  std::ofstream(root / "a" / "c" / "0" / "2.tmp-1-1") << "unfinished";
  using Keys = std::vector<std::string>;
  CHECK(store.list_prefix("") == Keys{"a/c/0/0", "a/c/0/1", "a/zarr.json", "ab/zarr.json", "b/.zarray", "zarr.json"});
  CHECK(store.list_prefix("a/") == Keys{"a/c/0/0", "a/c/0/1", "a/zarr.json"});
  CHECK(store.list_prefix("a") == Keys{"a/c/0/0", "a/c/0/1", "a/zarr.json", "ab/zarr.json"});
  CHECK(store.list_prefix("a/c/0/") == Keys{"a/c/0/0", "a/c/0/1"});
  CHECK(store.list_prefix("missing/").empty());
  CHECK(FileStore(root / "nothing").list_prefix("").empty());
  CHECK_THROWS_WITH(store.list_prefix("../"), sfm::test::contains("refused key"));
}
