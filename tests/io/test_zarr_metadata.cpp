// Tests of io/zarr/dtype.hpp and io/zarr/metadata.hpp: dtypes, fill values, v2/v3 documents,
// chunk keys, must_understand, and the clear errors for what sfm does not read or what is malformed
// (fields of the wrong JSON type named in sfm's words, never nlohmann's).
#include <cmath>
#include <limits>

#include "sfm/io/zarr/metadata.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io::zarr;
using sfm::zarr_test::expect_error;

TEST_CASE("zarr dtypes parse from v2 and v3 names", "[io][zarr]") {
  CHECK(parse_v2_dtype("<f4") == DataType{Kind::Float, 4, false});
  CHECK(parse_v2_dtype(">f8") == DataType{Kind::Float, 8, true});
  CHECK(parse_v2_dtype("|b1") == DataType{Kind::Bool, 1, false});
  CHECK(parse_v2_dtype("|u1") == DataType{Kind::UInt, 1, false});
  CHECK(parse_v2_dtype(">i2") == DataType{Kind::Int, 2, true});
  CHECK(parse_v2_dtype("<u8") == DataType{Kind::UInt, 8, false});
  CHECK(parse_v2_dtype("<f2") == DataType{Kind::Float, 2, false});
  CHECK(parse_v3_dtype("int64") == DataType{Kind::Int, 8, false});
  CHECK(parse_v3_dtype("bool") == DataType{Kind::Bool, 1, false});
  CHECK(parse_v3_dtype(json{{"name", "float16"}}) == DataType{Kind::Float, 2, false});
  for (const char* bad : {"<U7", "|S7", "|O", "<c8", "<M8[ns]", "<f16"})
    expect_error([&] { parse_v2_dtype(bad); }, {"unsupported", bad});
  expect_error([&] { parse_v2_dtype(json::array({json::array({"a", "<i4"})})); }, {"unsupported", "structured"});
  for (const char* bad : {"string", "complex64", "r16", "fixed_length_utf32"})
    expect_error([&] { parse_v3_dtype(bad); }, {"unsupported", bad});
  expect_error([&] { parse_v3_dtype(json{{"name", "structured"}, {"configuration", json::object()}}); }, {"structured"});
  CHECK(DataType{Kind::Int, 2, true}.v2_name() == ">i2");
  CHECK(DataType{Kind::UInt, 1, false}.v2_name() == "|u1");
  CHECK(DataType{Kind::Float, 8, false}.v3_name() == "float64");
}

TEST_CASE("half floats convert exactly", "[io][zarr]") {
  CHECK(half_to_float(0x3c00) == 1.0f);
  CHECK(half_to_float(0xc000) == -2.0f);
  CHECK(half_to_float(0x7bff) == 65504.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(std::isinf(half_to_float(0x7c00)));
  CHECK(std::isnan(half_to_float(0x7e00)));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaNs
    REQUIRE(float_to_half(half_to_float(uint16_t(h))) == h);
  }
}

TEST_CASE("fill values: numbers, NaN, infinities, null, hex bit patterns", "[io][zarr]") {
  const DataType f4{Kind::Float, 4, false}, i2{Kind::Int, 2, false}, b1{Kind::Bool, 1, false};
  CHECK(std::isnan(parse_fill_value("NaN", f4, 2).as_double()));
  CHECK(parse_fill_value("Infinity", f4, 3).as_double() == std::numeric_limits<double>::infinity());
  CHECK(parse_fill_value("-Infinity", f4, 2).as_double() == -std::numeric_limits<double>::infinity());
  CHECK(parse_fill_value(nullptr, f4, 2).is_null);
  CHECK(parse_fill_value(nullptr, f4, 2).as_double() == 0);
  CHECK(parse_fill_value(-7, i2, 3).as_double() == -7);
  CHECK(parse_fill_value(2.5, f4, 3).as_double() == 2.5);
  CHECK(parse_fill_value(true, b1, 3).as_double() == 1);
  CHECK(parse_fill_value("0x3f800000", f4, 3).as_double() == 1.0);
  CHECK(std::isnan(parse_fill_value("0x7fc00000", f4, 3).as_double()));
  expect_error([&] { parse_fill_value(nullptr, f4, 3); }, {"fill_value"});
  expect_error([&] { parse_fill_value("abc", f4, 3); }, {"unsupported", "fill_value"});
  // Element bytes in the array's own type.
  const auto bytes = parse_fill_value(-7, i2, 3).element_bytes(i2);
  int16_t v;
  std::memcpy(&v, bytes.data(), 2);
  CHECK(v == -7);
  const uint64_t big = 18446744073709551615ull;
  const auto u8 = parse_fill_value(big, DataType{Kind::UInt, 8, false}, 3).element_bytes(DataType{Kind::UInt, 8, false});
  uint64_t w;
  std::memcpy(&w, u8.data(), 8);
  CHECK(w == big);
}

