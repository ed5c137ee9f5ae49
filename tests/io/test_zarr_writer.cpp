// Tests of io/zarr/writer.hpp: stores sfm writes (Zarr v2 and v3, every compressor, orders,
// separators, byte orders, dtypes, sharding, crc32c, ragged edges) read back identically in sfm,
// zarr-python 3 and TensorStore.
#include <cmath>

#include "sfm/io/store_file.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io;
using namespace sfm::io::zarr;
using namespace sfm::zarr_test;

TEST_CASE("metadata the writer makes: MDIO-like defaults", "[io][zarr]") {
  const std::vector<int64_t> shape{100, 50, 30};
  const ArrayMetadata v3 = make_metadata(shape, data_type_of<float>(), {});
  CHECK(v3.grid_chunks == std::vector<int64_t>{64, 50, 30});
  CHECK(v3.codecs.size() == 2);
  CHECK(v3.codecs[1]["name"] == "blosc");
  CHECK(v3.codecs[1]["configuration"]["cname"] == "zstd");
  CHECK(v3.codecs[1]["configuration"]["clevel"] == 5);
  CHECK(v3.codecs[1]["configuration"]["shuffle"] == "shuffle");
  WriteOptions o;
  o.zarr_format = 2;
  const ArrayMetadata v2 = make_metadata(shape, data_type_of<float>(), o);
  CHECK(v2.compressor["id"] == "blosc");
  CHECK(v2.compressor["cname"] == "zstd");
  CHECK(v2.compressor["shuffle"] == 1);
  o.shard_shape = {64, 64, 64};
  expect_error([&] { make_metadata(shape, data_type_of<float>(), o); }, {"unsupported", "sharding"});
  o.zarr_format = 3;
  o.compressor = "lz4";
  o.shard_shape.clear();
  expect_error([&] { make_metadata(shape, data_type_of<float>(), o); }, {"unsupported", "lz4"});
}

TEST_CASE("sfm-written stores read back identically in sfm, zarr-python and TensorStore", "[io][zarr][python]") {
  const fs::path dir = sfm::test::scratch_dir("zarr-written");
  auto store = std::make_shared<FileStore>(dir / "store");
  const std::vector<int64_t> shape{9, 8, 7};
  std::vector<double> values(504);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(double(i) * 0.37) * 120.0;
  json manifest = json::array();
  int n = 0;
  const auto add = [&](const std::string& what, WriteOptions o, DataType type, bool tensorstore = true) {
    const std::string path = (o.zarr_format == 2 ? "v2/" : "v3/") + what;
    INFO(path);
    if (o.chunks.empty()) o.chunks = {4, 3, 5};
    write_array<double>(store, path, shape, values, o, type);
    // What the array should hold: the values cast to the stored type, then to float32.
    const Bytes native = ArrayWriter::to_dtype(std::span<const double>(values), type);
    std::vector<float> expected(values.size());
    convert_to_float(type, native.data(), expected.data(), expected.size());
    CHECK(first_difference(Array::open(store, path).read_all(), expected) == -1);
    const std::string npy = std::to_string(n++) + ".npy";
    write_npy_f32(dir / npy, shape, expected);
    manifest.push_back({{"path", path}, {"npy", npy}, {"tensorstore", tensorstore}});
  };
  const DataType f4 = data_type_of<float>(), f8 = data_type_of<double>(), i2 = data_type_of<int16_t>(),
                 u1 = data_type_of<uint8_t>(), i8 = data_type_of<int64_t>(), f2{Kind::Float, 2, false},
                 b1{Kind::Bool, 1, false}, u4 = data_type_of<uint32_t>();
  for (int format : {2, 3}) {
    WriteOptions base;
    base.zarr_format = format;
    add("default-f4", base, f4);
    for (const char* cname : {"lz4", "zstd", "zlib", "blosclz", "lz4hc"})
      for (int shuffle : {0, 1, 2}) {
        WriteOptions o = base;
        o.blosc_cname = cname;
        o.blosc_shuffle = shuffle;
        add(std::string("blosc-") + cname + "-" + std::to_string(shuffle), o, shuffle == 2 ? i2 : f4);
      }
    for (const char* comp : {"zstd", "gzip", "none"}) {
      WriteOptions o = base;
      o.compressor = comp;
      add(comp, o, f8);
    }
    WriteOptions big = base;
    big.big_endian = true;
    add("big-endian-f8", big, f8);
    add("big-endian-i2", big, i2);
    WriteOptions sep = base;
    sep.separator = format == 2 ? '/' : '.';
    add("separator-u1", sep, u1);
    WriteOptions nan = base;
    nan.fill_value = std::nan("");
    add("fill-nan-f4", nan, f4);
    add("i8", base, i8);
    add("u4", base, u4);
    add("f2", base, f2);
    add("b1", base, b1);
  }
  WriteOptions v2;
  v2.zarr_format = 2;
  for (const char* comp : {"zlib", "lz4"}) {
    WriteOptions o = v2;
    o.compressor = comp;
    add(comp, o, i2, std::string(comp) != "lz4");  // TensorStore has no numcodecs lz4
  }
  WriteOptions fo = v2;
  fo.order = 'F';
  add("order-F-f4", fo, f4);
  add("order-F-i2", fo, i2);
  WriteOptions v3;
  v3.crc32c = true;
  add("crc32c-f4", v3, f4);
  WriteOptions sh;
  sh.chunks = {2, 2, 3};
  sh.shard_shape = {4, 4, 6};
  add("sharded-f4", sh, f4);
  sh.crc32c = true;
  sh.compressor = "zstd";
  add("sharded-zstd-crc-i2", sh, i2);
  WriteOptions tr;
  tr.codecs = json::parse(R"([{"name": "transpose", "configuration": {"order": [2, 1, 0]}},
    {"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip", "configuration": {"level": 3}}])");
  add("transpose-gzip-f4", tr, f4);
  {
    std::ofstream out(dir / "manifest.json");
    out << manifest.dump(1);
  }
  run_python("check_written.py", "'" + (dir / "store").string() + "' '" + (dir / "manifest.json").string() + "'");
}

TEST_CASE("write_box writes slabs of whole chunks and refuses partial chunks", "[io][zarr]") {
  const fs::path dir = sfm::test::scratch_dir("zarr-slabs");
  auto store = std::make_shared<FileStore>(dir);
  const std::vector<int64_t> shape{10, 6};
  WriteOptions o;
  o.chunks = {4, 6};
  ArrayWriter w = ArrayWriter::create(store, "a", shape, data_type_of<float>(), o);
  std::vector<float> slab(24, 1.0f), tail(12, 2.0f);
  const std::vector<int64_t> s0{0, 0}, s1{4, 0}, s2{8, 0}, b4{4, 6}, b2{2, 6};
  w.write_box(s0, b4, std::span<const float>(slab));
  w.write_box(s2, b2, std::span<const float>(tail));
  expect_error([&] { w.write_box(s0, b2, std::span<const float>(tail)); }, {"whole chunks"});
  Array a = Array::open(store, "a");
  const std::vector<float> all = a.read_all();
  CHECK(all[0] == 1.0f);
  CHECK(all[4 * 6] == 0.0f);  // never written: fill value
  CHECK(all[9 * 6 + 5] == 2.0f);
  CHECK(a.stats().cache_misses == 3);
}
