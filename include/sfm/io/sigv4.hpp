// AWS Signature Version 4 (header form), as S3 and S3-compatible servers check it.
//
// canonical_request → string_to_sign → HMAC chain keyed by "AWS4"+secret over date, region,
// service and "aws4_request" → the Authorization header. Every header of the request is signed.
// The path is taken as given: S3 wants each key segment URI-encoded once ('/' kept, see
// uri_encode) and no dot-segment normalization. SHA-256 and HMAC come from OpenSSL's libcrypto.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/store_key.hpp"

namespace sfm::io::sigv4 {

using Headers = std::vector<std::pair<std::string, std::string>>;
using Digest = std::array<unsigned char, 32>;

// SHA-256 of the empty payload (a GET's body).
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only; sent as x-amz-security-token
};

struct Request {
  std::string method;
  std::string path;           // the URI-encoded path, e.g. "/bucket/a%20b/c"
  Headers query;              // decoded name/value pairs; encoded and sorted when signing
  Headers headers;            // all signed; must hold host and x-amz-date
  std::string payload_hash;   // hex SHA-256 of the body (or "UNSIGNED-PAYLOAD")
};

inline std::string hex(std::span<const unsigned char> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

inline std::string sha256_hex(std::span<const std::byte> data) {
  Digest digest{};
  unsigned int size = 0;
  SFM_CHECK(EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) == 1,
            "OpenSSL: SHA-256 failed");
  return hex(digest);
}

inline std::string sha256_hex(std::string_view text) {
  return sha256_hex(std::as_bytes(std::span(text.data(), text.size())));
}

inline Digest hmac_sha256(std::span<const unsigned char> key, std::string_view data) {
  Digest digest{};
  unsigned int size = 0;
  SFM_CHECK(HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
                 data.size(), digest.data(), &size) != nullptr,
            "OpenSSL: HMAC-SHA256 failed");
  return digest;
}

// "20150830T123600Z" for `time` (UTC).
inline std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[17];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

// Lower-case names, sorted; values trimmed, inner runs of spaces collapsed; repeated names joined
// with ','. Returns (name, value) pairs in canonical order.
inline Headers canonical_headers(const Headers& headers) {
  Headers out;
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    std::string trimmed;
    for (const char c : value) {
      const char shown = c == '\t' || c == '\n' || c == '\r' ? ' ' : c;
      if (shown != ' ' || (!trimmed.empty() && trimmed.back() != ' ')) trimmed += shown;
    }
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
    out.emplace_back(std::move(lower), std::move(trimmed));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Headers merged;
  for (auto& header : out) {
    if (!merged.empty() && merged.back().first == header.first)
      merged.back().second += "," + header.second;
    else
      merged.push_back(std::move(header));
  }
  return merged;
}

inline std::string signed_headers(const Headers& canonical) {
  std::string out;
  for (const auto& [name, value] : canonical) out += (out.empty() ? "" : ";") + name;
  return out;
}

inline std::string canonical_request(const Request& request) {
  Headers query;
  for (const auto& [name, value] : request.query) query.emplace_back(uri_encode(name, false), uri_encode(value, false));
  std::sort(query.begin(), query.end());
  std::string out = request.method + "\n" + (request.path.empty() ? "/" : request.path) + "\n";
  for (size_t i = 0; i < query.size(); ++i) out += (i ? "&" : "") + query[i].first + "=" + query[i].second;
  out += "\n";
  const Headers headers = canonical_headers(request.headers);
  for (const auto& [name, value] : headers) out += name + ":" + value + "\n";
  out += "\n" + signed_headers(headers) + "\n" + request.payload_hash;
  return out;
}

// "20150830/us-east-1/service/aws4_request" for an x-amz-date of 20150830T…
inline std::string scope(std::string_view date_time, std::string_view region, std::string_view service) {
  return std::string(date_time.substr(0, 8)) + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
}

inline std::string string_to_sign(const Request& request, std::string_view date_time, std::string_view region,
                                  std::string_view service) {
  return "AWS4-HMAC-SHA256\n" + std::string(date_time) + "\n" + scope(date_time, region, service) + "\n" +
         sha256_hex(canonical_request(request));
}

inline std::string signature(const Request& request, const Credentials& credentials, std::string_view date_time,
                             std::string_view region, std::string_view service) {
  const std::string secret = "AWS4" + credentials.secret_access_key;
  Digest key = hmac_sha256({reinterpret_cast<const unsigned char*>(secret.data()), secret.size()},
                           date_time.substr(0, 8));
  for (const std::string_view part : {region, service, std::string_view("aws4_request")}) key = hmac_sha256(key, part);
  return hex(hmac_sha256(key, string_to_sign(request, date_time, region, service)));
}

// The Authorization header value for `request`, whose x-amz-date header is `date_time`.
inline std::string authorization(const Request& request, const Credentials& credentials, std::string_view date_time,
                                 std::string_view region, std::string_view service) {
  SFM_CHECK(date_time.size() == 16, "SigV4: bad x-amz-date '", date_time, "'");
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope(date_time, region, service) +
         ", SignedHeaders=" + signed_headers(canonical_headers(request.headers)) +
         ", Signature=" + signature(request, credentials, date_time, region, service);
}

}  // namespace sfm::io::sigv4