TEST_CASE("Zarr v2 .zarray parses; chunk keys use the dimension separator", "[io][zarr]") {
  json z = json::parse(R"({"zarr_format": 2, "shape": [10, 20, 30], "chunks": [4, 5, 6], "dtype": ">f4",
    "fill_value": "NaN", "order": "F", "filters": null, "compressor": {"id": "blosc", "cname": "zstd", "clevel": 5,
    "shuffle": 1, "blocksize": 0}})");
  ArrayMetadata m = parse_v2_array(z, json{{"_ARRAY_DIMENSIONS", {"inline", "crossline", "time"}}}, "test");
  CHECK(m.shape == std::vector<int64_t>{10, 20, 30});
  CHECK(m.chunk_shape() == std::vector<int64_t>{4, 5, 6});
  CHECK(!m.shard_shape());
  CHECK(m.dtype == DataType{Kind::Float, 4, true});
  CHECK(std::isnan(m.fill.as_double()));
  CHECK(m.order == 'F');
  CHECK(m.dimension_names == std::vector<std::string>{"inline", "crossline", "time"});
  const std::vector<int64_t> idx{1, 2, 3};
  CHECK(m.chunk_key(idx) == "1.2.3");
  z["dimension_separator"] = "/";
  CHECK(parse_v2_array(z, nullptr, "test").chunk_key(idx) == "1/2/3");
  CHECK(m.codecs_json()["compressor"]["cname"] == "zstd");
  // Round trip through to_json.
  ArrayMetadata again = parse_v2_array(m.to_json(), m.attributes, "again");
  CHECK(again.shape == m.shape);
  CHECK(again.dtype == m.dtype);
  CHECK(again.order == 'F');
  // Refusals.
  json f = z;
  f["filters"] = json::array({{{"id", "delta"}, {"dtype", "<f4"}}});
  expect_error([&] { parse_v2_array(f, nullptr, "arr/.zarray"); }, {"unsupported", "delta", "arr/.zarray"});
  json s = z;
  s["dtype"] = "<U7";
  expect_error([&] { parse_v2_array(s, nullptr, "arr/.zarray"); }, {"unsupported", "<U7", "arr/.zarray"});
  json r = z;
  r["chunks"] = {4, 5};
  expect_error([&] { parse_v2_array(r, nullptr, "x"); }, {"dims"});
}

TEST_CASE("Zarr v3 zarr.json parses: key encodings, sharding, dimension names, must_understand", "[io][zarr]") {
  json j = json::parse(R"({"zarr_format": 3, "node_type": "array", "shape": [100, 50], "data_type": "int16",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [20, 10]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    "attributes": {"a": 1}, "dimension_names": ["y", null], "storage_transformers": []})");
  ArrayMetadata m = parse_v3_array(j, "zarr.json");
  const std::vector<int64_t> idx{3, 4};
  CHECK(m.chunk_key(idx) == "c/3/4");
  CHECK(m.dimension_names == std::vector<std::string>{"y", ""});
  CHECK(m.attributes["a"] == 1);
  CHECK(m.chunk_key(std::vector<int64_t>{}) == "c");
  json dot = j;
  dot["chunk_key_encoding"] = {{"name", "default"}, {"configuration", {{"separator", "."}}}};
  CHECK(parse_v3_array(dot, "x").chunk_key(idx) == "c.3.4");
  json v2 = j;
  v2["chunk_key_encoding"] = {{"name", "v2"}, {"configuration", {{"separator", "."}}}};
  CHECK(parse_v3_array(v2, "x").chunk_key(idx) == "3.4");
  CHECK(parse_v3_array(v2, "x").chunk_key(std::vector<int64_t>{}) == "0");
  // Sharding: the grid chunk is the shard, the read chunk the inner chunk.
  json sh = j;
  sh["codecs"] = json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [5, 5],
    "codecs": [{"name": "bytes"}], "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}], "index_location": "end"}}])");
  ArrayMetadata ms = parse_v3_array(sh, "x");
  CHECK(ms.chunk_shape() == std::vector<int64_t>{5, 5});
  CHECK(*ms.shard_shape() == std::vector<int64_t>{20, 10});
  // must_understand: an unknown field is an error unless it says must_understand: false.
  json ext = j;
  ext["my_extension"] = {{"must_understand", false}, {"value", 1}};
  CHECK_NOTHROW(parse_v3_array(ext, "x"));
  ext["other_extension"] = {{"value", 1}};
  expect_error([&] { parse_v3_array(ext, "a/zarr.json"); }, {"unsupported", "other_extension", "a/zarr.json"});
  json grid = j;
  grid["chunk_grid"] = {{"name", "rectilinear"}};
  expect_error([&] { parse_v3_array(grid, "x"); }, {"unsupported", "rectilinear"});
  json cke = j;
  cke["chunk_key_encoding"] = {{"name", "fancy"}};
  expect_error([&] { parse_v3_array(cke, "x"); }, {"unsupported", "fancy"});
  json st = j;
  st["storage_transformers"] = json::array({{{"name", "x"}}});
  expect_error([&] { parse_v3_array(st, "x"); }, {"unsupported", "storage_transformers"});
  json str = j;
  str["data_type"] = "string";
  expect_error([&] { parse_v3_array(str, "s/zarr.json"); }, {"unsupported", "string", "s/zarr.json"});
  json bad_shard = sh;
  bad_shard["codecs"][0]["configuration"]["chunk_shape"] = {3, 5};
  expect_error([&] { parse_v3_array(bad_shard, "x"); }, {"multiple"});
  // Writing back gives the same metadata.
  ArrayMetadata again = parse_v3_array(m.to_json(), "again");
  CHECK(again.to_json() == m.to_json());
}

