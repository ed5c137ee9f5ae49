// Zarr data types: the numeric element types sfm reads and writes (bool, int/uint 8-64,
// float 16/32/64, either byte order), parsed from Zarr v2 ("<f4", "|b1") and v3 ("float32") names,
// plus fill values and conversion of native-endian element bytes to float32.
//
// Kept separate from core/dtype.hpp on purpose: a Zarr dtype carries a byte order and a spelling
// per format version; strings, objects, structured and complex types are refused here with an
// "unsupported" error naming the type, so that nothing downstream has to know about them.
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>
#include <nlohmann/json.hpp>

#include "sfm/core/error.hpp"

namespace sfm::io::zarr {

using json = nlohmann::json;

enum class Kind : uint8_t { Bool, Int, UInt, Float };

struct DataType {
  Kind kind = Kind::Float;
  int size = 4;             // bytes per element: 1, 2, 4, 8
  bool big_endian = false;  // byte order on disk (v2 dtype prefix; v3 is decided by the bytes codec)

  bool operator==(const DataType&) const = default;

  // Zarr v3 name: "bool", "int16", "float32", ...
  std::string v3_name() const {
    switch (kind) {
      case Kind::Bool: return "bool";
      case Kind::Int: return "int" + std::to_string(size * 8);
      case Kind::UInt: return "uint" + std::to_string(size * 8);
      case Kind::Float: return "float" + std::to_string(size * 8);
    }
    return "?";
  }
  // Zarr v2 (numpy) name: "|b1", "<i2", ">f8", ...
  std::string v2_name() const {
    const char order = size == 1 ? '|' : (big_endian ? '>' : '<');
    const char code = kind == Kind::Bool ? 'b' : kind == Kind::Int ? 'i' : kind == Kind::UInt ? 'u' : 'f';
    return std::string(1, order) + code + std::to_string(size);
  }
};

// The DataType for a C++ arithmetic type (little-endian on disk).
template <class T>
constexpr DataType data_type_of() {
  if constexpr (std::is_same_v<T, bool>) return {Kind::Bool, 1, false};
  else if constexpr (std::is_floating_point_v<T>) return {Kind::Float, int(sizeof(T)), false};
  else if constexpr (std::is_signed_v<T>) return {Kind::Int, int(sizeof(T)), false};
  else return {Kind::UInt, int(sizeof(T)), false};
}

// Parses a Zarr v2 dtype: a string "<i2"; lists (structured dtypes) are refused.
inline DataType parse_v2_dtype(const json& value) {
  if (!value.is_string()) fail("unsupported: Zarr v2 structured dtype ", value.dump());
  const std::string s = value.get<std::string>();
  const auto refuse = [&] { fail("unsupported: Zarr v2 dtype '", s, "' (only bool, int, uint and float are read)"); };
  if (s.size() < 3) refuse();
  const char order = s[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') refuse();
  DataType t;
  switch (s[1]) {
    case 'b': t.kind = Kind::Bool; break;
    case 'i': t.kind = Kind::Int; break;
    case 'u': t.kind = Kind::UInt; break;
    case 'f': t.kind = Kind::Float; break;
    default: refuse();
  }
  const std::string digits = s.substr(2);
  if (digits != "1" && digits != "2" && digits != "4" && digits != "8") refuse();
  t.size = std::stoi(digits);
  if (t.kind == Kind::Bool && t.size != 1) refuse();
  if (t.kind == Kind::Float && t.size == 1) refuse();
  t.big_endian = order == '>' && t.size > 1;
  return t;
}

// Parses a Zarr v3 data_type: a name or an object {"name": ...}; non-numeric types are refused.
inline DataType parse_v3_dtype(const json& value) {
  std::string name;
  if (value.is_string()) name = value.get<std::string>();
  else if (value.is_object() && value.contains("name") && value["name"].is_string()) name = value["name"].get<std::string>();
  else fail("unsupported: Zarr v3 data_type ", value.dump());
  static const std::pair<const char*, DataType> known[] = {
      {"bool", {Kind::Bool, 1, false}},   {"int8", {Kind::Int, 1, false}},    {"int16", {Kind::Int, 2, false}},
      {"int32", {Kind::Int, 4, false}},   {"int64", {Kind::Int, 8, false}},   {"uint8", {Kind::UInt, 1, false}},
      {"uint16", {Kind::UInt, 2, false}}, {"uint32", {Kind::UInt, 4, false}}, {"uint64", {Kind::UInt, 8, false}},
      {"float16", {Kind::Float, 2, false}}, {"float32", {Kind::Float, 4, false}}, {"float64", {Kind::Float, 8, false}}};
  for (const auto& [n, t] : known)
    if (name == n) return t;
  fail("unsupported: Zarr v3 data_type '", name, "' (only bool, int, uint and float are read)");
}

// IEEE half → float (exact).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal: normalise
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return std::bit_cast<float>(bits);
}

// float → IEEE half, round to nearest even (for the writer).
inline uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow → inf
  if (absx < 0x38800000u) {                                    // subnormal or zero in half
    const float magnitude = std::bit_cast<float>(absx);
    const float scaled = magnitude * 16777216.0f;  // 2^24: half subnormal unit
    return uint16_t(sign | uint16_t(std::nearbyint(scaled)));
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = exp << 10 | mant >> 13;
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

// Native-endian elements of `type` → float32 or float64 (float32: rounded to nearest, like
// numpy's astype).
template <class Out>
  requires std::same_as<Out, float> || std::same_as<Out, double>
void convert_elements(const DataType& type, const std::byte* src, Out* dst, size_t n) {
  const auto load = [&]<class T>(T) {
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, src + i * sizeof(T), sizeof(T));
      dst[i] = static_cast<Out>(v);
    }
  };
  switch (type.kind) {
    case Kind::Bool:
      for (size_t i = 0; i < n; ++i) dst[i] = src[i] != std::byte{0} ? Out(1) : Out(0);
      return;
    case Kind::Int:
      if (type.size == 1) return load(int8_t{});
      if (type.size == 2) return load(int16_t{});
      if (type.size == 4) return load(int32_t{});
      return load(int64_t{});
    case Kind::UInt:
      if (type.size == 1) return load(uint8_t{});
      if (type.size == 2) return load(uint16_t{});
      if (type.size == 4) return load(uint32_t{});
      return load(uint64_t{});
    case Kind::Float:
      if (type.size == 2) {
        for (size_t i = 0; i < n; ++i) {
          uint16_t h;
          std::memcpy(&h, src + i * 2, 2);
          dst[i] = Out(half_to_float(h));
        }
        return;
      }
      if (type.size == sizeof(Out)) {
        std::memcpy(dst, src, n * sizeof(Out));
        return;
      }
      return type.size == 4 ? load(float{}) : load(double{});
  }
}

