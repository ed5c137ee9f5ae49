// S3Store: a Store over an S3 bucket prefix ("s3://bucket/prefix"), on AWS or any S3-compatible
// server.
//
// Requests are path-style (<endpoint>/<bucket>/<prefix>/<key>, each key segment URI-encoded), so
// every bucket name and every S3-compatible server works; the endpoint defaults to
// https://s3.<region>.amazonaws.com. Without credentials requests are anonymous; with them each
// attempt is signed afresh with SigV4 (sigv4.hpp), so a retry carries a current date. Reads go
// through the shared HttpClient and the rules of store_http.hpp (404 → absent; 403, such as
// SignatureDoesNotMatch, → an error quoting S3's code and message). set() uploads with a PUT
// whose payload SHA-256 is signed.
//
// S3Options::from_env reads the usual AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_REGION or AWS_DEFAULT_REGION (default us-east-1), AWS_ENDPOINT_URL_S3
// or AWS_ENDPOINT_URL, and AWS_NO_SIGN_REQUEST (true/yes/1: anonymous even with credentials).
#pragma once

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "sfm/core/error.hpp"
#include "sfm/io/http_client.hpp"
#include "sfm/io/sigv4.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/store_http.hpp"
#include "sfm/io/store_key.hpp"

namespace sfm::io {

struct S3Options {
  std::string region = "us-east-1";
  std::string endpoint;                           // "" → https://s3.<region>.amazonaws.com
  std::optional<sigv4::Credentials> credentials;  // none → anonymous requests
  HttpOptions http = HttpOptions::from_env();

  static S3Options from_env() {
    const auto env = [](const char* name) {
      const char* value = std::getenv(name);
      return std::string(value ? value : "");
    };
    S3Options options;
    for (const char* name : {"AWS_DEFAULT_REGION", "AWS_REGION"})
      if (!env(name).empty()) options.region = env(name);
    for (const char* name : {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"})
      if (!env(name).empty()) options.endpoint = env(name);
    std::string no_sign = env("AWS_NO_SIGN_REQUEST");
    for (char& c : no_sign) c = char(std::tolower(static_cast<unsigned char>(c)));
    const bool anonymous = no_sign == "true" || no_sign == "yes" || no_sign == "1";
    if (!anonymous && !env("AWS_ACCESS_KEY_ID").empty()) {
      SFM_CHECK(!env("AWS_SECRET_ACCESS_KEY").empty(), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
      options.credentials = sigv4::Credentials{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                                               env("AWS_SESSION_TOKEN")};
    }
    return options;
  }
};

class S3Store final : public HttpReadStore {
 public:
  explicit S3Store(const std::string& url, S3Options options = S3Options::from_env())
      : HttpReadStore(client_options(options), signer(options)), options_(std::move(options)) {
    SFM_CHECK(url.starts_with("s3://"), "S3Store: '", url, "' is not an s3:// URL");
    std::string path = url.substr(5);
    while (path.ends_with('/')) path.pop_back();
    const size_t slash = path.find('/');
    bucket_ = path.substr(0, slash);
    prefix_ = slash == std::string::npos ? "" : path.substr(slash + 1);
    SFM_CHECK(!bucket_.empty(), "S3Store: '", url, "' names no bucket");
    if (!prefix_.empty()) check_key("S3Store '" + url + "'", prefix_);

    endpoint_ = options_.endpoint.empty() ? "https://s3." + options_.region + ".amazonaws.com" : options_.endpoint;
    while (endpoint_.ends_with('/')) endpoint_.pop_back();
    SFM_CHECK(endpoint_.starts_with("http://") || endpoint_.starts_with("https://"), "S3Store: endpoint '",
              endpoint_, "' is not an http:// or https:// URL");
    const size_t host_begin = endpoint_.find("://") + 3;
    host_ = endpoint_.substr(host_begin, endpoint_.find('/', host_begin) - host_begin);
  }

  void set(const std::string& key, std::span<const std::byte> value) override {
    check_key(describe(), key);
    HttpRequest http = s3_request("PUT", key, options_.credentials ? sigv4::sha256_hex(value) : "");
    http.body = value;
    const std::vector<HttpResponse> responses = client_.run({&http, 1});
    SFM_CHECK(responses.front().status == 200, describe(), ": cannot write key '", key, "': ",
              http_failure(http, responses.front()));
  }

  std::string describe() const override { return "s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_); }

  // The object URL of `key`: <endpoint>/<bucket>/<prefix>/<key>, URI-encoded.
  std::string url_of(const std::string& key) const {
    return endpoint_ + "/" + uri_encode(bucket_, false) + "/" +
           uri_encode(prefix_.empty() ? key : prefix_ + "/" + key, true);
  }

 private:
  HttpRequest get_request(const StoreRequest& request) const override {
    HttpRequest http = s3_request("GET", request.key, sigv4::kEmptyPayloadHash);
    if (request.range) http.headers.emplace_back("Range", http_range(*request.range));
    return http;
  }

  HttpRequest s3_request(const char* method, const std::string& key, std::string_view payload_hash) const {
    HttpRequest http;
    http.method = method;
    http.url = url_of(key);
    if (options_.credentials) {
      http.headers.emplace_back("Host", host_);  // sent as signed, whatever curl would have written
      http.headers.emplace_back("x-amz-content-sha256", std::string(payload_hash));
    }
    return http;
  }

  static HttpOptions client_options(const S3Options& options) {
    HttpOptions http = options.http;
    http.follow_redirects = false;  // S3 redirects name another region; a re-signed request is needed
    return http;
  }

  // Signs each attempt: adds x-amz-date (and the session token), then the Authorization header
  // over every header of the request.
  static HttpClient::Signer signer(const S3Options& options) {
    if (!options.credentials) return {};
    return [credentials = *options.credentials, region = options.region](HttpRequest& http) {
      const std::string date = sigv4::amz_date(std::chrono::system_clock::now());
      http.headers.emplace_back("x-amz-date", date);
      if (!credentials.session_token.empty()) http.headers.emplace_back("x-amz-security-token", credentials.session_token);
      sigv4::Request request{http.method, "", {}, http.headers, ""};
      const size_t path_begin = http.url.find('/', http.url.find("://") + 3);
      request.path = http.url.substr(path_begin);
      for (const auto& [name, value] : http.headers)
        if (name == "x-amz-content-sha256") request.payload_hash = value;
      http.headers.emplace_back("Authorization", sigv4::authorization(request, credentials, date, region, "s3"));
    };
  }

  S3Options options_;
  std::string bucket_;
  std::string prefix_;
  std::string endpoint_;  // scheme://host[:port][/path], no trailing '/'
  std::string host_;      // host[:port], the Host header
};

}  // namespace sfm::io
