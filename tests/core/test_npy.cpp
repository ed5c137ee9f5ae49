// Tests of sfm/core/npy.hpp: round trips, files written by NumPy (byte orders, Fortran order,
// header versions, dtypes) and NumPy reading ours, and malformed files.
#include "sfm/core/npy.hpp"

#include <cstring>
#include <numeric>
#include <vector>

#include "core_test_util.hpp"

using sfm::test::contains;
using sfm::test::error_message;

namespace {

template <class T>
std::vector<T> values_of(const sfm::NpyArray& array) {
  REQUIRE(array.dtype == sfm::dtype_of<T>);
  REQUIRE(array.bytes.size() % sizeof(T) == 0);
  std::vector<T> values(array.bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), array.bytes.data(), array.bytes.size());
  return values;
}

// A version 1.0 file with the given header dict text (padded to 64 bytes) and data.
std::vector<std::byte> npy_file(const std::string& dict, size_t data_bytes) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01", 7) + '\0' + char(header.size() & 0xff) + char(header.size() >> 8);
  file += header;
  file.append(data_bytes, '\0');
  return sfm::test::to_bytes(file);
}

}  // namespace

TEST_CASE("npy round trip of the written dtypes and shapes", "[npy]") {
  const auto dir = sfm::test::scratch_dir("core_npy_round_trip");
  std::vector<float> f(24);
  std::iota(f.begin(), f.end(), -3.5f);
  sfm::write_npy(dir / "f.npy", f.data(), {2, 3, 4});
  const sfm::NpyArray array = sfm::read_npy(dir / "f.npy");
  CHECK(array.shape == sfm::Shape{2, 3, 4});
  CHECK(values_of<float>(array) == f);

  const std::vector<double> d = {1e-300, -2.5, 3.0};
  sfm::write_npy(dir / "d.npy", d.data(), {3});
  CHECK(values_of<double>(sfm::read_npy(dir / "d.npy")) == d);
  const std::vector<int32_t> i32 = {-7, 0, 2147483647, -2147483647 - 1};
  sfm::write_npy(dir / "i32.npy", i32.data(), {2, 2});
  CHECK(values_of<int32_t>(sfm::read_npy(dir / "i32.npy")) == i32);
  const std::vector<int64_t> i64 = {int64_t{1} << 62};
  sfm::write_npy(dir / "scalar.npy", i64.data(), {});
  CHECK(sfm::read_npy(dir / "scalar.npy").shape == sfm::Shape{});
  CHECK(values_of<int64_t>(sfm::read_npy(dir / "scalar.npy")) == i64);
  sfm::write_npy<float>(dir / "empty.npy", nullptr, {0, 5});
  CHECK(sfm::read_npy(dir / "empty.npy").shape == sfm::Shape{0, 5});

  // The data starts at a multiple of 64 bytes, and no temporary file is left behind.
  CHECK(std::filesystem::file_size(dir / "f.npy") == 128 + 24 * 4);
  for (const auto& file : std::filesystem::directory_iterator(dir))
    CHECK(file.path().extension() == ".npy");

  const sfm::Tensor<double> as_double = sfm::read_npy_as<double>(dir / "f.npy");
  CHECK(as_double.shape() == sfm::Shape{2, 3, 4});
  CHECK(as_double.span()[5] == 1.5);
  sfm::write_npy(dir / "t.npy", as_double);
  CHECK(sfm::read_npy_as<float>(dir / "t.npy").span()[23] == 19.5f);
  const auto lossy = error_message([&] { sfm::read_npy_as<int32_t>(dir / "f.npy"); });
  REQUIRE(lossy);
  CHECK(contains(*lossy, "f.npy"));
}

