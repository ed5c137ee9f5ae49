// Helpers shared by the Zarr/MDIO tests: running the venv Python helpers in tests/io/zarr_py/,
// reading the float32 .npy files they write, NaN-aware exact comparison, and error checks (which
// also refuse nlohmann's exception text in a message).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "sfm/core/error.hpp"
#include "sfm_test.hpp"

namespace sfm::zarr_test {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string helper(const std::string& script) {
  return std::string(SFM_SOURCE_DIR) + "/tests/io/zarr_py/" + script;
}

// Runs a helper script with the project venv's Python; the test fails when it fails.
inline void run_python(const std::string& script, const std::string& args) {
  const std::string command = std::string(SFM_VENV_PYTHON) + " " + helper(script) + " " + args;
  INFO("command: " << command);
  REQUIRE(std::system(command.c_str()) == 0);
}

inline json read_json(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return json::parse(in);
}

struct NpyF32 {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Reads a little-endian float32 C-order .npy (what the helpers write).
inline NpyF32 read_npy_f32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() >= 10);
  REQUIRE(bytes.compare(0, 6, "\x93NUMPY") == 0);
  size_t header_len = 0, offset = 0;
  if (bytes[6] == 1) {
    header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
    offset = 10;
  } else {
    header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8 | size_t(uint8_t(bytes[10])) << 16 |
                 size_t(uint8_t(bytes[11])) << 24;
    offset = 12;
  }
  const std::string header = bytes.substr(offset, header_len);
  INFO(path.string() << " header " << header);
  REQUIRE(header.find("'<f4'") != std::string::npos);
  REQUIRE(header.find("'fortran_order': False") != std::string::npos);
  NpyF32 out;
  const size_t open = header.find('(', header.find("'shape'"));
  const size_t close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  for (size_t p = 0; p < dims.size();) {
    const size_t comma = dims.find(',', p);
    const std::string item = dims.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
    if (item.find_first_of("0123456789") != std::string::npos) out.shape.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    p = comma + 1;
  }
  int64_t n = 1;
  for (int64_t e : out.shape) n *= e;
  const size_t data = offset + header_len;
  REQUIRE(bytes.size() - data == size_t(n) * 4);
  out.values.resize(size_t(n));
  std::memcpy(out.values.data(), bytes.data() + data, size_t(n) * 4);
  return out;
}

// Writes float32 values as a little-endian C-order .npy (version 1.0).
inline void write_npy_f32(const fs::path& path, const std::vector<int64_t>& shape, const std::vector<float>& values) {
  std::string dims;
  for (int64_t e : shape) dims += std::to_string(e) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {char(header.size() & 0xff), char(header.size() >> 8)};
  out.write(len, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(reinterpret_cast<const char*>(values.data()), std::streamsize(values.size() * 4));
  REQUIRE(out.good());
}

// Exact equality, NaN equal to NaN. Returns the first differing index, or -1.
inline int64_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool same = (std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i];
    if (!same) return int64_t(i);
  }
  return -1;
}

// The box [start, start + shape) of a C-order array.
inline std::vector<float> crop(const std::vector<float>& all, const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& start, const std::vector<int64_t>& shape) {
  std::vector<float> out;
  const size_t rank = dims.size();
  std::vector<int64_t> i(rank, 0);
  int64_t total = 1;
  for (int64_t e : shape) total *= e;
  for (int64_t k = 0; k < total; ++k) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off = off * dims[d] + start[d] + i[d];
    out.push_back(all[size_t(off)]);
    for (size_t d = rank; d-- > 0;) {
      if (++i[d] < shape[d]) break;
      i[d] = 0;
    }
  }
  return out;
}

// `fn` must throw sfm::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  std::string message;
  try {
    fn();
  } catch (const sfm::Error& e) {
    message = e.what();
  }
  INFO("error message: " << message);
  REQUIRE(!message.empty());
  CHECK(message.find("[json.exception") == std::string::npos);  // sfm's words, never nlohmann's
  for (const std::string& p : parts) {
    INFO("expected to contain: " << p);
    CHECK(message.find(p) != std::string::npos);
  }
}

}  // namespace sfm::zarr_test
