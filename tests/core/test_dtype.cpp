// Tests of sfm/core/dtype.hpp: sizes, safetensors names and the C++ type mapping.
#include "sfm/core/dtype.hpp"

#include <set>
#include <string>

#include "core_test_util.hpp"

TEST_CASE("dtype sizes and names", "[dtype]") {
  using sfm::DType;
  CHECK(sfm::dtype_size(DType::f64) == 8);
  CHECK(sfm::dtype_size(DType::f32) == 4);
  CHECK(sfm::dtype_size(DType::f16) == 2);
  CHECK(sfm::dtype_size(DType::bf16) == 2);
  CHECK(sfm::dtype_size(DType::i64) == 8);
  CHECK(sfm::dtype_size(DType::u16) == 2);
  CHECK(sfm::dtype_size(DType::i8) == 1);
  CHECK(sfm::dtype_size(DType::boolean) == 1);
  CHECK(sfm::dtype_name(DType::f32) == "F32");
  CHECK(sfm::dtype_name(DType::bf16) == "BF16");
  CHECK(sfm::dtype_name(DType::u64) == "U64");
  CHECK(sfm::dtype_name(DType::boolean) == "BOOL");

  std::set<std::string> names;
  for (DType dtype : sfm::all_dtypes) {
    names.insert(std::string(sfm::dtype_name(dtype)));
    CHECK(sfm::dtype_from_name(sfm::dtype_name(dtype)) == dtype);
  }
  CHECK(names.size() == 13);
}

TEST_CASE("dtype_from_name rejects unknown names", "[dtype]") {
  for (const char* name : {"", "f32", "F8_E4M3", "FLOAT", "F32 "}) {
    const auto error = sfm::test::error_message([&] { sfm::dtype_from_name(name); });
    REQUIRE(error);
    std::string quoted = "'";
    quoted.append(name).append("'");
    CHECK(sfm::test::contains(*error, quoted));
  }
}

TEST_CASE("dtype_of maps C++ element types", "[dtype]") {
  using sfm::DType;
  static_assert(sfm::dtype_of<double> == DType::f64);
  static_assert(sfm::dtype_of<float> == DType::f32);
  static_assert(sfm::dtype_of<const float> == DType::f32);
  static_assert(sfm::dtype_of<sfm::bf16> == DType::bf16);
  static_assert(sfm::dtype_of<int64_t> == DType::i64);
  static_assert(sfm::dtype_of<int32_t> == DType::i32);
  static_assert(sfm::dtype_of<int16_t> == DType::i16);
  static_assert(sfm::dtype_of<int8_t> == DType::i8);
  static_assert(sfm::dtype_of<uint64_t> == DType::u64);
  static_assert(sfm::dtype_of<uint32_t> == DType::u32);
  static_assert(sfm::dtype_of<uint16_t> == DType::u16);
  static_assert(sfm::dtype_of<uint8_t> == DType::u8);
  static_assert(sfm::dtype_of<bool> == DType::boolean);
  CHECK(sfm::is_floating(DType::bf16));
  CHECK(!sfm::is_floating(DType::u8));
}