TEST_CASE("npy files written by NumPy read back, and NumPy reads ours", "[npy]") {
  const auto dir = sfm::test::scratch_dir("core_npy_numpy");
  std::vector<float> ours(12);
  std::iota(ours.begin(), ours.end(), 0.25f);
  sfm::write_npy(dir / "ours_f4.npy", ours.data(), {3, 4});
  const std::vector<int64_t> ours_i8 = {-1, 1LL << 40};
  sfm::write_npy(dir / "ours_i8.npy", ours_i8.data(), {2});
  const std::vector<uint8_t> ours_u1 = {0, 255};
  sfm::write_npy(dir / "ours_u1.npy", ours_u1.data(), {1, 2});

  sfm::test::run_python(dir, R"PY(
import sys, os
import numpy as np
d = sys.argv[1]
p = lambda name: os.path.join(d, name)

for name, dtype, shape, values in [("ours_f4", "<f4", (3, 4), np.arange(12) + 0.25),
                                   ("ours_i8", "<i8", (2,), [-1, 2**40]),
                                   ("ours_u1", "|u1", (1, 2), [0, 255])]:
    a = np.load(p(name + ".npy"))
    assert a.dtype == np.dtype(dtype) and a.shape == shape, (name, a.dtype, a.shape)
    assert (a.ravel() == np.array(values)).all(), name
    with open(p(name + ".npy"), "rb") as f:
        f.read(8); hlen = int.from_bytes(f.read(2), "little")
    assert (10 + hlen) % 64 == 0, name

np.save(p("f4.npy"), (np.arange(24, dtype="<f4") * 0.25 - 1).reshape(2, 3, 4))
np.save(p("f8_be.npy"), (np.arange(6, dtype=">f8") * 1.5).reshape(2, 3))
np.save(p("i4_be.npy"), np.arange(-3, 3, dtype=">i4"))
np.save(p("i8.npy"), np.array([-2**62, -1, 0, 1, 2**62], "<i8"))
np.save(p("i1.npy"), np.array([-128, -1, 0, 127], "i1"))
np.save(p("u1.npy"), np.array([0, 1, 255], "u1"))
np.save(p("i2_be.npy"), np.array([-32768, 258, 32767], ">i2"))
np.save(p("u2.npy"), np.array([0, 65535], "<u2"))
np.save(p("u4_be.npy"), np.array([1, 4294967295], ">u4"))
np.save(p("u8.npy"), np.array([2**64 - 1, 5], "<u8"))
np.save(p("f2.npy"), np.array([0, 1, -2.5, 65504, 2.0**-24, np.inf], "<f2"))
np.save(p("f2_be.npy"), np.array([0.5, -3], ">f2"))
np.save(p("b1.npy"), np.array([True, False, True]))
np.save(p("fortran.npy"), np.asfortranarray(np.arange(24, dtype="<f4").reshape(2, 3, 4)))
np.save(p("fortran_be.npy"), np.asfortranarray(np.arange(6, dtype=">i8").reshape(3, 2)))
for version in [(2, 0), (3, 0)]:
    with open(p("v%d.npy" % version[0]), "wb") as f:
        np.lib.format.write_array(f, np.arange(5, dtype="<f8"), version=version)
np.save(p("scalar.npy"), np.float64(3.5))
np.save(p("empty.npy"), np.zeros((0, 3), "<f4"))
)PY");

  {
    const sfm::NpyArray a = sfm::read_npy(dir / "f4.npy");
    CHECK(a.shape == sfm::Shape{2, 3, 4});
    const std::vector<float> v = values_of<float>(a);
    for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == float(i) * 0.25f - 1.0f);
  }
  CHECK(values_of<double>(sfm::read_npy(dir / "f8_be.npy")) == std::vector<double>{0, 1.5, 3, 4.5, 6, 7.5});
  CHECK(values_of<int32_t>(sfm::read_npy(dir / "i4_be.npy")) == std::vector<int32_t>{-3, -2, -1, 0, 1, 2});
  CHECK(values_of<int64_t>(sfm::read_npy(dir / "i8.npy")) ==
        std::vector<int64_t>{-(int64_t{1} << 62), -1, 0, 1, int64_t{1} << 62});
  CHECK(values_of<int8_t>(sfm::read_npy(dir / "i1.npy")) == std::vector<int8_t>{-128, -1, 0, 127});
  CHECK(values_of<uint8_t>(sfm::read_npy(dir / "u1.npy")) == std::vector<uint8_t>{0, 1, 255});
  CHECK(values_of<int16_t>(sfm::read_npy(dir / "i2_be.npy")) == std::vector<int16_t>{-32768, 258, 32767});
  CHECK(values_of<uint16_t>(sfm::read_npy(dir / "u2.npy")) == std::vector<uint16_t>{0, 65535});
  CHECK(values_of<uint32_t>(sfm::read_npy(dir / "u4_be.npy")) == std::vector<uint32_t>{1, 4294967295u});
  CHECK(values_of<uint64_t>(sfm::read_npy(dir / "u8.npy")) == std::vector<uint64_t>{~uint64_t{0}, 5});
  CHECK(sfm::read_npy(dir / "f2.npy").dtype == sfm::DType::f16);
  CHECK(sfm::read_npy_as<float>(dir / "f2.npy").span()[3] == 65504.0f);
  const sfm::Tensor<float> halves_tensor = sfm::read_npy_as<float>(dir / "f2.npy");
  const std::vector<float> halves(halves_tensor.span().begin(), halves_tensor.span().end());
  CHECK(halves == std::vector<float>{0, 1, -2.5f, 65504, std::ldexp(1.0f, -24), INFINITY});
  const sfm::Tensor<float> halves_be = sfm::read_npy_as<float>(dir / "f2_be.npy");
  CHECK(halves_be.span()[0] == 0.5f);
  CHECK(halves_be.span()[1] == -3.0f);
  const sfm::NpyArray b1 = sfm::read_npy(dir / "b1.npy");
  CHECK(b1.dtype == sfm::DType::boolean);
  CHECK(sfm::read_npy_as<uint8_t>(dir / "b1.npy").span()[1] == 0);
  CHECK(sfm::read_npy_as<int32_t>(dir / "b1.npy").span()[2] == 1);

  // Fortran order comes back in C order: element (i, j, k) of arange(24).reshape(2, 3, 4) is i*12 + j*4 + k.
  const sfm::NpyArray fortran = sfm::read_npy(dir / "fortran.npy");
  CHECK(fortran.shape == sfm::Shape{2, 3, 4});
  std::vector<float> c_order(24);
  std::iota(c_order.begin(), c_order.end(), 0.0f);
  CHECK(values_of<float>(fortran) == c_order);
  CHECK(values_of<int64_t>(sfm::read_npy(dir / "fortran_be.npy")) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});

  for (const char* name : {"v2.npy", "v3.npy"})
    CHECK(values_of<double>(sfm::read_npy(dir / name)) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(sfm::read_npy(dir / "scalar.npy").shape == sfm::Shape{});
  CHECK(values_of<double>(sfm::read_npy(dir / "scalar.npy")) == std::vector<double>{3.5});
  CHECK(sfm::read_npy(dir / "empty.npy").shape == sfm::Shape{0, 3});
  CHECK(sfm::read_npy(dir / "empty.npy").bytes.empty());
}

