// `sfm synth` → `sfm zarr info` → `sfm zarr read` round trips: in each format (MDIO v1, Zarr v2,
// Zarr v3) the volume read back is the synthetic volume, bit for bit; bad arguments exit with 2
// and one line on stderr.
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm_test.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
using sfm::test::run_sfm;

namespace {

// The expected synthetic volume's box [start, start + shape).
std::vector<float> expected_box(const std::vector<float>& volume, const std::array<int64_t, 3>& dims,
                                const std::array<int64_t, 3>& start, const std::array<int64_t, 3>& shape) {
  std::vector<float> box;
  for (int64_t z = start[0]; z < start[0] + shape[0]; ++z)
    for (int64_t y = start[1]; y < start[1] + shape[1]; ++y)
      for (int64_t x = start[2]; x < start[2] + shape[2]; ++x) box.push_back(volume[size_t((z * dims[1] + y) * dims[2] + x)]);
  return box;
}

std::vector<float> npy_values(const fs::path& path) {
  const sfm::Tensor<float> t = sfm::read_npy_as<float>(path);
  return {t.span().begin(), t.span().end()};
}

}  // namespace

TEST_CASE("sfm synth writes MDIO v1, Zarr v2 and v3 that zarr info and read give back exactly", "[io][cli]") {
  const std::array<int64_t, 3> dims{20, 24, 40};
  sfm::SyntheticSeismicConfig config;
  config.shape = dims;
  config.seed = 7;
  const std::vector<float> volume = sfm::synthesize_seismic(config);
  for (const std::string format : {"mdio", "zarr2", "zarr3"}) {
    INFO("format " << format);
    const fs::path work = sfm::test::scratch_dir("cli_synth_" + format);
    const std::string out = (work / "volume").string();
    const auto synth = run_sfm({"synth", "--out", out, "--shape", "20,24,40", "--chunks", "8,16,16", "--format", format,
                                "--seed", "7"},
                               work);
    REQUIRE(synth.status == 0);
    CHECK(json::parse(synth.out).at("chunks") == json{8, 16, 16});

    const auto info = run_sfm({"zarr", "info", out}, work);
    REQUIRE(info.status == 0);
    const json j = json::parse(info.out);
    const json& array = format == "mdio" ? j.at("array") : j;
    CHECK(j.at("node") == (format == "mdio" ? "group" : "array"));
    CHECK(array.at("zarr_format") == (format == "zarr2" ? 2 : 3));
    CHECK(array.at("shape") == json{20, 24, 40});
    CHECK(array.at("chunks") == json{8, 16, 16});
    CHECK(array.at("dtype") == (format == "zarr2" ? "<f4" : "float32"));
    CHECK(array.at("dimension_names") == json{"inline", "crossline", "time"});
    CHECK(array.at("codecs").dump().find("zstd") != std::string::npos);
    if (format == "mdio") {
      CHECK(j.at("mdio").at("version") == 1);
      CHECK(j.at("mdio").at("variable") == "amplitude");
      CHECK(j.at("mdio").at("trace_mask") == true);
      CHECK(array.at("fill_value") == "NaN");
    }

    const std::string whole = (work / "whole.npy").string();
    REQUIRE(run_sfm({"zarr", "read", out, "--start", "0,0,0", "--shape", "20,24,40", "--out", whole}, work).status == 0);
    CHECK(npy_values(whole) == volume);
    const std::string box = (work / "box.npy").string();
    const auto read = run_sfm({"zarr", "read", out, "--start", "3,5,7", "--shape", "11,13,30", "--out", box}, work);
    REQUIRE(read.status == 0);
    CHECK(npy_values(box) == expected_box(volume, dims, {3, 5, 7}, {11, 13, 30}));
    CHECK(sfm::read_npy(box).shape == sfm::Shape{11, 13, 30});
  }
}

TEST_CASE("sfm synth: the seed changes the volume, the default chunks are clipped to the shape", "[io][cli]") {
  const fs::path work = sfm::test::scratch_dir("cli_synth_defaults");
  const auto a = run_sfm({"synth", "--out", (work / "a").string(), "--shape", "8,8,200"}, work);
  REQUIRE(a.status == 0);
  CHECK(json::parse(a.out).at("chunks") == json{8, 8, 128});
  CHECK(json::parse(a.out).at("format") == "mdio");
  REQUIRE(run_sfm({"synth", "--out", (work / "b").string(), "--shape", "8,8,200", "--seed", "1"}, work).status == 0);
  for (const char* name : {"a", "b"})
    REQUIRE(run_sfm({"zarr", "read", (work / name).string(), "--start", "0,0,0", "--shape", "8,8,200", "--out",
                     (work / (std::string(name) + ".npy")).string()},
                    work)
                .status == 0);
  CHECK(npy_values(work / "a.npy") != npy_values(work / "b.npy"));
}

TEST_CASE("sfm synth refuses bad arguments and existing stores with exit code 2 and one line", "[io][cli]") {
  const fs::path work = sfm::test::scratch_dir("cli_synth_errors");
  const std::string out = (work / "v").string();
  REQUIRE(run_sfm({"synth", "--out", out, "--shape", "4,4,4"}, work).status == 0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"synth", "--out", out, "--shape", "4,4,4"}, "already holds a Zarr node"},
      {{"synth", "--out", out + "2", "--shape", "4,x,4"}, "--shape: expected an integer, got 'x'"},
      {{"synth", "--out", out + "2", "--shape", "4,4"}, "--shape needs three extents"},
      {{"synth", "--out", out + "2", "--shape", "4,0,4"}, "must be positive"},
      {{"synth", "--out", out + "2", "--shape", "4,4,4", "--format", "hdf5"}, "--format must be mdio, zarr2 or zarr3"},
      {{"synth", "--out", out + "2", "--shape", "4,4,4", "--chunks", "2,2"}, "--chunks needs three extents"},
      {{"synth", "--shape", "4,4,4"}, "missing required option --out"},
      {{"synth", "--out", out + "2", "--shape", "4,4,4", "--shard", "2"}, "unknown option --shard"},
      {{"synth", "--out", out + "2", "--shape", "100000,100000,100000"},
       "--shape 100000×100000×100000 needs 4000000000000000 bytes"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args.back());
    const auto r = run_sfm(args, work);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    REQUIRE(r.err_lines().size() == 1);
    CHECK(r.err_lines()[0].find(message) != std::string::npos);
    CHECK(r.err_lines()[0].starts_with("sfm synth: error: "));
  }
  CHECK(!fs::exists(out + "2"));
}
