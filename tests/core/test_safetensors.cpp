// Tests of sfm/core/safetensors.hpp: round trips, a file laid out by Python, atomic replacement,
// and malformed files (every truncation, bad lengths, JSON, offsets, dtypes, shapes, random damage).
#include "sfm/core/safetensors.hpp"

#include <cstring>
#include <numeric>
#include <vector>

#include "core_test_util.hpp"
#include "sfm/core/rng.hpp"

using sfm::test::contains;
using sfm::test::error_message;

namespace {

// A file in the safetensors layout from header text and data bytes (header not padded).
std::vector<std::byte> safetensors_file(const std::string& header, size_t data_bytes) {
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((uint64_t{header.size()} >> (8 * i)) & 0xff);
  file += header;
  file.append(data_bytes, '\x01');
  return sfm::test::to_bytes(file);
}

std::optional<std::string> parse_error(const std::vector<std::byte>& bytes) {
  return error_message([&] { sfm::SafetensorsFile::from_bytes(bytes, "mem.safetensors"); });
}

const std::string valid_header =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})";

}  // namespace

TEST_CASE("safetensors round trip", "[safetensors]") {
  const auto dir = sfm::test::scratch_dir("core_safetensors_round_trip");
  std::vector<float> weight(12);
  std::iota(weight.begin(), weight.end(), -1.5f);
  const std::vector<double> scalar = {2.75};
  const std::vector<uint16_t> bf16_bits = {0x3f80, 0xc040, 0x7f80};
  const std::vector<int64_t> steps = {-1, int64_t{1} << 50};
  const std::vector<uint8_t> flags = {1, 0, 1};
  const sfm::SafetensorsEntry entries[] = {
      {"z.weight", sfm::DType::f32, {3, 4}, weight.data()},
      {"scalar", sfm::DType::f64, {}, scalar.data()},
      {"empty", sfm::DType::f32, {0, 4}, nullptr},
      {"bf16", sfm::DType::bf16, {3}, bf16_bits.data()},
      {"steps", sfm::DType::i64, {2}, steps.data()},
      {"flags", sfm::DType::boolean, {3}, flags.data()}};
  const std::map<std::string, std::string> metadata = {{"config", "tiny"}, {"note", "ünïcode \"quoted\""}};
  const auto path = dir / "model.safetensors";
  sfm::write_safetensors(path, entries, metadata);

  const auto bytes = sfm::read_file(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHECK(header_length % 8 == 0);

  const sfm::SafetensorsFile file = sfm::SafetensorsFile::load(path);
  CHECK(file.metadata() == metadata);
  CHECK(file.names() == std::vector<std::string>{"z.weight", "scalar", "empty", "bf16", "steps", "flags"});
  CHECK(file.contains("bf16"));
  CHECK(!file.contains("missing"));
  const auto& w = file.entry("z.weight");
  CHECK(w.dtype == sfm::DType::f32);
  CHECK(w.shape == sfm::Shape{3, 4});
  CHECK(w.file_offset == 8 + header_length);
  CHECK(w.bytes.size() == 48);
  const sfm::Tensor<float> read = file.tensor_as<float>("z.weight");
  CHECK(std::vector<float>(read.span().begin(), read.span().end()) == weight);
  CHECK(file.tensor_as<float>("scalar").span()[0] == 2.75f);
  CHECK(file.tensor_as<float>("empty").shape() == sfm::Shape{0, 4});
  const sfm::Tensor<float> from_bf16 = file.tensor_as<float>("bf16");
  CHECK(from_bf16.span()[1] == -3.0f);
  CHECK(std::isinf(from_bf16.span()[2]));
  CHECK(file.tensor_as<sfm::bf16>("bf16").span()[0].bits == 0x3f80);
  CHECK(file.tensor_as<int64_t>("steps").span()[1] == int64_t{1} << 50);
  CHECK(file.tensor_as<double>("steps").span()[0] == -1.0);
  CHECK(file.tensor_as<uint8_t>("flags").span()[2] == 1);
  const auto missing = error_message([&] { file.entry("missing"); });
  REQUIRE(missing);
  CHECK(contains(*missing, "model.safetensors"));
  CHECK(contains(*missing, "'missing'"));
  CHECK(error_message([&] { file.tensor_as<int32_t>("z.weight"); }));  // -1.5 is not an int32

  sfm::write_safetensors(dir / "no_metadata.safetensors", std::span(entries, 1));
  CHECK(sfm::SafetensorsFile::load(dir / "no_metadata.safetensors").metadata().empty());
}

TEST_CASE("safetensors file laid out by Python reads back, and Python reads ours", "[safetensors]") {
  const auto dir = sfm::test::scratch_dir("core_safetensors_python");
  const std::vector<float> ours = {1.0f, -2.0f, 0.5f, 8.0f, 3.25f, -0.125f};
  const std::vector<int32_t> ids = {7, -9};
  const sfm::SafetensorsEntry entries[] = {{"w", sfm::DType::f32, {2, 3}, ours.data()},
                                           {"ids", sfm::DType::i32, {2}, ids.data()}};
  sfm::write_safetensors(dir / "ours.safetensors", entries, {{"epoch", "3"}});

  sfm::test::run_python(dir, R"PY(
import sys, os, json, struct
import numpy as np
d = sys.argv[1]

with open(os.path.join(d, "ours.safetensors"), "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n])
assert header.pop("__metadata__") == {"epoch": "3"}
data = raw[8 + n:]
w = header["w"]
assert w["dtype"] == "F32" and w["shape"] == [2, 3] and w["data_offsets"] == [0, 24], w
assert np.frombuffer(data[0:24], "<f4").tolist() == [1.0, -2.0, 0.5, 8.0, 3.25, -0.125]
assert header["ids"] == {"dtype": "I32", "shape": [2], "data_offsets": [24, 32]}, header["ids"]
assert np.frombuffer(data[24:32], "<i4").tolist() == [7, -9]

# The data order (c, a, b) differs from the header order, as other writers may have it.
a = np.arange(6, dtype="<f8").reshape(2, 3) / 4
b = (np.arange(4, dtype="<f4") - 1.5).astype(np.float32)
b_bf16 = (b.view("<u4") >> 16).astype("<u2")  # exact: these values have short mantissas
c = np.array([[1, -2], [3, 2**40]], dtype="<i8")
h = np.array([1.0, -0.5, 65504], dtype="<f2")
blobs = [("c", "I64", c), ("a", "F64", a), ("b", "BF16", b_bf16), ("h", "F16", h)]
header, data, offset = {}, b"", 0
for name, dtype, array in blobs:
    raw = array.tobytes()
    header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
    data += raw
    offset += len(raw)
header = {"h": header["h"], "b": header["b"], "__metadata__": {"source": "python"}, "a": header["a"], "c": header["c"]}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(d, "python.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
)PY");

  const sfm::SafetensorsFile file = sfm::SafetensorsFile::load(dir / "python.safetensors");
  CHECK(file.metadata() == std::map<std::string, std::string>{{"source", "python"}});
  CHECK(file.names() == std::vector<std::string>{"c", "a", "b", "h"});
  const sfm::Tensor<int64_t> c = file.tensor_as<int64_t>("c");
  CHECK(c.shape() == sfm::Shape{2, 2});
  CHECK(std::vector<int64_t>(c.span().begin(), c.span().end()) == std::vector<int64_t>{1, -2, 3, int64_t{1} << 40});
  const sfm::Tensor<double> a = file.tensor_as<double>("a");
  CHECK(a.shape() == sfm::Shape{2, 3});
  CHECK(a.view()(1, 2) == 1.25);
  const sfm::Tensor<float> b = file.tensor_as<float>("b");
  CHECK(std::vector<float>(b.span().begin(), b.span().end()) == std::vector<float>{-1.5f, -0.5f, 0.5f, 1.5f});
  const sfm::Tensor<float> h = file.tensor_as<float>("h");
  CHECK(std::vector<float>(h.span().begin(), h.span().end()) == std::vector<float>{1.0f, -0.5f, 65504.0f});
}

TEST_CASE("safetensors writes replace the file atomically", "[safetensors]") {
  const auto dir = sfm::test::scratch_dir("core_safetensors_atomic");
  const auto path = dir / "ckpt.safetensors";
  const std::vector<float> first = {1, 2}, second = {3, 4, 5};
  const sfm::SafetensorsEntry one[] = {{"x", sfm::DType::f32, {2}, first.data()}};
  const sfm::SafetensorsEntry two[] = {{"x", sfm::DType::f32, {3}, second.data()}};
  sfm::write_safetensors(path, one);
  sfm::write_safetensors(path, two);
  CHECK(sfm::SafetensorsFile::load(path).entry("x").shape == sfm::Shape{3});

  // A write that fails leaves the previous file as it was and no temporary behind.
  const sfm::SafetensorsEntry duplicate[] = {{"x", sfm::DType::f32, {2}, first.data()},
                                             {"x", sfm::DType::f32, {3}, second.data()}};
  const auto twice = error_message([&] { sfm::write_safetensors(path, duplicate); });
  REQUIRE(twice);
  CHECK(contains(*twice, "twice"));
  const sfm::SafetensorsEntry no_data[] = {{"y", sfm::DType::f32, {3}, nullptr}};
  CHECK(error_message([&] { sfm::write_safetensors(path, no_data); }));
  const sfm::SafetensorsEntry bad_shape[] = {{"y", sfm::DType::f32, {-3}, second.data()}};
  CHECK(error_message([&] { sfm::write_safetensors(path, bad_shape); }));
  const sfm::SafetensorsEntry reserved[] = {{"__metadata__", sfm::DType::f32, {3}, second.data()}};
  CHECK(error_message([&] { sfm::write_safetensors(path, reserved); }));
  const sfm::SafetensorsEntry bad_utf8[] = {{"\xff\xfe", sfm::DType::f32, {3}, second.data()}};
  CHECK(error_message([&] { sfm::write_safetensors(path, bad_utf8); }));
  CHECK(error_message([&] { sfm::write_safetensors(dir / "no_such_dir" / "x.safetensors", one); }));
  CHECK(sfm::SafetensorsFile::load(path).tensor_as<float>("x").span()[2] == 5.0f);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}

TEST_CASE("malformed safetensors files raise sfm::Error", "[safetensors]") {
  REQUIRE(!parse_error(safetensors_file(valid_header, 16)));
  const auto expect_error = [](const std::string& header, size_t data_bytes, const std::string& part) {
    const auto error = parse_error(safetensors_file(header, data_bytes));
    REQUIRE(error);
    INFO(*error);
    CHECK(contains(*error, "mem.safetensors"));
    CHECK(contains(*error, part));
  };
  const auto entry = [](const std::string& body) { return R"({"t":)" + body + "}"; };

  SECTION("every truncation of a valid file, loaded from disk") {
    const auto dir = sfm::test::scratch_dir("core_safetensors_truncated");
    const std::vector<std::byte> whole = safetensors_file(valid_header, 16);
    for (size_t length = 0; length < whole.size(); ++length) {
      const auto path = dir / "cut.safetensors";
      sfm::test::write_bytes(path, std::vector<std::byte>(whole.begin(), whole.begin() + length));
      const auto error = error_message([&] { sfm::SafetensorsFile::load(path); });
      INFO("length " << length);
      REQUIRE(error);
      CHECK(contains(*error, "cut.safetensors"));
    }
  }
  SECTION("header length") {
    expect_error("", 0, "bad JSON header near byte offset 8");  // empty JSON
    std::vector<std::byte> past_end = safetensors_file(valid_header, 16);
    past_end[0] = std::byte{0xff};
    CHECK(contains(*parse_error(past_end), "runs past the end"));
    for (uint64_t huge : {uint64_t{100'000'001}, uint64_t{1} << 63, ~uint64_t{0}}) {
      std::vector<std::byte> file = safetensors_file(valid_header, 16);
      for (int i = 0; i < 8; ++i) file[i] = static_cast<std::byte>(huge >> (8 * i));
      CHECK(contains(*parse_error(file), "exceeds the limit"));
    }
  }
  SECTION("bad JSON") {
    expect_error("{", 0, "bad JSON header");
    expect_error(R"({"t": {"dtype": "F32",})", 0, "bad JSON header");
    expect_error("\xff\xfe{}", 0, "bad JSON header");
    expect_error(R"({"t": "\ud800"})", 0, "bad JSON header");
    expect_error("[1, 2]", 0, "not an object");
    expect_error(entry("5"), 0, "tensor 't'");
    expect_error(std::string(100000, '[') + std::string(100000, ']'), 0, "not an object");
  }
  SECTION("entry fields") {
    expect_error(entry(R"({"shape":[1],"data_offsets":[0,4]})"), 4, "\"dtype\"");
    expect_error(entry(R"({"dtype":"F32","data_offsets":[0,4]})"), 4, "\"shape\"");
    expect_error(entry(R"({"dtype":"F32","shape":[1]})"), 4, "data_offsets");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), 4, "data_offsets");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"), 8, "data_offsets");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"), 4, "data offset");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0.0,4]})"), 4, "data offset");
    expect_error(entry(R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})"), 4, "'F33'");
    expect_error(entry(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})"), 1, "'F8_E4M3'");
    expect_error(entry(R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})"), 4, "\"dtype\"");
    expect_error(entry(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), 4, "negative");
    expect_error(entry(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"), 4, "not an integer");
    expect_error(entry(R"({"dtype":"F32","shape":["1"],"data_offsets":[0,4]})"), 4, "not an integer");
    expect_error(entry(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})"), 4, "too large");
    expect_error(entry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})"), 4, "int64");
    expect_error(entry(R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]})"), 8, "needs");
  }
  SECTION("metadata") {
    expect_error(R"({"__metadata__":{"a":1}})", 0, "'a' is not a string");
    expect_error(R"({"__metadata__":["a"]})", 0, "__metadata__");
  }
  SECTION("offsets") {
    expect_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), 4, "outside the data region");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})"), 8, "outside the data region");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})"), 4, "outside");
    expect_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), 4, "needs 2 elements");
    expect_error(entry(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})"), 20, "needs 6 elements");
    expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 12, "overlaps");
    expect_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 12, "belong to no tensor");
    expect_error(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), 8, "the file has");
  }
  SECTION("random damage never crashes") {
    // Every single-byte change of the valid file, at every position, to a few values: each load
    // either succeeds or raises sfm::Error (any other exception fails the test).
    const std::vector<std::byte> whole = safetensors_file(valid_header, 16);
    int loaded = 0, rejected = 0;
    for (size_t at = 0; at < whole.size(); ++at)
      for (int value : {0x00, 0x20, 0x22, 0x2c, 0x31, 0x39, 0x5b, 0x7b, 0x7d, 0xff}) {
        std::vector<std::byte> damaged = whole;
        damaged[at] = static_cast<std::byte>(value);
        (parse_error(damaged) ? rejected : loaded) += 1;
      }
    CHECK(rejected > 0);
    CHECK(loaded > 0);  // e.g. damage inside the data region
    const sfm::Rng rng(99, 0);
    for (uint64_t trial = 0; trial < 2000; ++trial) {
      std::vector<std::byte> damaged = whole;
      for (uint64_t k = 0; k < 4; ++k) {
        const uint32_t word = rng.bits(trial * 4 + k);
        damaged[word % damaged.size()] = static_cast<std::byte>(word >> 24);
      }
      parse_error(damaged);
    }
  }
}
