// open_store: the Store for a URL, as the CLI and the Zarr reader take them.
//
//   /data/x.zarr, ./x.zarr, file:///data/x.zarr  → FileStore
//   http://host/x.zarr, https://…                 → HttpStore (HttpOptions::from_env)
//   s3://bucket/prefix                            → S3Store (S3Options::from_env: AWS_* variables)
// Any other scheme is an error naming the schemes understood. The network stores need libcurl
// and OpenSSL's libcrypto; where their headers are absent only local paths open.
#pragma once

#include <memory>
#include <string>

#include "sfm/core/error.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/store_file.hpp"

#if __has_include(<curl/curl.h>) && __has_include(<openssl/evp.h>)
#define SFM_IO_NETWORK_STORES 1
#include "sfm/io/store_http.hpp"
#include "sfm/io/store_s3.hpp"
#endif

namespace sfm::io {

inline std::unique_ptr<Store> open_store(const std::string& url) {
  SFM_CHECK(!url.empty(), "open_store: empty store URL");
  if (url.starts_with("file://")) {
    const std::string path = url.substr(7);
    SFM_CHECK(path.starts_with('/'), "open_store: '", url, "': a file:// URL needs an absolute path (file:///…)");
    return std::make_unique<FileStore>(path);
  }
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::make_unique<FileStore>(url);
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme == "http" || scheme == "https" || scheme == "s3") {
#ifdef SFM_IO_NETWORK_STORES
    if (scheme == "s3") return std::make_unique<S3Store>(url);
    return std::make_unique<HttpStore>(url);
#else
    fail("open_store: '", url, "': sfm was built without libcurl and OpenSSL, so only local paths open");
#endif
  }
  fail("open_store: '", url, "': unsupported scheme '", scheme,
       "' (use a local path, file://, http://, https:// or s3://)");
}

}  // namespace sfm::io
