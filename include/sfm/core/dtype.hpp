// Element types of tensors on disk and in memory.
//
// DType names the element types that .npy and safetensors files carry; its text names are the
// safetensors ones ("F32", "BF16", "BOOL", ...). dtype_of<T> maps the C++ element types sfm uses
// to their DType, so readers can check or convert what a file holds against what the caller wants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"

namespace sfm {

enum class DType { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };

inline constexpr DType all_dtypes[] = {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64,
                                       DType::i32, DType::i16, DType::i8,  DType::u64,  DType::u32,
                                       DType::u16, DType::u8,  DType::boolean};

// Bytes per element.
inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f64: case DType::i64: case DType::u64: return 8;
    case DType::f32: case DType::i32: case DType::u32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: case DType::u16: return 2;
    case DType::i8: case DType::u8: case DType::boolean: return 1;
  }
  fail("invalid DType value ", static_cast<int>(dtype));
}

// The safetensors name of the type.
inline std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f64: return "F64";
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u64: return "U64";
    case DType::u32: return "U32";
    case DType::u16: return "U16";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  fail("invalid DType value ", static_cast<int>(dtype));
}

// The DType whose safetensors name is `name`; raises Error for any other text.
inline DType dtype_from_name(std::string_view name) {
  for (DType dtype : all_dtypes)
    if (dtype_name(dtype) == name) return dtype;
  fail("unknown dtype name '", name, "'");
}

inline bool is_floating(DType dtype) {
  return dtype == DType::f64 || dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16;
}

namespace detail {

template <class T>
constexpr DType dtype_of_impl() {
  if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, bf16>) return DType::bf16;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::i64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::i32;
  else if constexpr (std::is_same_v<T, int16_t>) return DType::i16;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::i8;
  else if constexpr (std::is_same_v<T, uint64_t>) return DType::u64;
  else if constexpr (std::is_same_v<T, uint32_t>) return DType::u32;
  else if constexpr (std::is_same_v<T, uint16_t>) return DType::u16;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::u8;
  else if constexpr (std::is_same_v<T, bool>) return DType::boolean;
  else static_assert(!sizeof(T), "no sfm::DType for this element type");
}

}  // namespace detail

// The DType of C++ element type T (f16 has no C++ type here: it is read by conversion only).
template <class T>
inline constexpr DType dtype_of = detail::dtype_of_impl<std::remove_cv_t<T>>();

}  // namespace sfm
