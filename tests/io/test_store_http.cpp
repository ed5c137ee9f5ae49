// HttpStore against real servers on loopback. nginx: the same bytes as FileStore for whole
// values, ranges and suffix ranges; 404 → nullopt; 64 requests in flight over reused
// connections, from several threads at once; get_each hands values on as they finish. fault_server.py: 503 / 429 / dropped connections
// that clear → the read succeeds after retries; retries spent → an error naming the URL and
// status; a server that never answers → an error after the timeout; the 403 policy.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "servers/servers.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/store_http.hpp"
#include "sfm_test.hpp"

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

  const int closed_port = sfm::test::free_port();
  HttpStore nobody("http://127.0.0.1:" + std::to_string(closed_port), quick(2));
  CHECK_THROWS_WITH(nobody.get({"x"}), sfm::test::contains("Couldn't connect") && sfm::test::contains("after 2 attempts"));
}

TEST_CASE("HttpStore gives up on a server that never answers after the timeout", "[io][store][http]") {
  HttpStore http(fault_server().url(), quick(2, 1.0));
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(http.get({"hang/0/c"}), sfm::test::contains(http.url_of("hang/0/c")) &&
                                                 sfm::test::contains("timed out") && sfm::test::contains("after 2 attempts"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds >= 2.0);
  CHECK(seconds < 6.0);
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