TEST_CASE("malformed npy files raise sfm::Error naming the file", "[npy]") {
  const auto dir = sfm::test::scratch_dir("core_npy_malformed");
  const auto path = dir / "bad.npy";
  const auto error_for = [&](const std::vector<std::byte>& bytes) {
    sfm::test::write_bytes(path, bytes);
    return error_message([&] { sfm::read_npy(path); });
  };
  const auto expect_error = [&](const std::vector<std::byte>& bytes, const std::string& part) {
    const auto error = error_for(bytes);
    REQUIRE(error);
    INFO(*error);
    CHECK(contains(*error, "bad.npy"));
    CHECK(contains(*error, part));
  };
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  REQUIRE(!error_for(npy_file(good, 24)));

  SECTION("every truncation of a valid file") {
    const std::vector<std::byte> whole = npy_file(good, 24);
    for (size_t length = 0; length < whole.size(); ++length)
      CHECK(error_for(std::vector<std::byte>(whole.begin(), whole.begin() + length)));
  }
  SECTION("preamble") {
    expect_error({}, "too short");
    std::vector<std::byte> bad_magic = npy_file(good, 24);
    bad_magic[1] = std::byte{'n'};
    expect_error(bad_magic, "magic");
    std::vector<std::byte> bad_version = npy_file(good, 24);
    bad_version[6] = std::byte{4};
    expect_error(bad_version, "version 4.0");
    std::vector<std::byte> long_header = npy_file(good, 24);
    long_header[9] = std::byte{0x7f};
    expect_error(long_header, "runs past the end");
  }
  SECTION("data size") {
    expect_error(npy_file(good, 23), "6 elements of 4 bytes but the file holds 23 bytes");
    expect_error(npy_file(good, 25), "holds 25 bytes");
    expect_error(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 8),
                 "int64");
    expect_error(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", 8),
                 "holds 8 bytes");
  }
  SECTION("header dict") {
    expect_error(npy_file("{'descr': '<f4', 'shape': (6,), }", 24), "lacks");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", 24), "'extra'");
    expect_error(npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24), "repeated");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", 24), "True or False");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", 24), "non-negative");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", 24), "after the header");
    expect_error(npy_file("{'descr': '<f4, 'fortran_order': False, 'shape': (6,), }", 24), "byte offset");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ", 24), "byte offset 128: expected a quoted string");
    expect_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 24),
                 "overflows");
    expect_error(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", 24), "quoted");
  }
  SECTION("dtype descr") {
    for (const char* descr : {"|f4", "<c8", "<f3", "<U4", "O", "<f", "<V2"})
      expect_error(npy_file("{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (6,), }", 24),
                   descr);
  }
  SECTION("not a file") {
    const auto missing = error_message([&] { sfm::read_npy(dir / "missing.npy"); });
    REQUIRE(missing);
    CHECK(contains(*missing, "missing.npy"));
    CHECK(error_message([&] { sfm::read_npy(dir); }));
  }
}
