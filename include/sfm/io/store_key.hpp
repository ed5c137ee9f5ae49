// Key and byte-range rules shared by every store.
//
// A key is a relative '/'-separated path whose segments are never empty, "." or "..", and hold
// no backslash or NUL: such a key cannot reach outside its store's root, whether that root is a
// directory, a URL prefix or a bucket prefix. Byte ranges follow HTTP semantics (a range running
// past the end is cut at the end; one starting past the end is an error), so that every store
// answers a range the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "sfm/core/error.hpp"
#include "sfm/io/store.hpp"

namespace sfm::io {

// Throws sfm::Error naming `store` unless `key` is a valid store key (see above).
inline void check_key(const std::string& store, std::string_view key) {
  const auto refuse = [&](const char* why) {
    fail(store, ": refused key '", key, "': ", why);
  };
  if (key.empty()) refuse("empty key");
  if (key.front() == '/') refuse("absolute keys are not allowed");
  if (key.find('\\') != std::string_view::npos) refuse("backslashes are not allowed");
  if (key.find('\0') != std::string_view::npos) refuse("NUL bytes are not allowed");
  size_t begin = 0;
  while (begin <= key.size()) {
    size_t end = key.find('/', begin);
    if (end == std::string_view::npos) end = key.size();
    const std::string_view segment = key.substr(begin, end - begin);
    if (segment.empty()) refuse("empty path segment");
    if (segment == "." || segment == "..") refuse("'.' and '..' segments are not allowed");
    begin = end + 1;
  }
}

// Throws unless `range` is well formed: offset >= 0 with length > 0 or -1 (to the end), or a
// suffix (offset < 0, length -1).
inline void check_range(const std::string& store, const std::string& key, const ByteRange& range) {
  const bool plain = range.offset >= 0 && (range.length > 0 || range.length == -1);
  const bool suffix = range.offset < 0 && range.length == -1;
  SFM_CHECK(plain || suffix, store, ": key '", key, "': invalid byte range (offset ", range.offset,
            ", length ", range.length, ")");
}

// [begin, end) of `range` within a value of `size` bytes.
inline std::pair<int64_t, int64_t> resolve_range(const std::string& store, const std::string& key,
                                                 const ByteRange& range, int64_t size) {
  check_range(store, key, range);
  if (range.offset < 0) return {range.offset < -size ? 0 : size + range.offset, size};
  SFM_CHECK(range.offset < size, store, ": key '", key, "': byte range starts at ", range.offset,
            ", past the end of its ", size, "-byte value");
  const int64_t end = range.length == -1 || range.length > size - range.offset
                          ? size
                          : range.offset + range.length;
  return {range.offset, end};
}

// Percent-encodes `text` per RFC 3986 (and AWS SigV4): unreserved characters A-Z a-z 0-9 - _ . ~
// are kept, as is '/' when `keep_slash`; every other byte becomes %XY (upper-case hex).
inline std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '_' ||
                            byte == '.' || byte == '~';
    if (unreserved || (keep_slash && byte == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

}  // namespace sfm::io
