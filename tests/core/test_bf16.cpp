// Tests of sfm/core/bf16.hpp: float -> bf16 rounding against an independent, value-based reference.
#include "sfm/core/bf16.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sfm_test.hpp"

namespace {

float float_of(uint32_t bits) { return std::bit_cast<float>(bits); }

// Reference rounding, by value: of the two bf16 neighbours of x (truncation, and one step further
// from zero, where the step past the largest finite value counts as 2^128 as IEEE 754 specifies),
// take the nearer; on a tie the one with an even last bit. NaN maps to some NaN of the same sign.
uint16_t reference_bf16(uint32_t bits) {
  const float x = float_of(bits);
  if (std::isnan(x)) return static_cast<uint16_t>((bits >> 16) | 0x7fc0);
  const auto toward_zero = static_cast<uint16_t>(bits >> 16);
  const auto away = static_cast<uint16_t>(toward_zero + 1);
  if (std::isinf(x) || static_cast<uint32_t>(toward_zero) << 16 == bits) return toward_zero;
  const double magnitude = std::fabs(double(x));
  const double low = std::fabs(double(float_of(uint32_t{toward_zero} << 16)));
  const double high = (away & 0x7fff) == 0x7f80 ? std::ldexp(1.0, 128) : std::fabs(double(float_of(uint32_t{away} << 16)));
  const double below = magnitude - low, above = high - magnitude;
  if (below < above) return toward_zero;
  if (above < below) return away;
  return (toward_zero & 1) ? away : toward_zero;
}

bool matches_reference(uint32_t bits) {
  const uint16_t got = sfm::to_bf16(float_of(bits)).bits;
  const uint16_t want = reference_bf16(bits);
  if (std::isnan(float_of(bits)))
    return (got & 0x7f80) == 0x7f80 && (got & 0x007f) != 0 && (got & 0x8000) == (want & 0x8000);
  return got == want;
}

// Checks every float in `all_bits`, reporting the number of mismatches and the first one.
template <class Range>
void check_against_reference(const Range& all_bits) {
  uint64_t mismatches = 0, checked = 0;
  uint32_t first_mismatch = 0;
  for (uint32_t bits : all_bits) {
    ++checked;
    if (!matches_reference(bits) && mismatches++ == 0) first_mismatch = bits;
  }
  INFO(mismatches << " of " << checked << " differ; first: float bits 0x" << std::hex << first_mismatch << " -> 0x"
                  << sfm::to_bf16(float_of(first_mismatch)).bits << ", reference 0x" << reference_bf16(first_mismatch));
  CHECK(checked > 0);
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("bf16 rounding of hand-picked values", "[bf16]") {
  using sfm::to_bf16;
  CHECK(to_bf16(1.0f).bits == 0x3f80);
  CHECK(to_bf16(-2.0f).bits == 0xc000);
  CHECK(to_bf16(0.0f).bits == 0x0000);
  CHECK(to_bf16(-0.0f).bits == 0x8000);
  // Ties go to the even neighbour; anything past the halfway point goes up.
  CHECK(to_bf16(float_of(0x3f808000)).bits == 0x3f80);
  CHECK(to_bf16(float_of(0x3f818000)).bits == 0x3f82);
  CHECK(to_bf16(float_of(0x3f808001)).bits == 0x3f81);
  CHECK(to_bf16(float_of(0x3f807fff)).bits == 0x3f80);
  CHECK(to_bf16(float_of(0xbf818000)).bits == 0xbf82);
  // A carry out of the mantissa bumps the exponent.
  CHECK(to_bf16(float_of(0x3fffffff)).bits == 0x4000);
  // Overflow: the largest floats round to infinity, the largest bf16 stays finite.
  CHECK(to_bf16(float_of(0x7f7fffff)).bits == 0x7f80);
  CHECK(to_bf16(float_of(0x7f7f8000)).bits == 0x7f80);  // tie with an odd neighbour: up, to inf
  CHECK(to_bf16(float_of(0x7f7f7fff)).bits == 0x7f7f);
  CHECK(to_bf16(float_of(0xff7fffff)).bits == 0xff80);
  CHECK(to_bf16(INFINITY).bits == 0x7f80);
  CHECK(to_bf16(-INFINITY).bits == 0xff80);
  // NaN stays NaN, including signalling NaNs whose payload lies only in the dropped bits.
  CHECK(to_bf16(float_of(0x7fc00000)).bits == 0x7fc0);
  CHECK(to_bf16(float_of(0x7f800001)).bits == 0x7fc0);
  CHECK(to_bf16(float_of(0xff800001)).bits == 0xffc0);
  CHECK(std::isnan(sfm::to_float(to_bf16(float_of(0x7fffffff)))));
  // Subnormals round like everything else; the largest ones round up to the smallest normal.
  CHECK(to_bf16(float_of(0x00000001)).bits == 0x0000);
  CHECK(to_bf16(float_of(0x00008000)).bits == 0x0000);
  CHECK(to_bf16(float_of(0x00018000)).bits == 0x0002);
  CHECK(to_bf16(float_of(0x00008001)).bits == 0x0001);
  CHECK(to_bf16(float_of(0x007fffff)).bits == 0x0080);
  CHECK(to_bf16(float_of(0x807fffff)).bits == 0x8080);
}

TEST_CASE("bf16 conversions are constexpr", "[bf16]") {
  static_assert(sfm::to_bf16(1.0f).bits == 0x3f80);
  static_assert(sfm::to_float(sfm::bf16{0x4049}) == 3.140625f);
  static_assert(static_cast<float>(sfm::bf16{0xc000}) == -2.0f);
  CHECK(static_cast<float>(sfm::bf16{0x3f80}) == 1.0f);
}

TEST_CASE("bf16 rounding matches the reference on every low half of selected high halves", "[bf16]") {
  // Every pattern of the 16 dropped bits (ties, just-below and just-above) for zero, subnormals,
  // normals, the overflow boundary, infinity/NaN, and their negatives.
  std::vector<uint32_t> all_bits;
  for (uint32_t high : {0x0000u, 0x0001u, 0x007fu, 0x0080u, 0x3f80u, 0x3f81u, 0x7f7eu, 0x7f7fu, 0x7f80u, 0x7fc0u,
                        0x8000u, 0x807fu, 0xbf80u, 0xff7fu, 0xff80u, 0xffffu})
    for (uint32_t low = 0; low < 0x10000u; ++low) all_bits.push_back(high << 16 | low);
  check_against_reference(all_bits);
}

TEST_CASE("bf16 rounding matches the reference across the float range", "[bf16]") {
  // A stride co-prime with 2^16 visits every low-half pattern over the whole range.
  std::vector<uint32_t> all_bits;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) all_bits.push_back(static_cast<uint32_t>(bits));
  check_against_reference(all_bits);
}

TEST_CASE("bf16 -> float is exact and round-trips", "[bf16]") {
  int wrong_float = 0, wrong_round_trip = 0;
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = sfm::to_float(sfm::bf16{static_cast<uint16_t>(bits)});
    wrong_float += std::bit_cast<uint32_t>(f) != bits << 16;
    wrong_round_trip += !std::isnan(f) && sfm::to_bf16(f).bits != bits;
  }
  CHECK(wrong_float == 0);
  CHECK(wrong_round_trip == 0);
}
