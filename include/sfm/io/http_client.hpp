// HttpClient: the HTTP engine under HttpStore and S3Store.
//
// One event-loop thread owns a libcurl multi handle. Requests from any thread are queued to it;
// up to max_in_flight transfers run at once over HTTP/1.1 keep-alive connections that later
// requests reuse; an attempt that fails for a passing reason (5xx, 429, 408, a timeout, a broken
// or refused connection) is retried after an exponential backoff with jitter, up to max_attempts.
// A caller either blocks until all of its requests are done (run), and may be told of each one as
// it finishes (to decode it while the others are still on the way), or submits requests and is told
// as each finishes (submit), so that it can add requests that depend on earlier answers while the
// rest are in flight; a Signer (S3's SigV4) signs each attempt.
// store_http.hpp turns the responses into store results.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/buffer_pool.hpp"
#include "sfm/io/store.hpp"

namespace sfm::io {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpOptions {
  int max_in_flight = 64;            // transfers at once (and connections kept open)
  int max_attempts = 5;              // tries per request, the first included (SFM_HTTP_MAX_ATTEMPTS)
  double backoff_s = 0.2;            // delay before the first retry, doubled for each further one
  double backoff_max_s = 10;         // ... up to this; each delay is jittered down to [d/2, d)
  double connect_timeout_s = 10;     // per attempt (SFM_HTTP_CONNECT_TIMEOUT_S)
  double timeout_s = 120;            // per attempt, connect to last byte (SFM_HTTP_TIMEOUT_S)
  bool follow_redirects = true;
  bool forbidden_as_absent = false;  // 403 reads as an absent key (servers that hide missing keys)

  // The defaults above, overridden by the SFM_HTTP_* environment variables named beside them.
  static HttpOptions from_env() {
    HttpOptions options;
    const auto read = [](const char* name, double& value) {
      const char* text = std::getenv(name);
      if (!text || !*text) return;
      char* end = nullptr;
      const double parsed = std::strtod(text, &end);
      SFM_CHECK(*end == '\0' && parsed > 0 && std::isfinite(parsed), name, "='", text,
                "' is not a positive number");
      value = parsed;
    };
    double attempts = options.max_attempts;
    read("SFM_HTTP_TIMEOUT_S", options.timeout_s);
    read("SFM_HTTP_CONNECT_TIMEOUT_S", options.connect_timeout_s);
    read("SFM_HTTP_MAX_ATTEMPTS", attempts);
    options.max_attempts = std::max(1, static_cast<int>(attempts));
    return options;
  }
};

struct HttpRequest {
  std::string method = "GET";        // GET or PUT
  std::string url;
  HttpHeaders headers;
  std::span<const std::byte> body;   // PUT payload; must stay alive until HttpClient::run returns
};

struct HttpResponse {
  long status = 0;                   // the last attempt's HTTP status; 0 when it got no response
  Bytes body;                        // the body, unless it came in `pooled`
  BufferPool::Buffer pooled;         // a 2xx body of announced length, when the run asked for pooled bodies
  std::string error;                 // why the last attempt got no response (libcurl's words)
  int attempts = 0;

  std::span<const std::byte> bytes() const { return pooled.size() ? pooled.bytes() : std::span<const std::byte>(body); }
};

struct HttpStats {
  uint64_t attempts = 0;             // transfers started, retries included
  uint64_t retries = 0;
  uint64_t bytes_received = 0;
  uint64_t connections = 0;          // connections opened; every other transfer reused one
  int peak_in_flight = 0;
};

class HttpClient {
 public:
  using Signer = std::function<void(HttpRequest&)>;  // adds headers to one attempt's request

