// `sfm zarr read` and `info` through every store: the same box of an MDIO dataset read from a
// local path, a file:// URL, nginx on loopback (HTTP range requests) and moto_server (S3 API,
// SigV4-signed requests, credentials from the AWS_* variables) is identical; a wrong secret,
// missing data, bad boxes and unknown codecs exit with 2 and one line on stderr.
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/writer.hpp"
#include "sfm_test.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
using sfm::test::CliResult;
using sfm::test::run_sfm;

namespace {

std::vector<float> npy_values(const fs::path& path) {
  const sfm::Tensor<float> t = sfm::read_npy_as<float>(path);
  return {t.span().begin(), t.span().end()};
}

void check_one_error_line(const CliResult& r, const std::string& message) {
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  REQUIRE(r.err_lines().size() == 1);
  CHECK(r.err_lines()[0].starts_with("sfm zarr: error: "));
  CHECK(r.err_lines()[0].find(message) != std::string::npos);
}

}  // namespace

TEST_CASE("sfm zarr reads the same box from a path, file://, nginx and S3 (moto, signed)", "[io][cli][http][s3]") {
  const fs::path work = sfm::test::scratch_dir("cli_zarr_stores");
  const fs::path data = work / "data";
  fs::create_directories(data);
  REQUIRE(run_sfm({"synth", "--out", (data / "survey").string(), "--shape", "48,40,96", "--chunks", "16,16,32",
                   "--seed", "3"},
                  work)
              .status == 0);
  const sfm::test::Server nginx = sfm::test::start_nginx(data, work);
  const sfm::test::Server moto = sfm::test::start_moto(work);
  const sfm::test::S3Key key = sfm::test::setup_moto_bucket(moto, "sfm-cli", "datasets", data, work);
  const std::vector<std::string> aws{"AWS_ACCESS_KEY_ID=" + key.access_key_id,
                                     "AWS_SECRET_ACCESS_KEY=" + key.secret_access_key,
                                     "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + moto.url()};

  const std::vector<std::pair<std::string, std::vector<std::string>>> urls{
      {(data / "survey").string(), {}},
      {"file://" + fs::absolute(data / "survey").string(), {}},
      {nginx.url() + "/survey", {}},
      {"s3://sfm-cli/datasets/survey", aws}};
  std::vector<float> reference;
  for (const auto& [url, env] : urls) {
    INFO(url);
    const auto info = run_sfm({"zarr", "info", url}, work, env);
    REQUIRE(info.status == 0);
    CHECK(json::parse(info.out).at("array").at("shape") == json{48, 40, 96});
    CHECK(json::parse(info.out).at("mdio").at("variable") == "amplitude");
    const std::string out = (work / "box.npy").string();
    const auto read =
        run_sfm({"zarr", "read", url, "--start", "5,9,20", "--shape", "30,25,70", "--out", out}, work, env);
    REQUIRE(read.status == 0);
    CHECK(json::parse(read.out).at("requests") == 3 * 3 * 3);
    const std::vector<float> box = npy_values(out);
    REQUIRE(box.size() == size_t(30 * 25 * 70));
    if (reference.empty()) reference = box;
    else CHECK(box == reference);
    // --array picks another array of the group: the trace mask (all live).
    const auto mask =
        run_sfm({"zarr", "read", url, "--array", "trace_mask", "--start", "0,0", "--shape", "48,40", "--out", out}, work, env);
    REQUIRE(mask.status == 0);
    CHECK(npy_values(out) == std::vector<float>(48 * 40, 1.0f));
  }

  const std::vector<std::string> wrong_secret{aws[0], "AWS_SECRET_ACCESS_KEY=not-the-secret", aws[2], aws[3]};
  check_one_error_line(run_sfm({"zarr", "info", "s3://sfm-cli/datasets/survey"}, work, wrong_secret),
                       "SignatureDoesNotMatch");
  check_one_error_line(run_sfm({"zarr", "info", nginx.url() + "/nothing-here"}, work), "no Zarr array or group");
}

TEST_CASE("sfm zarr refuses what it cannot read with exit code 2 and one line", "[io][cli]") {
  const fs::path work = sfm::test::scratch_dir("cli_zarr_errors");
  const std::string v3 = (work / "v3").string();
  REQUIRE(run_sfm({"synth", "--out", v3, "--shape", "8,8,8", "--format", "zarr3"}, work).status == 0);
  // An array whose codec list names a codec sfm does not know.
  const fs::path odd = work / "odd";
  fs::create_directories(odd);
  json meta = json::parse(sfm::test::read_text(work / "v3" / "zarr.json"));
  meta["codecs"].push_back({{"name", "frobnicate"}, {"configuration", json::object()}});
  std::ofstream(odd / "zarr.json") << meta.dump();
  // An array of 2^48 voxels, none of them written (all fill value): its metadata alone.
  const fs::path huge = work / "huge";
  fs::create_directories(huge);
  json huge_meta = json::parse(sfm::test::read_text(work / "v3" / "zarr.json"));
  huge_meta["shape"] = {65536, 65536, 65536};
  std::ofstream(huge / "zarr.json") << huge_meta.dump();
  // A plain (non-MDIO) group holding the v3 array.
  const fs::path group = work / "group";
  fs::create_directories(group / "a");
  std::ofstream(group / "zarr.json") << R"({"zarr_format": 3, "node_type": "group", "attributes": {}})";
  fs::copy(work / "v3", group / "a", fs::copy_options::recursive);
  const std::string box = (work / "box.npy").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"zarr", "info", (work / "missing").string()}, "no Zarr array or group at"},
      {{"zarr", "read", (work / "missing").string(), "--start", "0,0,0", "--shape", "1,1,1", "--out", box},
       "no Zarr array or group at"},
      {{"zarr", "read", v3, "--start", "0,0,0", "--shape", "2,x,2", "--out", box}, "--shape: expected an integer"},
      {{"zarr", "read", v3, "--start", "0,0", "--shape", "2,2", "--out", box}, "--start and --shape need 3 values"},
      {{"zarr", "read", v3, "--start", "4,4,4", "--shape", "2,2,5", "--out", box}, "lies outside"},
      {{"zarr", "read", v3, "--start", "-1,0,0", "--shape", "2,2,2", "--out", box}, "lies outside"},
      {{"zarr", "read", v3, "--start", "0,0,0", "--shape", "2,2,2"}, "missing required option --out"},
      {{"zarr", "info", (odd).string()}, "unsupported: Zarr v3 codec 'frobnicate'"},
      {{"zarr", "read", (odd).string(), "--start", "0,0,0", "--shape", "1,1,1", "--out", box}, "frobnicate"},
      {{"zarr", "read", group.string(), "--start", "0,0,0", "--shape", "1,1,1", "--out", box}, "name the array with --array"},
      {{"zarr", "read", group.string(), "--array", "b", "--start", "0,0,0", "--shape", "1,1,1", "--out", box},
       "no Zarr array or group at 'b'"},
      {{"zarr", "info", v3, "--array", "a"}, "is an array, not a group"},
      {{"zarr", "info", "ftp://example.com/x"}, "unsupported scheme 'ftp'"},
      {{"zarr", "list", v3}, "unknown action 'list'"},
      {{"zarr", "read", huge.string(), "--start", "0,0,0", "--shape", "65536,65536,65536", "--out", box},
       "the box 65536×65536×65536 needs 1125899906842624 bytes"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args[1] << " " << args[2] << " → " << message);
    check_one_error_line(run_sfm(args, work), message);
  }
  CHECK(!fs::exists(box));
  // The plain group: its arrays listed by info, read with --array.
  const auto info = run_sfm({"zarr", "info", group.string()}, work);
  REQUIRE(info.status == 0);
  CHECK(json::parse(info.out).at("arrays") == json{"a"});
  CHECK(run_sfm({"zarr", "read", group.string(), "--array", "a", "--start", "0,0,0", "--shape", "8,8,8", "--out", box}, work)
            .status == 0);
}