TEST_CASE("malformed metadata: a field of the wrong JSON type is an error naming it, in sfm's words", "[io][zarr]") {
  const json v2 = json::parse(R"({"zarr_format": 2, "shape": [10], "chunks": [5], "dtype": "<f4", "fill_value": 0,
    "order": "C", "filters": null, "compressor": null})");
  const auto v2_with = [&](const char* key, const json& value) {
    json z = v2;
    z[key] = value;
    return z;
  };
  expect_error([&] { parse_v2_array(v2_with("order", 5), nullptr, "a/.zarray"); },
               {"a/.zarray: 'order': expected a string, got 5"});
  expect_error([&] { parse_v2_array(v2_with("dimension_separator", true), nullptr, "a/.zarray"); },
               {"a/.zarray: 'dimension_separator': expected a string, got true"});
  expect_error([&] { parse_v2_array(v2_with("filters", json::array({{{"id", 3}}})), nullptr, "a/.zarray"); },
               {"a/.zarray: filters: 'id': expected a string, got 3"});
  auto v2_missing = v2;
  v2_missing.erase("shape");
  expect_error([&] { parse_v2_array(v2_missing, nullptr, "a/.zarray"); }, {"a/.zarray: missing 'shape'"});

  const json v3 = json::parse(R"({"zarr_format": 3, "node_type": "array", "shape": [10], "data_type": "float32",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [5]}},
    "chunk_key_encoding": {"name": "default"}, "fill_value": 0, "codecs": [{"name": "bytes"}]})");
  json j = v3;
  j["node_type"] = 7;
  expect_error([&] { parse_v3_array(j, "b/zarr.json"); }, {"b/zarr.json: 'node_type': expected a string, got 7"});
  j = v3;
  j["chunk_grid"]["name"] = 5;
  expect_error([&] { parse_v3_array(j, "b/zarr.json"); }, {"b/zarr.json: chunk_grid: 'name': expected a string, got 5"});
  j = v3;
  j["chunk_key_encoding"]["name"] = json::array();
  expect_error([&] { parse_v3_array(j, "b/zarr.json"); }, {"chunk_key_encoding: 'name': expected a string, got []"});
  j = v3;
  j["chunk_key_encoding"]["configuration"] = {{"separator", 1}};
  expect_error([&] { parse_v3_array(j, "b/zarr.json"); },
               {"b/zarr.json: chunk_key_encoding.configuration: 'separator': expected a string, got 1"});
  j = v3;
  j["codecs"] = json::array({{{"name", "sharding_indexed"}, {"configuration", json::object()}}});
  expect_error([&] { parse_v3_array(j, "b/zarr.json"); }, {"b/zarr.json: sharding_indexed needs configuration.chunk_shape"});
  const json group = {{"zarr_format", 3}, {"node_type", "group"}, {"consolidated_metadata", {{"kind", 5}}}};
  expect_error([&] { parse_v3_group(group, "g/zarr.json"); },
               {"g/zarr.json: consolidated_metadata: 'kind': expected a string, got 5"});
}

TEST_CASE("Zarr v3 groups: attributes and inline consolidated metadata", "[io][zarr]") {
  json g = json::parse(R"({"zarr_format": 3, "node_type": "group", "attributes": {"x": 1},
    "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": {"a": {"zarr_format": 3,
    "node_type": "group", "attributes": {}}}}})");
  GroupMetadata gm = parse_v3_group(g, "zarr.json");
  CHECK(gm.attributes["x"] == 1);
  REQUIRE(gm.consolidated.has_value());
  CHECK(gm.consolidated->contains("a"));
  g["consolidated_metadata"] = nullptr;
  CHECK(!parse_v3_group(g, "zarr.json").consolidated.has_value());
}
