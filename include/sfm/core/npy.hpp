// NumPy .npy files (format versions 1.0, 2.0 and 3.0): read any of them, write version 1.0.
//
// Reference data and test fixtures travel between Python and sfm as .npy. The reader checks the
// whole file before trusting it (magic, version, header length against the file size, the header
// dict, data size == numel * itemsize exactly) and returns native-endian, C-order bytes: big-endian
// data is byte-swapped and Fortran-order data transposed. Writes are atomic (see file_io.hpp).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sfm/core/convert.hpp"
#include "sfm/core/dtype.hpp"
#include "sfm/core/error.hpp"
#include "sfm/core/file_io.hpp"
#include "sfm/core/tensor.hpp"

namespace sfm {

static_assert(std::endian::native == std::endian::little, "sfm's file formats assume a little-endian host");

struct NpyArray {
  DType dtype;
  Shape shape;
  std::vector<std::byte> bytes;  // native little-endian, C order
};

namespace detail {

struct NpyType {
  char kind;  // NumPy's kind letter: f, i, u, b
  DType dtype;
};
inline constexpr NpyType npy_types[] = {
    {'f', DType::f64}, {'f', DType::f32}, {'f', DType::f16}, {'i', DType::i64}, {'i', DType::i32},
    {'i', DType::i16}, {'i', DType::i8},  {'u', DType::u64}, {'u', DType::u32}, {'u', DType::u16},
    {'u', DType::u8},  {'b', DType::boolean}};

// Recursive-descent parser of the header: a Python dict literal with exactly the keys 'descr'
// (a type string), 'fortran_order' (True/False) and 'shape' (a tuple of non-negative ints).
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, size_t file_offset, const std::filesystem::path& path)
      : text_(text), file_offset_(file_offset), path_(path) {}

  std::string descr;
  bool fortran_order = false;
  Shape shape;

  void parse() {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (skip_space() != '}') {
      const size_t key_at = pos_;
      const std::string key = parse_string();
      expect(':');
      if (key == "descr" && !seen_descr) {
        descr = parse_string();
        seen_descr = true;
      } else if (key == "fortran_order" && !seen_order) {
        fortran_order = parse_bool();
        seen_order = true;
      } else if (key == "shape" && !seen_shape) {
        shape = parse_shape();
        seen_shape = true;
      } else {
        error_at(key_at, "unexpected or repeated key '" + key + "'");
      }
      if (skip_space() != ',') break;
      ++pos_;
    }
    expect('}');
    if (!(seen_descr && seen_order && seen_shape))
      error_at(pos_, "the header lacks one of 'descr', 'fortran_order', 'shape'");
    if (skip_space() != '\0') error_at(pos_, "unexpected text after the header dict");
  }