TEST_CASE("sfm zarr info shows MDIO dimension coordinates; zarr read keeps float64 as float64", "[io][cli]") {
  const fs::path work = sfm::test::scratch_dir("cli_zarr_coordinates");
  const std::string mdio = (work / "s.mdio").string();
  REQUIRE(run_sfm({"synth", "--out", mdio, "--shape", "6,7,10"}, work).status == 0);
  const CliResult info = run_sfm({"zarr", "info", mdio}, work);
  REQUIRE(info.status == 0);
  const json coordinates = json::parse(info.out).at("mdio").at("coordinates");
  // sfm synth's MDIO: inline and crossline from 1 step 1, time from 0 step 4 (mdio::WriteOptions).
  CHECK(coordinates.at("inline") == json{{"size", 6}, {"first", 1.0}, {"last", 6.0}, {"step", 1.0}});
  CHECK(coordinates.at("time") == json{{"size", 10}, {"first", 0.0}, {"last", 36.0}, {"step", 4.0}});

  // A float64 array of northings: float32 would move them by up to 0.25 m.
  const fs::path northings = work / "northings.zarr";
  const std::vector<int64_t> shape{3, 4};
  std::vector<double> values(12);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 6.7e6 + 0.123 * double(i);
  sfm::io::zarr::write_array<double>(sfm::io::open_store(northings.string()), "", shape, values);
  const fs::path box = work / "box.npy";
  const CliResult read = run_sfm({"zarr", "read", northings.string(), "--start", "0,0", "--shape", "3,4", "--out",
                                  box.string()}, work);
  INFO(read.err);
  REQUIRE(read.status == 0);
  CHECK(json::parse(read.out).at("dtype") == "float64");
  const sfm::Tensor<double> got = sfm::read_npy_as<double>(box);
  REQUIRE(got.shape() == sfm::Shape{3, 4});
  CHECK(std::equal(values.begin(), values.end(), got.span().begin()));
  CHECK(sfm::test::read_text(box).find("<f8") != std::string::npos);  // stored as float64, not converted back
}
