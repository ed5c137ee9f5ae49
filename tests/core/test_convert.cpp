// Tests of sfm/core/convert.hpp: f16 decoding and element conversion between dtypes.
#include "sfm/core/convert.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core_test_util.hpp"

namespace {

template <class S>
std::vector<std::byte> bytes_of(const std::vector<S>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(S));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <class T>
std::vector<T> convert(sfm::DType source, const std::vector<std::byte>& bytes) {
  std::vector<T> out(bytes.size() / sfm::dtype_size(source));
  sfm::convert_elements(source, bytes, std::span<T>(out), "test");
  return out;
}

}  // namespace

TEST_CASE("half_to_float decodes binary16", "[convert]") {
  CHECK(sfm::half_to_float(0x0000) == 0.0f);
  CHECK(std::signbit(sfm::half_to_float(0x8000)));
  CHECK(sfm::half_to_float(0x3c00) == 1.0f);
  CHECK(sfm::half_to_float(0xc100) == -2.5f);
  CHECK(sfm::half_to_float(0x7bff) == 65504.0f);
  CHECK(sfm::half_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(sfm::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(sfm::half_to_float(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(sfm::half_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(sfm::half_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(sfm::half_to_float(0x7e00)));
  CHECK(std::isnan(sfm::half_to_float(0xfc01)));
}

TEST_CASE("convert_elements to floating types", "[convert]") {
  using sfm::DType;
  CHECK(convert<float>(DType::f64, bytes_of<double>({1.5, -1e300, 0.1})) ==
        std::vector<float>{1.5f, -std::numeric_limits<float>::infinity(), 0.1f});
  CHECK(convert<double>(DType::i64, bytes_of<int64_t>({-3, 1LL << 53})) == std::vector<double>{-3.0, 9007199254740992.0});
  CHECK(convert<float>(DType::bf16, bytes_of<uint16_t>({0x3f80, 0xc040})) == std::vector<float>{1.0f, -3.0f});
  CHECK(convert<float>(DType::f16, bytes_of<uint16_t>({0x3c00, 0x3800})) == std::vector<float>{1.0f, 0.5f});
  CHECK(convert<float>(DType::boolean, bytes_of<uint8_t>({0, 1, 7})) == std::vector<float>{0.0f, 1.0f, 1.0f});
  CHECK(convert<float>(DType::u8, bytes_of<uint8_t>({255})) == std::vector<float>{255.0f});
  const auto as_bf16 = convert<sfm::bf16>(DType::f32, bytes_of<float>({1.0f, 3.0f}));
  CHECK(as_bf16[0].bits == 0x3f80);
  CHECK(as_bf16[1].bits == 0x4040);
}

TEST_CASE("convert_elements to integer types accepts only exact values", "[convert]") {
  using sfm::DType;
  CHECK(convert<int32_t>(DType::i64, bytes_of<int64_t>({-5, 2147483647})) == std::vector<int32_t>{-5, 2147483647});
  CHECK(convert<int64_t>(DType::f32, bytes_of<float>({-2.0f, 16777216.0f})) == std::vector<int64_t>{-2, 16777216});
  CHECK(convert<uint8_t>(DType::boolean, bytes_of<uint8_t>({0, 1})) == std::vector<uint8_t>{0, 1});

  const auto too_big = sfm::test::error_message([] { convert<int32_t>(DType::i64, bytes_of<int64_t>({1, 1LL << 31})); });
  REQUIRE(too_big);
  CHECK(sfm::test::contains(*too_big, "element 1"));
  CHECK(sfm::test::contains(*too_big, "2147483648"));
  CHECK(sfm::test::error_message([] { convert<uint32_t>(DType::i8, bytes_of<int8_t>({-1})); }));
  CHECK(sfm::test::error_message([] { convert<int64_t>(DType::u64, bytes_of<uint64_t>({1ULL << 63})); }));
  CHECK(sfm::test::error_message([] { convert<int32_t>(DType::f32, bytes_of<float>({0.5f})); }));
  CHECK(sfm::test::error_message([] { convert<int32_t>(DType::f64, bytes_of<double>({2147483648.0})); }));
  CHECK(sfm::test::error_message([] { convert<int64_t>(DType::f64, bytes_of<double>({9223372036854775808.0})); }));
  CHECK(sfm::test::error_message([] { convert<int64_t>(DType::f32, bytes_of<float>({NAN})); }));
  CHECK(convert<int64_t>(DType::f64, bytes_of<double>({-9223372036854775808.0})) ==
        std::vector<int64_t>{std::numeric_limits<int64_t>::min()});
}

TEST_CASE("convert_elements checks the byte count", "[convert]") {
  std::vector<float> out(3);
  const std::vector<std::byte> bytes(11);
  CHECK(sfm::test::error_message([&] { sfm::convert_elements(sfm::DType::f32, bytes, std::span<float>(out), "here"); }));
}
