// HttpStore: a read-only Store over HTTP(S) (nginx, a CDN, a bucket's public HTTPS endpoint),
// and HttpReadStore, the reads and GET-to-store-result rules it shares with S3Store.
//
// Key k is read from <base_url>/<k> (k percent-encoded, '/' kept); a byte range is sent as a
// Range header ("bytes=a-b", "bytes=a-", suffix "bytes=-n"), and a server that ignores it and
// answers 200 is cut down here. get_many runs its requests concurrently through one HttpClient;
// get_each hands each value on as soon as its transfer finishes, and get_chained starts the reads
// its sinks ask for at once, beside those in flight.
// Absent keys: 404 → std::nullopt, except an S3 404 "NoSuchBucket", which is an error. 403 is an
// error (a wrong key or secret must not look like a missing chunk) unless
// HttpOptions::forbidden_as_absent is set, for servers that answer 403 for missing keys (S3
// buckets readable without list permission). Any other failure, once retries are spent, is an
// sfm::Error naming the store, key, URL, status and the server's own error code and message.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
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

// Store::get_chained over `client`: every read, the first ones and those the sinks ask for later,
// is submitted to the client at once, so a read that depends on an earlier answer runs beside the
// others instead of after a round. The caller's thread and `pool`'s each take the next response to
// finish and run its sink, so decoding overlaps the transfers still in flight.
inline void http_get_chained(HttpClient& client, const std::string& store, std::span<const StoreRequest> requests,
                             const std::function<HttpRequest(const StoreRequest&)>& to_http, ThreadPool& pool,
                             const ChainedSink& sink) {
  struct Read {
    StoreRequest request;
    HttpRequest http;
    HttpResponse response;
    size_t tag;
  };
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Read> reads;       // grows while transfers run: a deque keeps the others in place
  std::deque<Read*> finished;
  size_t unfinished = 0;        // reads whose sink has not returned
  std::exception_ptr error;
  const auto on_done = [&](Read* read) {
    std::lock_guard lock(mutex);  // notify under the lock: once a sink sees the read, all may end
    finished.push_back(read);
    ready.notify_one();
  };
  // The first reads are checked (keys, ranges) before any starts.
  const std::vector<HttpRequest> first = http_requests(store, requests, to_http);
  for (size_t i = 0; i < requests.size(); ++i) reads.push_back(Read{requests[i], first[i], {}, i});
  unfinished = reads.size();
  const auto submit = [&](Read* read) {
    client.submit({&read->http, 1}, {&read->response, 1}, [&on_done, read](size_t) { on_done(read); }, true);
  };
  for (Read& read : reads) submit(&read);  // no sink runs yet: nothing else touches `reads`
  const ReadMore more = [&](StoreRequest request, size_t tag) {
    HttpRequest http = http_requests(store, {&request, 1}, to_http).front();
    Read* read;
    {
      std::lock_guard lock(mutex);
      read = &reads.emplace_back(Read{std::move(request), std::move(http), {}, tag});
      ++unfinished;
    }
    submit(read);
  };
  pool.parallel_for(pool.size() + 1, [&](size_t) {
    for (;;) {
      Read* read;
      {
        std::unique_lock lock(mutex);
        ready.wait(lock, [&] { return !finished.empty() || unfinished == 0; });
        if (finished.empty()) return;
        read = finished.front();
        finished.pop_front();
      }
      try {
        sink(read->tag,
             http_store_value(store, read->request, read->http, read->response, client.options().forbidden_as_absent),
             more);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!error) error = std::current_exception();
      }
      read->response = HttpResponse{};  // its pooled body goes back for the transfers still running
      bool last;
      {
        std::lock_guard lock(mutex);
        last = --unfinished == 0;
      }
      if (last) ready.notify_all();
    }
  });
  if (error) std::rethrow_exception(error);
}

// A read-only Store whose values are GETs through one HttpClient: the reads HttpStore and S3Store
// share. A subclass says how a read becomes an HTTP request (URL, range, signing headers).
class HttpReadStore : public Store {
 public:
  std::optional<Bytes> get(const StoreRequest& request) override {
    return std::move(get_many({&request, 1}).front());
  }

  std::vector<std::optional<Bytes>> get_many(std::span<const StoreRequest> requests) override {
    return http_get_many(client_, describe(), requests, to_http());
  }

  void get_each(std::span<const StoreRequest> requests, ThreadPool& pool, const ValueSink& sink) override {
    // get_chained whose sinks ask for nothing more.
    get_chained(requests, pool,
                [&](size_t i, std::optional<std::span<const std::byte>> value, const ReadMore&) { sink(i, value); });
  }

  void get_chained(std::span<const StoreRequest> requests, ThreadPool& pool, const ChainedSink& sink) override {
    http_get_chained(client_, describe(), requests, to_http(), pool, sink);
  }

  HttpStats stats() const { return client_.stats(); }

 protected:
  explicit HttpReadStore(HttpOptions options, HttpClient::Signer signer = {})
      : client_(std::move(options), std::move(signer)) {}

  // The HTTP request that reads `request` (its key and range already checked).
  virtual HttpRequest get_request(const StoreRequest& request) const = 0;

  HttpClient client_;

 private:
  std::function<HttpRequest(const StoreRequest&)> to_http() const {
    return [this](const StoreRequest& request) { return get_request(request); };
  }
};

class HttpStore final : public HttpReadStore {
 public:
  explicit HttpStore(std::string base_url, HttpOptions options = HttpOptions::from_env())
      : HttpReadStore(std::move(options)), base_url_(std::move(base_url)) {
    SFM_CHECK(base_url_.starts_with("http://") || base_url_.starts_with("https://"), "HttpStore: '",
              base_url_, "' is not an http:// or https:// URL");
    while (base_url_.ends_with('/')) base_url_.pop_back();
  }

  void set(const std::string& key, std::span<const std::byte>) override {
    fail(describe(), ": cannot write key '", key, "': HTTP stores are read-only");
  }

  std::string describe() const override { return base_url_; }

  std::string url_of(const std::string& key) const { return base_url_ + "/" + uri_encode(key, true); }

 private:
  HttpRequest get_request(const StoreRequest& request) const override {
    HttpRequest http;
    http.url = url_of(request.key);
    if (request.range) http.headers.emplace_back("Range", http_range(*request.range));
    return http;
  }

  std::string base_url_;
};

}  // namespace sfm::io