  explicit HttpClient(HttpOptions options, Signer signer = {})
      : options_(std::move(options)), signer_(std::move(signer)) {
    SFM_CHECK(options_.max_in_flight >= 1 && options_.max_attempts >= 1 && options_.timeout_s > 0 &&
                  options_.connect_timeout_s > 0 && options_.backoff_s >= 0,
              "HttpOptions: max_in_flight, max_attempts and timeouts must be positive");
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    SFM_CHECK(init == CURLE_OK, "libcurl: curl_global_init failed: ", curl_easy_strerror(init));
    multi_ = curl_multi_init();
    SFM_CHECK(multi_, "libcurl: curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, long(options_.max_in_flight));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long(options_.max_in_flight));
    thread_ = std::thread([this] { loop(); });
  }

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  ~HttpClient() {
    {
      std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    thread_.join();
    for (auto& [easy, transfer] : active_) {
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
    }
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
  }

  // Runs `requests` concurrently (retrying as configured) and returns their final responses in
  // order. Safe to call from many threads at once; all share the connections and the in-flight cap.
  std::vector<HttpResponse> run(std::span<const HttpRequest> requests) {
    std::vector<HttpResponse> responses(requests.size());
    run(requests, responses, {});
    return responses;
  }

  // Starts `requests` beside the transfers in flight and returns at once. `on_done(i)` runs on the
  // event-loop thread once responses[i] is final; it must be quick, must not throw, and is the last
  // use of requests[i] and responses[i], which the caller keeps alive until then. `pooled_bodies` as
  // in run. Safe to call from any thread, on_done included.
  void submit(std::span<const HttpRequest> requests, std::span<HttpResponse> responses,
              std::function<void(size_t)> on_done, bool pooled_bodies = false) {
    SFM_CHECK(responses.size() == requests.size(), "HttpClient::submit: ", responses.size(), " responses for ",
              requests.size(), " requests");
    if (requests.empty()) return;
    const auto completion = std::make_shared<const Completion>(Completion{std::move(on_done), pooled_bodies});
    {
      std::lock_guard lock(queue_mutex_);
      for (size_t i = 0; i < requests.size(); ++i)
        incoming_.push_back(Job{&requests[i], &responses[i], completion, i, 0});
    }
    curl_multi_wakeup(multi_);
  }

  // Same, into `responses` (one per request). `on_done(i)`, when given, runs on the event-loop
  // thread as soon as responses[i] is final, so that the caller can use it while the other
  // transfers go on; it must be quick and must not throw. With `pooled_bodies`, 2xx bodies whose
  // length the server announces arrive in HttpResponse::pooled, buffers reused across transfers
  // (no zeroing, no fresh pages per body), for callers that consume each body and drop it.
  void run(std::span<const HttpRequest> requests, std::span<HttpResponse> responses,
           const std::function<void(size_t)>& on_done, bool pooled_bodies = false) {
    SFM_CHECK(responses.size() == requests.size(), "HttpClient::run: ", responses.size(), " responses for ",
              requests.size(), " requests");
    if (requests.empty()) return;
    struct Countdown {
      std::mutex mutex;
      std::condition_variable done;
      size_t remaining;
    } countdown{{}, {}, requests.size()};
    submit(
        requests, responses,
        [&](size_t i) {
          if (on_done) on_done(i);
          std::lock_guard lock(countdown.mutex);  // notify under the lock: the countdown dies right after
          if (--countdown.remaining == 0) countdown.done.notify_all();
        },
        pooled_bodies);
    std::unique_lock lock(countdown.mutex);
    countdown.done.wait(lock, [&] { return countdown.remaining == 0; });
  }

  const HttpOptions& options() const { return options_; }

  HttpStats stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // What to do when the jobs of one submit finish.
  struct Completion {
    std::function<void(size_t)> on_done;
    bool pooled_bodies;
  };

  struct Job {
    const HttpRequest* request;
    HttpResponse* response;
    std::shared_ptr<const Completion> completion;
    size_t index;  // in its submit
    int attempt;
  };

  // One attempt of one job: the request as signed for it, and what came back so far.
  struct Transfer {
    Job job;
    HttpRequest sent;
    CURL* easy = nullptr;
    curl_slist* header_list = nullptr;
    size_t uploaded = 0;
    bool sized = false;          // the body's storage is chosen (on its first bytes)
    Bytes body;
    BufferPool::Buffer pooled;   // instead of `body`: see HttpClient::run
    size_t received = 0;         // bytes in `pooled`
    char error[CURL_ERROR_SIZE] = {};
    ~Transfer() { curl_slist_free_all(header_list); }
  };

  static size_t on_data(char* data, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    const size_t n = size * count;
    try {
      if (!transfer.sized) {  // size the storage once, from Content-Length
        transfer.sized = true;
        curl_off_t length = -1;
        long status = 0;
        curl_easy_getinfo(transfer.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &status);
        if (length > 0 && transfer.job.completion->pooled_bodies && status >= 200 && status < 300)
          transfer.pooled = BufferPool::shared().get(size_t(length));
        else if (length > 0)
          transfer.body.reserve(size_t(length));
      }
      if (transfer.pooled.size() == 0) {
        transfer.body.insert(transfer.body.end(), bytes, bytes + n);
      } else {
        if (n > transfer.pooled.size() - transfer.received) return 0;  // more than announced: a write error
        std::memcpy(transfer.pooled.bytes().data() + transfer.received, bytes, n);
        transfer.received += n;
      }
    } catch (...) {
      return 0;  // libcurl fails the transfer with CURLE_WRITE_ERROR
    }
    return n;
  }

  static size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    const size_t n = std::min(size * count, transfer.sent.body.size() - transfer.uploaded);
    std::copy_n(transfer.sent.body.data() + transfer.uploaded, n, reinterpret_cast<std::byte*>(buffer));
    transfer.uploaded += n;
    return n;
  }

  static bool retryable(CURLcode code, long status) {
    switch (code) {
      case CURLE_OK:
        return (status >= 500 && status != 501 && status != 505) || status == 429 || status == 408;
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_CONNECT:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_SSL_CONNECT_ERROR:
        return true;
      default:
        return false;
    }
  }

  static void complete(const Job& job) {
    if (job.completion->on_done) job.completion->on_done(job.index);
  }

  // libcurl's receive buffer: chunks are megabytes, and its 16 KiB default costs a read call and a
  // write callback per 16 KiB.
  static constexpr long kReceiveBuffer = 512 * 1024;

  static long milliseconds(double seconds) { return std::max(1L, std::lround(seconds * 1000)); }

  void loop() {
    for (;;) {
      {
        std::lock_guard lock(queue_mutex_);
        if (stopping_) return;
        ready_.insert(ready_.end(), incoming_.begin(), incoming_.end());
        incoming_.clear();
      }
      const auto now = Clock::now();
      while (!delayed_.empty() && delayed_.begin()->first <= now) {
        ready_.push_back(delayed_.begin()->second);
        delayed_.erase(delayed_.begin());
      }
      while (!ready_.empty() && active_.size() < size_t(options_.max_in_flight)) {
        launch(std::move(ready_.front()));
        ready_.pop_front();
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int queued = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_, &queued))
        if (message->msg == CURLMSG_DONE) finish(message->easy_handle, message->data.result);

      long wait_ms = 1000;
      long curl_ms = -1;
      curl_multi_timeout(multi_, &curl_ms);
      if (curl_ms >= 0) wait_ms = std::min(wait_ms, curl_ms);
      if (!ready_.empty() && active_.size() < size_t(options_.max_in_flight)) wait_ms = 0;
      if (!delayed_.empty()) {
        const auto due = std::chrono::ceil<std::chrono::milliseconds>(delayed_.begin()->first - Clock::now());
        wait_ms = std::clamp<long>(due.count(), 0, wait_ms);
      }
      if (wait_ms > 0) curl_multi_poll(multi_, nullptr, 0, int(wait_ms), nullptr);
    }
  }

