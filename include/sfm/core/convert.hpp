// Element conversion from any DType to a C++ element type, as the .npy and safetensors readers need.
//
// Source bytes are native-endian elements of the source DType at any alignment (tensor data inside
// a file buffer). Floating targets take every value (rounding where needed, f64 -> bf16 via f32);
// integer targets take only values they hold exactly, else the conversion raises Error naming the
// source (`where`) and the element index. f16 has no C++ type in sfm: it is decoded here.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

#include "sfm/core/bf16.hpp"
#include "sfm/core/dtype.hpp"
#include "sfm/core/error.hpp"

namespace sfm {

// IEEE binary16 bits to float (exact: every f16 value is a float value).
constexpr float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f)  // infinity or NaN (payload kept)
    return detail::bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  return detail::bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

namespace detail {

struct HalfBits {
  uint16_t bits;
};
struct BoolByte {
  uint8_t byte;
};

inline float source_value(HalfBits v) { return half_to_float(v.bits); }
inline float source_value(bf16 v) { return to_float(v); }
inline bool source_value(BoolByte v) { return v.byte != 0; }
template <class S>
  requires std::is_arithmetic_v<S>
S source_value(S v) {
  return v;
}

template <class T, class V>
T convert_value(V value, size_t index, std::string_view where) {
  if constexpr (std::is_same_v<T, bf16>) {
    return to_bf16(static_cast<float>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(value);
  } else if constexpr (std::is_same_v<V, bool>) {
    return static_cast<T>(value);
  } else if constexpr (std::is_integral_v<V>) {
    if (!std::in_range<T>(value)) {
      using Printable = std::conditional_t<std::is_signed_v<V>, int64_t, uint64_t>;
      fail(where, ": element ", index, " = ", static_cast<Printable>(value), " does not fit in ",
           dtype_name(dtype_of<T>));
    }
    return static_cast<T>(value);
  } else {  // floating source, integer target: only exact integers in range
    const double v = static_cast<double>(value);
    const double upper = std::ldexp(1.0, std::numeric_limits<T>::digits);  // exact power of two
    const double lower = std::is_signed_v<T> ? -upper : 0.0;
    if (!(std::isfinite(v) && v == std::trunc(v) && v >= lower && v < upper))
      fail(where, ": element ", index, " = ", v, " is not a value of ", dtype_name(dtype_of<T>));
    return static_cast<T>(v);
  }
}

template <class S, class T>
void convert_from(std::span<const std::byte> bytes, std::span<T> out, std::string_view where) {
  for (size_t i = 0; i < out.size(); ++i) {
    S raw;
    std::memcpy(&raw, bytes.data() + i * sizeof(S), sizeof(S));
    out[i] = convert_value<T>(source_value(raw), i, where);
  }
}

}  // namespace detail

// Converts bytes.size() / dtype_size(source) elements into `out`, which must hold exactly that many.
template <class T>
void convert_elements(DType source, std::span<const std::byte> bytes, std::span<T> out, std::string_view where) {
  static_assert(!std::is_same_v<T, bool>, "convert to uint8_t instead of bool");
  SFM_CHECK(bytes.size() == out.size() * dtype_size(source), where, ": ", bytes.size(), " bytes of ",
            dtype_name(source), " cannot fill ", out.size(), " elements");
  if (source == dtype_of<T>) {
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return;
  }
  using namespace detail;
  switch (source) {
    case DType::f64: return convert_from<double>(bytes, out, where);
    case DType::f32: return convert_from<float>(bytes, out, where);
    case DType::f16: return convert_from<HalfBits>(bytes, out, where);
    case DType::bf16: return convert_from<bf16>(bytes, out, where);
    case DType::i64: return convert_from<int64_t>(bytes, out, where);
    case DType::i32: return convert_from<int32_t>(bytes, out, where);
    case DType::i16: return convert_from<int16_t>(bytes, out, where);
    case DType::i8: return convert_from<int8_t>(bytes, out, where);
    case DType::u64: return convert_from<uint64_t>(bytes, out, where);
    case DType::u32: return convert_from<uint32_t>(bytes, out, where);
    case DType::u16: return convert_from<uint16_t>(bytes, out, where);
    case DType::u8: return convert_from<uint8_t>(bytes, out, where);
    case DType::boolean: return convert_from<BoolByte>(bytes, out, where);
  }
  fail(where, ": invalid DType value ", static_cast<int>(source));
}

}  // namespace sfm
