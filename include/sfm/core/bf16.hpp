// bfloat16: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits).
//
// The CUDA backend keeps activations and weights in bf16; the CPU side needs the same conversion
// to prepare and check its inputs, so the functions work on host and device (SFM_HOST_DEVICE) and
// are constexpr. float -> bf16 rounds to nearest, ties to even (overflow goes to infinity, as IEEE
// rounding does); NaN stays NaN (quiet, sign kept). bf16 -> float is exact.
#pragma once

#include <cstdint>
#include <type_traits>

#include "sfm/core/platform.hpp"

namespace sfm {

struct bf16 {
  uint16_t bits;

  SFM_HOST_DEVICE constexpr explicit operator float() const;
};

namespace detail {

// The bit pattern of a float. __builtin_bit_cast is what std::bit_cast is built on in GCC, Clang
// and MSVC, and nvcc accepts it in device code, where std::bit_cast (a host function) is not usable.
SFM_HOST_DEVICE constexpr uint32_t float_to_bits(float value) {
  return __builtin_bit_cast(uint32_t, value);
}

SFM_HOST_DEVICE constexpr float bits_to_float(uint32_t bits) { return __builtin_bit_cast(float, bits); }

}  // namespace detail

SFM_HOST_DEVICE constexpr bf16 to_bf16(float value) {
  const uint32_t bits = detail::float_to_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u)  // NaN: truncating could leave only zero mantissa bits
    return bf16{static_cast<uint16_t>((bits >> 16) | 0x0040u)};
  // Adding 0x7fff rounds halves down and everything above up; the kept LSB breaks ties to even.
  // A carry out of the mantissa bumps the exponent, which is the correct rounding (up to infinity).
  const uint32_t lsb = (bits >> 16) & 1u;
  return bf16{static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16)};
}

SFM_HOST_DEVICE constexpr float to_float(bf16 value) {
  return detail::bits_to_float(static_cast<uint32_t>(value.bits) << 16);
}

SFM_HOST_DEVICE constexpr bf16::operator float() const { return to_float(*this); }

// x as an element of type T (float, bf16: rounded to nearest even, double), for code generic over
// the element type.
template <class T>
SFM_HOST_DEVICE constexpr T element_from_float(float x) {
  if constexpr (std::is_same_v<T, bf16>)
    return to_bf16(x);
  else
    return T(x);
}

}  // namespace sfm