  void launch(Job job) {
    ++job.attempt;
    auto transfer = std::make_unique<Transfer>();
    transfer->job = job;
    transfer->sent = *job.request;
    CURL* easy = nullptr;
    try {
      if (signer_) signer_(transfer->sent);
      SFM_CHECK(transfer->sent.method == "GET" || transfer->sent.method == "PUT",
                "HttpClient: unsupported method ", transfer->sent.method);
      for (const auto& [name, value] : transfer->sent.headers) append_header(*transfer, name + ": " + value);
      if (transfer->sent.method == "PUT") append_header(*transfer, "Expect:");  // no 100-continue wait
      if (idle_.empty()) {
        easy = curl_easy_init();
        SFM_CHECK(easy, "libcurl: curl_easy_init failed");
      } else {
        easy = idle_.back();
        idle_.pop_back();
      }
    } catch (const std::exception& error) {
      if (easy) idle_.push_back(easy);
      job.response->error = error.what();
      job.response->attempts = job.attempt;
      complete(job);
      return;
    }
    Transfer& t = *transfer;
    t.easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, t.sent.url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.header_list);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &HttpClient::on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBuffer);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "sfm");
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(options_.connect_timeout_s));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, milliseconds(options_.timeout_s));
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, long(options_.follow_redirects));
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
    if (t.sent.method == "PUT") {
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(t.sent.body.size()));
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, &HttpClient::on_upload);
      curl_easy_setopt(easy, CURLOPT_READDATA, &t);
    } else {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }
    active_.emplace(easy, std::move(transfer));
    curl_multi_add_handle(multi_, easy);
    std::lock_guard lock(stats_mutex_);
    ++stats_.attempts;
    stats_.peak_in_flight = std::max(stats_.peak_in_flight, int(active_.size()));
  }

  static void append_header(Transfer& transfer, const std::string& line) {
    curl_slist* list = curl_slist_append(transfer.header_list, line.c_str());
    if (!list) throw std::bad_alloc();
    transfer.header_list = list;
  }

  void finish(CURL* easy, CURLcode code) {
    const std::unique_ptr<Transfer> transfer = std::move(active_.extract(easy).mapped());
    curl_multi_remove_handle(multi_, easy);
    long status = 0;
    long connections = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connections);
    curl_easy_reset(easy);
    idle_.push_back(easy);

    const Job job = transfer->job;
    const bool retry = job.attempt < options_.max_attempts && retryable(code, status);
    {
      std::lock_guard lock(stats_mutex_);
      stats_.bytes_received += transfer->body.size() + transfer->received;
      stats_.connections += uint64_t(connections);
      stats_.retries += retry;
    }
    if (retry) {
      const double delay = std::min(options_.backoff_max_s, options_.backoff_s * std::ldexp(1.0, job.attempt - 1));
      const auto wait = std::chrono::duration<double>(delay * std::uniform_real_distribution(0.5, 1.0)(rng_));
      delayed_.emplace(Clock::now() + std::chrono::duration_cast<Clock::duration>(wait), job);
      return;
    }
    HttpResponse& response = *job.response;
    response.attempts = job.attempt;
    if (code == CURLE_OK) {
      response.status = status;
      const std::span<const std::byte> pooled = transfer->pooled.bytes();
      if (pooled.empty()) response.body = std::move(transfer->body);
      else if (transfer->received == pooled.size()) response.pooled = std::move(transfer->pooled);
      else response.body.assign(pooled.begin(), pooled.begin() + ptrdiff_t(transfer->received));  // shorter than announced
    } else {
      response.error = transfer->error[0] ? transfer->error : curl_easy_strerror(code);
    }
    complete(job);
  }

  HttpOptions options_;
  Signer signer_;
  CURLM* multi_ = nullptr;

  std::mutex queue_mutex_;           // guards incoming_ and stopping_
  std::vector<Job> incoming_;
  bool stopping_ = false;

  // Owned by the loop thread.
  std::deque<Job> ready_;
  std::multimap<Clock::time_point, Job> delayed_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> idle_;
  std::minstd_rand rng_{std::random_device{}()};

  mutable std::mutex stats_mutex_;
  HttpStats stats_;

  std::thread thread_;               // the loop; started once every other member is built
};

}  // namespace sfm::io
