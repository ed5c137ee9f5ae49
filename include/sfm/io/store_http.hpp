// HttpStore: a read-only Store over HTTP(S) (nginx, a CDN, a bucket's public HTTPS endpoint),
// and the GET-to-store-result rules it shares with S3Store.
//
// Key k is read from <base_url>/<k> (k percent-encoded, '/' kept); a byte range is sent as a
// Range header ("bytes=a-b", "bytes=a-", suffix "bytes=-n"), and a server that ignores it and
// answers 200 is cut down here. get_many runs its requests concurrently through one HttpClient;
// get_each hands each value on as soon as its transfer finishes.
// Absent keys: 404 → std::nullopt, except an S3 404 "NoSuchBucket", which is an error. 403 is an
// error (a wrong key or secret must not look like a missing chunk) unless
// HttpOptions::forbidden_as_absent is set, for servers that answer 403 for missing keys (S3
// buckets readable without list permission). Any other failure, once retries are spent, is an
// sfm::Error naming the store, key, URL, status and the server's own error code and message.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <string_view>

#include "sfm/core/error.hpp"
#include "sfm/io/http_client.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/store_key.hpp"

namespace sfm::io {

// The Range header value for `range`.
inline std::string http_range(const ByteRange& range) {
  if (range.offset < 0) return "bytes=" + std::to_string(range.offset);  // "bytes=-n"
  std::string value = "bytes=" + std::to_string(range.offset) + "-";
  if (range.length != -1) value += std::to_string(range.offset + range.length - 1);
  return value;
}

// The server's explanation of a failure: "Code: Message" from an S3-style XML error body, else
// the start of the body on one line.
inline std::string http_error_text(const Bytes& body) {
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  const auto element = [&](std::string_view name) {
    const std::string open = "<" + std::string(name) + ">";
    const size_t begin = text.find(open);
    if (begin == std::string_view::npos) return std::string_view{};
    const size_t end = text.find("</", begin + open.size());
    return end == std::string_view::npos ? std::string_view{}
                                         : text.substr(begin + open.size(), end - begin - open.size());
  };
  if (const std::string_view code = element("Code"); !code.empty())
    return std::string(code) + ": " + std::string(element("Message"));
  std::string line;
  for (const char c : text.substr(0, 200)) {
    const char shown = static_cast<unsigned char>(c) < 32 ? ' ' : c;
    if (shown != ' ' || (!line.empty() && line.back() != ' ')) line += shown;
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// "GET <url> returned HTTP 503 (SlowDown: ...) after 5 attempts", or "... failed: <why>".
inline std::string http_failure(const HttpRequest& http, const HttpResponse& response) {
  std::ostringstream out;
  out << http.method << ' ' << http.url;
  if (response.status == 0) {
    out << " failed: " << response.error;
  } else {
    out << " returned HTTP " << response.status;
    if (const std::string text = http_error_text(response.body); !text.empty()) out << " (" << text << ")";
  }
  if (response.attempts > 1) out << " after " << response.attempts << " attempts";
  return out.str();
}

// The store value of a finished GET (see the rules above), as a view into `response`.
inline std::optional<std::span<const std::byte>> http_store_value(const std::string& store, const StoreRequest& request,
                                                                  const HttpRequest& http, const HttpResponse& response,
                                                                  bool forbidden_as_absent) {
  const std::span<const std::byte> body = response.bytes();
  if (response.status == 206 || (response.status == 200 && !request.range)) return body;
  if (response.status == 200) {  // the server ignored the Range header and sent the whole value
    const auto [begin, end] = resolve_range(store, request.key, *request.range, int64_t(body.size()));
    return body.subspan(size_t(begin), size_t(end - begin));
  }
  const bool no_bucket = http_error_text(response.body).starts_with("NoSuchBucket:");
  if ((response.status == 404 && !no_bucket) || (response.status == 403 && forbidden_as_absent))
    return std::nullopt;
  fail(store, ": cannot read key '", request.key, "': ", http_failure(http, response));
}

// The HTTP requests of store `requests`, their keys and ranges checked.
inline std::vector<HttpRequest> http_requests(const std::string& store, std::span<const StoreRequest> requests,
                                              const std::function<HttpRequest(const StoreRequest&)>& to_http) {
  std::vector<HttpRequest> http;
  http.reserve(requests.size());
  for (const StoreRequest& request : requests) {
    check_key(store, request.key);
    if (request.range) check_range(store, request.key, *request.range);
    http.push_back(to_http(request));
  }
  return http;
}

// Reads `requests` concurrently through `client`, `to_http` making each one's HTTP request.
inline std::vector<std::optional<Bytes>> http_get_many(
    HttpClient& client, const std::string& store, std::span<const StoreRequest> requests,
    const std::function<HttpRequest(const StoreRequest&)>& to_http) {
  const std::vector<HttpRequest> http = http_requests(store, requests, to_http);
  std::vector<HttpResponse> responses = client.run(http);
  std::vector<std::optional<Bytes>> values;
  values.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto value = http_store_value(store, requests[i], http[i], responses[i], client.options().forbidden_as_absent);
    Bytes& body = responses[i].body;  // get_many asks for no pooled bodies: the value lies in `body`
    if (!value) values.push_back(std::nullopt);
    else if (value->size() == body.size()) values.push_back(std::move(body));
    else values.push_back(Bytes(value->begin(), value->end()));
  }
  return values;
}

// Store::get_each over `client`: one task on `pool` drives the transfers (it only waits) while the
// others each take the next response to finish and run its sink, so decoding overlaps the transfers
// still in flight instead of waiting for the slowest one.
inline void http_get_each(HttpClient& client, const std::string& store, std::span<const StoreRequest> requests,
                          const std::function<HttpRequest(const StoreRequest&)>& to_http, ThreadPool& pool,
                          const ValueSink& sink) {
  const std::vector<HttpRequest> http = http_requests(store, requests, to_http);
  std::vector<HttpResponse> responses(requests.size());
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<size_t> finished;
  bool aborted = false;  // the transfers could not run: nothing more will finish
  pool.parallel_for(requests.size() + 1, [&](size_t task) {
    if (task == 0) {
      try {
        client.run(
            http, responses,
            [&](size_t i) {
              {
                std::lock_guard lock(mutex);
                finished.push_back(i);
              }
              ready.notify_one();
            },
            true);
      } catch (...) {
        {
          std::lock_guard lock(mutex);
          aborted = true;
        }
        ready.notify_all();
        throw;
      }
      return;
    }
    size_t i;
    {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return aborted || !finished.empty(); });
      if (finished.empty()) return;
      i = finished.front();
      finished.pop_front();
    }
    sink(i, http_store_value(store, requests[i], http[i], responses[i], client.options().forbidden_as_absent));
    responses[i] = HttpResponse{};  // its pooled body goes back for the transfers still running
  });
}

