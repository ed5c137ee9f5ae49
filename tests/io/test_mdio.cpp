// Tests of io/mdio.hpp: a real MDIO v1 dataset written by multidimio from a SEG-Y file made with
// segyio opens by its root, finds `amplitude` and reads the SEG-Y traces; an MDIO v0-shaped store
// (data/chunked_012, metadata/live_mask) and the v1 layout in Zarr v2 open too; sfm's MDIO v1 writer output opens in the MDIO
// library with the same values; root attributes of the wrong JSON type are errors naming the field.
#include <cmath>

#include "sfm/io/mdio.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/store_memory.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io;
using namespace sfm::zarr_test;

namespace {

// Live traces must match exactly; the mask must match the expected live mask.
void check_dataset(const mdio::Dataset& ds, const NpyF32& cube, const NpyF32& mask) {
  REQUIRE(ds.seismic().shape() == cube.shape);
  const std::vector<float> all = ds.seismic().read_all();
  const size_t ns = size_t(cube.shape[2]);
  for (size_t t = 0; t < mask.values.size(); ++t) {
    if (mask.values[t] == 0) continue;
    for (size_t s = 0; s < ns; ++s) REQUIRE(all[t * ns + s] == cube.values[t * ns + s]);
  }
  // A box of a few traces.
  const std::vector<int64_t> start{1, 2, 5}, box{3, 4, 30};
  CHECK(first_difference(ds.seismic().read_box(start, box), crop(cube.values, cube.shape, start, box)) == -1);
  auto trace_mask = ds.trace_mask();
  REQUIRE(trace_mask.has_value());
  CHECK(trace_mask->read_all() == mask.values);
}

}  // namespace

TEST_CASE("MDIO datasets written by multidimio (v1) and shaped like v0 open by their root", "[io][mdio][python]") {
  static const fs::path dir = [] {  // made once, shared by the sections
    const fs::path d = sfm::test::scratch_dir("mdio");
    run_python("make_mdio.py", "make '" + d.string() + "' > '" + (d / "log.txt").string() + "' 2>&1");
    return d;
  }();
  const NpyF32 cube = read_npy_f32(dir / "cube.npy"), mask = read_npy_f32(dir / "mask.npy");
  const json info = read_json(dir / "info.json");

  SECTION("v1, in Zarr v3 and in Zarr v2") {
    const std::string name = GENERATE("v1.mdio", "v1z2.mdio");
    INFO(name);
    const mdio::Dataset ds = mdio::Dataset::open(std::make_shared<FileStore>(dir / name));
    CHECK(ds.root().zarr_format() == (name == "v1.mdio" ? 3 : 2));
    CHECK(ds.version() == 1);
    CHECK(ds.variable() == "amplitude");
    CHECK(ds.dimension_names() == std::vector<std::string>{"inline", "crossline", "time"});
    CHECK(ds.seismic().metadata().dtype.v3_name() == "float32");
    check_dataset(ds, cube, mask);
    const std::vector<double> inlines = ds.coordinate("inline");
    REQUIRE(inlines.size() == info["inline"].size());
    for (size_t i = 0; i < inlines.size(); ++i) CHECK(inlines[i] == double(info["inline"][i]));
    CHECK(ds.coordinate("crossline").size() == info["crossline"].size());
    CHECK(ds.coordinate("no-such-dim").empty());
    CHECK(ds.attributes()["attributes"]["defaultVariableName"] == "amplitude");
    // The dead trace reads as what MDIO stored there, and the mask marks it dead.
    CHECK(ds.trace_mask()->read_all()[2 * 9 + 3] == 0.0f);
  }
  SECTION("v0") {
    const mdio::Dataset ds = mdio::Dataset::open(std::make_shared<FileStore>(dir / "v0.mdio"));
    CHECK(ds.version() == 0);
    CHECK(ds.variable() == "data/chunked_012");
    CHECK(ds.dimension_names() == std::vector<std::string>{"inline", "crossline", "sample"});
    NpyF32 zeroed = cube;  // the v0 store holds zeros in the dead trace
    for (float& v : zeroed.values) if (std::isnan(v)) v = 0;
    check_dataset(ds, zeroed, mask);
    CHECK(ds.coordinate("inline").front() == 10);
    CHECK(ds.coordinate("sample").size() == 40);
  }
  SECTION("not MDIO") {
    auto store = std::make_shared<MemoryStore>();
    zarr::write_group(*store, "", 3, json{{"name", "something"}});
    expect_error([&] { mdio::Dataset::open(store); }, {"not an MDIO v1 dataset", "defaultVariableName"});
    zarr::write_group(*store, "v0", 2);
    expect_error([&] { mdio::Dataset::open(store, "v0"); }, {"not an MDIO dataset", "chunked_012"});
    const std::vector<int64_t> shape{2};
    const std::vector<float> v{1, 2};
    zarr::write_array<float>(store, "arr", shape, v);
    expect_error([&] { mdio::Dataset::open(store, "arr"); }, {"not an MDIO dataset", "array"});
  }
}

TEST_CASE("sfm's MDIO v1 writer: opens in sfm and in the MDIO library with the same values", "[io][mdio][python]") {
  const fs::path dir = sfm::test::scratch_dir("mdio-written");
  const std::vector<int64_t> shape{7, 5, 33};
  std::vector<float> volume(size_t(7 * 5 * 33));
  for (size_t i = 0; i < volume.size(); ++i) volume[i] = std::sin(float(i) * 0.1f) * float(i % 17);
  mdio::WriteOptions o;
  o.chunks = {4, 4, 16};
  o.origin = {100, 200, 0};
  const auto meta = mdio::write_v1(std::make_shared<FileStore>(dir / "synth.mdio"), "", shape, volume, o);
  CHECK(meta.grid_chunks == std::vector<int64_t>{4, 4, 16});
  const mdio::Dataset ds = mdio::Dataset::open(std::make_shared<FileStore>(dir / "synth.mdio"));
  CHECK(ds.version() == 1);
  CHECK(ds.variable() == "amplitude");
  CHECK(ds.dimension_names() == std::vector<std::string>{"inline", "crossline", "time"});
  CHECK(ds.seismic().read_all() == volume);
  CHECK(ds.coordinate("inline").front() == 100);
  CHECK(ds.coordinate("time")[1] == 4);
  write_npy_f32(dir / "expected.npy", shape, volume);
  run_python("make_mdio.py", "check '" + (dir / "synth.mdio").string() + "' '" + (dir / "expected.npy").string() + "'");
}

TEST_CASE("MDIO root attributes of the wrong JSON type are errors naming the field", "[io][mdio]") {
  // v1 (Zarr v3): attributes.defaultVariableName must be a string.
  auto v1 = std::make_shared<MemoryStore>("v1");
  zarr::write_group(*v1, "", 3, {{"attributes", {{"defaultVariableName", 5}}}});
  expect_error([&] { mdio::Dataset::open(v1); },
               {"the root attributes of '' in memory://v1: 'attributes': 'defaultVariableName': expected a string, got 5"});
  // v0 (Zarr v2): the names in "dimension".
  auto v0 = std::make_shared<MemoryStore>("v0");
  zarr::write_group(*v0, "", 2, {{"dimension", json::array({{{"name", 3}}})}});
  expect_error([&] { mdio::Dataset::open(v0); }, {"the root attributes of '' in memory://v0: 'dimension': 'name': expected a string, got 3"});
}