inline void convert_to_float(const DataType& type, const std::byte* src, float* dst, size_t n) {
  convert_elements(type, src, dst, n);
}

// Reverses the bytes of each `size`-byte element in place (big ↔ little endian).
inline void byteswap_elements(std::span<std::byte> data, int size) {
  if (size <= 1) return;
  for (size_t i = 0; i + size_t(size) <= data.size(); i += size_t(size))
    for (int a = 0, b = size - 1; a < b; ++a, --b) std::swap(data[i + a], data[i + b]);
}

// A fill value, kept exactly for integers and as double for floats.
struct FillValue {
  Kind kind = Kind::Float;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool is_null = false;  // v2 `null`: read as zeros

  double as_double() const {
    switch (kind) {
      case Kind::Int: return double(i);
      case Kind::UInt: return double(u);
      case Kind::Bool: return u ? 1.0 : 0.0;
      default: return f;
    }
  }
  // One element of `type`, native byte order.
  std::vector<std::byte> element_bytes(const DataType& type) const {
    std::vector<std::byte> out(size_t(type.size));
    const auto put = [&]<class T>(T v) { std::memcpy(out.data(), &v, sizeof(T)); };
    const double d = as_double();
    const int64_t iv = kind == Kind::Int ? i : kind == Kind::UInt ? int64_t(u) : kind == Kind::Bool ? int64_t(u) : int64_t(0);
    const uint64_t uv = kind == Kind::UInt || kind == Kind::Bool ? u : uint64_t(iv);
    switch (type.kind) {
      case Kind::Bool: put(uint8_t(d != 0 ? 1 : 0)); break;
      case Kind::Int:
        if (type.size == 1) put(int8_t(iv)); else if (type.size == 2) put(int16_t(iv));
        else if (type.size == 4) put(int32_t(iv)); else put(int64_t(iv));
        break;
      case Kind::UInt:
        if (type.size == 1) put(uint8_t(uv)); else if (type.size == 2) put(uint16_t(uv));
        else if (type.size == 4) put(uint32_t(uv)); else put(uint64_t(uv));
        break;
      case Kind::Float:
        if (type.size == 2) put(float_to_half(float(d))); else if (type.size == 4) put(float(d)); else put(d);
        break;
    }
    return out;
  }
  // JSON spelling for metadata (same in v2 and v3 for numbers and the special float strings).
  json to_json(const DataType& type, int zarr_format) const {
    if (is_null) return nullptr;
    if (type.kind == Kind::Bool) return as_double() != 0;
    if (type.kind == Kind::Int) return kind == Kind::Float ? json(int64_t(f)) : json(int64_t(kind == Kind::UInt ? int64_t(u) : i));
    if (type.kind == Kind::UInt) return kind == Kind::Float ? json(uint64_t(f)) : json(kind == Kind::Int ? uint64_t(i) : u);
    const double d = as_double();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    (void)zarr_format;
    return d;
  }
};