class HttpStore final : public Store {
 public:
  explicit HttpStore(std::string base_url, HttpOptions options = HttpOptions::from_env())
      : base_url_(std::move(base_url)), client_(std::move(options)) {
    SFM_CHECK(base_url_.starts_with("http://") || base_url_.starts_with("https://"), "HttpStore: '",
              base_url_, "' is not an http:// or https:// URL");
    while (base_url_.ends_with('/')) base_url_.pop_back();
  }

  std::optional<Bytes> get(const StoreRequest& request) override {
    return std::move(get_many({&request, 1}).front());
  }

  std::vector<std::optional<Bytes>> get_many(std::span<const StoreRequest> requests) override {
    return http_get_many(client_, describe(), requests, [&](const StoreRequest& request) { return get_request(request); });
  }

  void get_each(std::span<const StoreRequest> requests, ThreadPool& pool, const ValueSink& sink) override {
    http_get_each(client_, describe(), requests, [&](const StoreRequest& request) { return get_request(request); }, pool,
                  sink);
  }

  void set(const std::string& key, std::span<const std::byte>) override {
    fail(describe(), ": cannot write key '", key, "': HTTP stores are read-only");
  }

  std::string describe() const override { return base_url_; }

  std::string url_of(const std::string& key) const { return base_url_ + "/" + uri_encode(key, true); }

  HttpStats stats() const { return client_.stats(); }

 private:
  HttpRequest get_request(const StoreRequest& request) const {
    HttpRequest http;
    http.url = url_of(request.key);
    if (request.range) http.headers.emplace_back("Range", http_range(*request.range));
    return http;
  }

  std::string base_url_;
  HttpClient client_;
};

}  // namespace sfm::io
