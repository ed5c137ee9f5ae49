// Typed values from user JSON (configs, checkpoint metadata) in sfm's own words: a wrong type is an
// sfm::Error "WHAT: expected an integer, got "wide"", never nlohmann's exception text.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "sfm/core/error.hpp"

namespace sfm {

// `v` as a T (std::array<int64_t, 3>, bool, an integer, a floating-point type or std::string).
template <class T>
T json_value(const nlohmann::json& v, const std::string& what) {
  bool ok;
  const char* expected;
  if constexpr (std::is_same_v<T, std::array<int64_t, 3>>) {
    ok = v.is_array() && v.size() == 3 && v[0].is_number_integer() && v[1].is_number_integer() && v[2].is_number_integer();
    expected = "a list of 3 integers";
  } else if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean(), expected = "true or false";
  } else if constexpr (std::is_integral_v<T>) {
    ok = v.is_number_integer() && (std::is_signed_v<T> || v.is_number_unsigned());
    expected = std::is_signed_v<T> ? "an integer" : "a non-negative integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = v.is_number(), expected = "a number";
  } else {
    static_assert(std::is_same_v<T, std::string>);
    ok = v.is_string(), expected = "a string";
  }
  SFM_CHECK(ok, what, ": expected ", expected, ", got ", v.dump());
  return v.get<T>();
}

// Field `key` of `object` as a T (the types of json_value): `fallback` when `object` is not an
// object or has no such key; a value of another type is an sfm::Error "WHAT: 'key': expected a
// string, got 5". For documents read from stores, where nlohmann's value() would throw its own text.
template <class T>
T json_field(const nlohmann::json& object, const char* key, const T& fallback, const std::string& what) {
  if (!object.is_object() || !object.contains(key)) return fallback;
  return json_value<T>(object[key], what + ": '" + key + "'");
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag: for a parse error, the
// line, column and token where it failed.
inline std::string json_error_text(const nlohmann::json::exception& e) {
  const std::string text = e.what();
  const size_t end = text.find("] ");
  return text.starts_with("[json.exception.") && end != std::string::npos ? text.substr(end + 2) : text;
}

}  // namespace sfm