// Parses a fill value for `type` from v2 (.zarray) or v3 (zarr.json) metadata.
inline FillValue parse_fill_value(const json& value, const DataType& type, int zarr_format) {
  FillValue fv;
  fv.kind = type.kind;
  if (value.is_null()) {
    SFM_CHECK(zarr_format == 2, "Zarr v3 fill_value must not be null");
    fv.is_null = true;
    return fv;
  }
  if (value.is_boolean()) {
    fv.kind = Kind::Bool;
    fv.u = value.get<bool>() ? 1 : 0;
    return fv;
  }
  if (value.is_number_unsigned()) {
    fv.kind = Kind::UInt;
    fv.u = value.get<uint64_t>();
    return fv;
  }
  if (value.is_number_integer()) {
    fv.kind = Kind::Int;
    fv.i = value.get<int64_t>();
    return fv;
  }
  if (value.is_number_float()) {
    fv.kind = Kind::Float;
    fv.f = value.get<double>();
    // An integer dtype's fill must be a value of it (numpy would not cast NaN or 1e300 either).
    const bool fits = type.kind == Kind::Int    ? fv.f >= -0x1p63 && fv.f < 0x1p63
                      : type.kind == Kind::UInt ? fv.f > -1 && fv.f < 0x1p64
                                                : true;
    SFM_CHECK(fits, "unsupported: fill_value ", value.dump(), " for dtype ", type.v3_name());
    return fv;
  }
  if (value.is_string() && type.kind == Kind::Float) {  // "NaN" and the like fill float arrays only
    const std::string s = value.get<std::string>();
    fv.kind = Kind::Float;
    if (s == "NaN") { fv.f = std::numeric_limits<double>::quiet_NaN(); return fv; }
    if (s == "Infinity") { fv.f = std::numeric_limits<double>::infinity(); return fv; }
    if (s == "-Infinity") { fv.f = -std::numeric_limits<double>::infinity(); return fv; }
    if (zarr_format == 3 && s.size() > 2 && s.size() <= 18 && s[0] == '0' && s[1] == 'x' &&
        s.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos) {
      const uint64_t bits = std::strtoull(s.c_str() + 2, nullptr, 16);  // raw IEEE bit pattern
      if (type.size == 2) fv.f = half_to_float(uint16_t(bits));
      else if (type.size == 4) fv.f = std::bit_cast<float>(uint32_t(bits));
      else fv.f = std::bit_cast<double>(bits);
      return fv;
    }
  }
  fail("unsupported: fill_value ", value.dump(), " for dtype ", type.v3_name());
}

}  // namespace sfm::io::zarr