 private:
  [[noreturn]] void error_at(size_t at, const std::string& what) const {
    fail(path_, ": bad .npy header at byte offset ", file_offset_ + at, ": ", what);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  char skip_space() {
    while (peek() == ' ' || peek() == '\n' || peek() == '\t' || peek() == '\r') ++pos_;
    return peek();
  }
  void expect(char c) {
    if (skip_space() != c) error_at(pos_, std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char quote = skip_space();
    if (quote != '\'' && quote != '"') error_at(pos_, "expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) error_at(pos_, "unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  bool parse_bool() {
    skip_space();
    for (std::string_view word : {"True", "False"})
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return word == "True";
      }
    error_at(pos_, "expected True or False");
  }
  Shape parse_shape() {
    Shape dims;
    expect('(');
    while (skip_space() != ')') {
      if (peek() < '0' || peek() > '9') error_at(pos_, "expected a non-negative integer dimension");
      int64_t dim = 0;
      while (peek() >= '0' && peek() <= '9') {
        const int digit = peek() - '0';
        if (dim > (std::numeric_limits<int64_t>::max() - digit) / 10) error_at(pos_, "dimension overflows int64");
        dim = dim * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long
      dims.push_back(dim);
      if (skip_space() != ',') break;
      ++pos_;
    }
    expect(')');
    return dims;
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t file_offset_;
  const std::filesystem::path& path_;
};

// The DType of a descr such as '<f4', and whether its bytes need swapping to native order.
inline DType npy_dtype(const std::string& descr, bool& swap, const std::filesystem::path& path) {
  if (descr.size() >= 3 && std::string_view("<>|=").find(descr[0]) != std::string_view::npos)
    for (const NpyType& type : npy_types)
      if (descr.substr(1) == type.kind + std::to_string(dtype_size(type.dtype))) {
        const size_t size = dtype_size(type.dtype);
        SFM_CHECK(size == 1 || descr[0] != '|', path, ": descr '", descr, "' lacks a byte order");
        swap = size > 1 && descr[0] == '>';
        return type.dtype;
      }
  fail(path, ": unsupported .npy dtype descr '", descr, "'");
}

inline std::string npy_descr(DType dtype) {
  for (const NpyType& type : npy_types)
    if (type.dtype == dtype) {
      std::string descr(1, dtype_size(dtype) == 1 ? '|' : '<');
      descr += type.kind;
      descr += std::to_string(dtype_size(dtype));
      return descr;
    }
  fail("dtype ", dtype_name(dtype), " has no .npy equivalent");
}

inline void byteswap_elements(std::span<std::byte> bytes, size_t itemsize) {
  for (size_t at = 0; at + itemsize <= bytes.size(); at += itemsize)
    std::reverse(bytes.begin() + at, bytes.begin() + at + itemsize);
}

// The elements of a Fortran-order (column-major) array rearranged into C order.
inline std::vector<std::byte> fortran_to_c_order(std::span<const std::byte> source, const Shape& shape,
                                                 size_t itemsize) {
  std::vector<std::byte> result(source.size());
  if (result.empty()) return result;
  const size_t rank = shape.size();
  Shape fortran_strides(rank);  // in elements
  int64_t stride = 1;
  for (size_t axis = 0; axis < rank; ++axis) {
    fortran_strides[axis] = stride;
    stride *= shape[axis];
  }
  Shape index(rank, 0);
  int64_t source_element = 0;
  for (size_t target = 0; target * itemsize < result.size(); ++target) {
    std::copy_n(source.begin() + source_element * itemsize, itemsize, result.begin() + target * itemsize);
    for (size_t axis = rank; axis-- > 0;) {  // advance the C-order index, last axis fastest
      source_element += fortran_strides[axis];
      if (++index[axis] < shape[axis]) break;
      source_element -= shape[axis] * fortran_strides[axis];
      index[axis] = 0;
    }
  }
  return result;
}

inline uint32_t read_le(const std::vector<std::byte>& bytes, size_t at, size_t count) {
  uint32_t value = 0;
  for (size_t i = count; i-- > 0;) value = (value << 8) | std::to_integer<uint32_t>(bytes[at + i]);
  return value;
}

}  // namespace detail

inline NpyArray read_npy(const std::filesystem::path& path) {
  std::vector<std::byte> bytes = read_file(path);
  constexpr std::string_view magic = "\x93NUMPY";
  SFM_CHECK(bytes.size() >= 10, path, ": ", bytes.size(), " bytes is too short for a .npy file");
  SFM_CHECK(std::equal(magic.begin(), magic.end(), bytes.begin(),
                       [](char c, std::byte b) { return static_cast<std::byte>(c) == b; }),
            path, ": not a .npy file (bad magic at byte offset 0)");
  const uint32_t major = std::to_integer<uint32_t>(bytes[6]), minor = std::to_integer<uint32_t>(bytes[7]);
  SFM_CHECK(major >= 1 && major <= 3 && minor == 0, path, ": unsupported .npy version ", major, ".", minor,
            " at byte offset 6");
  const size_t length_size = major == 1 ? 2 : 4;
  const size_t header_start = 8 + length_size;
  SFM_CHECK(bytes.size() >= header_start, path, ": ", bytes.size(), " bytes is too short for a version ", major,
            " .npy preamble");
  const size_t header_length = detail::read_le(bytes, 8, length_size);
  SFM_CHECK(header_length <= bytes.size() - header_start, path, ": header length ", header_length,
            " at byte offset 8 runs past the end of the ", bytes.size(), "-byte file");
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + header_start, header_length);
  detail::NpyHeaderParser parser(header, header_start, path);
  parser.parse();

  NpyArray array;
  bool swap = false;
  array.dtype = detail::npy_dtype(parser.descr, swap, path);
  array.shape = parser.shape;
  const size_t itemsize = dtype_size(array.dtype);
  int64_t count = 0;
  try {
    count = numel(array.shape);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  const size_t data_start = header_start + header_length, data_size = bytes.size() - data_start;
  SFM_CHECK(static_cast<uint64_t>(count) <= data_size / itemsize &&
                static_cast<uint64_t>(count) * itemsize == data_size,
            path, ": shape ", shape_string(array.shape), " of ", parser.descr, " needs ", count, " elements of ",
            itemsize, " bytes but the file holds ", data_size, " bytes of data after byte offset ", data_start);
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(data_start));
  if (swap) detail::byteswap_elements(bytes, itemsize);
  if (parser.fortran_order && array.shape.size() > 1)
    bytes = detail::fortran_to_c_order(bytes, array.shape, itemsize);
  array.bytes = std::move(bytes);
  return array;
}

// Reads a .npy file of any numeric dtype into a Tensor<T>, converting elements (convert.hpp).
template <class T>
Tensor<T> read_npy_as(const std::filesystem::path& path) {
  NpyArray array = read_npy(path);
  Tensor<T> tensor(array.shape);
  convert_elements(array.dtype, array.bytes, tensor.span(), path.string());
  return tensor;
}

// Writes `shape` elements from `data` as a little-endian, C-order, version 1.0 .npy file (the
// header padded with spaces so the data starts at a multiple of 64 bytes), atomically.
template <class T>
void write_npy(const std::filesystem::path& path, const T* data, const Shape& shape) {
  static_assert(!std::is_same_v<T, bf16>, "NumPy has no bf16 dtype");
  static_assert(sizeof(bool) == 1);
  const size_t data_size = static_cast<size_t>(numel(shape)) * sizeof(T);
  SFM_CHECK(data != nullptr || data_size == 0, "write_npy ", path, ": no data for shape ", shape_string(shape));
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims.append(i ? ", " : "").append(std::to_string(shape[i]));
  if (shape.size() == 1) dims += ',';
  std::string header = "{'descr': '";
  header.append(detail::npy_descr(dtype_of<T>)).append("', 'fortran_order': False, 'shape': (").append(dims);
  header.append("), }");
  const auto padding = [&](size_t preamble) { return (64 - (preamble + header.size() + 1) % 64) % 64; };
  const bool version1 = header.size() + 1 + padding(10) <= 0xffff;
  const size_t preamble = version1 ? 10 : 12;
  header.append(padding(preamble), ' ');
  header.push_back('\n');
  std::string prefix = std::string("\x93NUMPY") + (version1 ? '\x01' : '\x02') + '\0';
  for (size_t i = 0; i < preamble - 8; ++i) prefix.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  const std::span<const std::byte> pieces[] = {std::as_bytes(std::span(prefix)), std::as_bytes(std::span(header)),
                                               {reinterpret_cast<const std::byte*>(data), data_size}};
  write_file_atomically(path, pieces);
}

template <class T>
void write_npy(const std::filesystem::path& path, const Tensor<T>& tensor) {
  write_npy(path, tensor.data(), tensor.shape());
}

}  // namespace sfm
