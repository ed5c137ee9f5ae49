// train/tensorboard.hpp: the masked CRC32C and the protobuf encoding against known values, and the
// event files of real training runs read back by TensorBoard's own EventAccumulator
// (read_tensorboard.py in the venv): the scalars equal metrics.jsonl's at the same steps, the
// previews decode to their PNG's size, and a resumed run shows each step once, with its own values.
#include <fstream>
#include <map>

#include "sfm/comm/serial.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm/train/tensorboard.hpp"
#include "sfm/train/trainer.hpp"
#include "sfm_test.hpp"
#include "train_test_util.hpp"

using namespace sfm;
using sfm::test::small_run;
using sfm::test::train_tmp;
using json = nlohmann::json;

namespace {

void run_serial(const TrainConfig& c, const std::filesystem::path& resume = {}) {
  SerialComm world;
  TrainOptions o;
  o.resume = resume;
  o.console = nullptr;
  train<sfm::Cpu>(c, world, o);
}

// read_tensorboard.py's JSON for `dir`.
json read_tensorboard(const std::filesystem::path& dir) {
  const auto out = dir.string() + ".tensorboard.json";
  sfm::test::run_command(std::string(SFM_VENV_PYTHON) + " " + SFM_SOURCE_DIR + "/tests/train/read_tensorboard.py " +
                         dir.string() + " > " + out);
  return json::parse(std::ifstream(out));
}

// metrics.jsonl as step → record.
std::map<int64_t, json> metrics(const std::filesystem::path& dir) {
  std::map<int64_t, json> records;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    json r = json::parse(line);
    records[r.at("step").get<int64_t>()] = r;
  }
  return records;
}

// Every metrics.jsonl scalar appears once per logged step, with the record's value to float32.
void check_scalars_match(const json& scalars, const std::map<int64_t, json>& records) {
  for (const char* tag : {"loss", "lr", "grad_norm", "samples_per_s", "tokens_per_s", "data_wait_s", "mask_ratio",
                          "skipped_steps"}) {
    INFO("tag " << tag);
    REQUIRE(scalars.contains(tag));
    const json& events = scalars.at(tag);
    REQUIRE(events.size() == records.size());
    auto record = records.begin();
    for (const json& e : events) {
      CHECK(e[0].get<int64_t>() == record->first);
      CHECK(e[1].get<double>() == double(float(record->second.at(tag).get<double>())));
      ++record;
    }
  }
}

// The width and height of a PNG file (IHDR: big-endian at bytes 16 and 20).
std::pair<int64_t, int64_t> png_size(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  REQUIRE(bytes.size() > 24);
  auto be32 = [&](size_t at) {
    return int64_t(uint32_t(bytes[at]) << 24 | uint32_t(bytes[at + 1]) << 16 | uint32_t(bytes[at + 2]) << 8 |
                   uint32_t(bytes[at + 3]));
  };
  return {be32(16), be32(20)};
}

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto b = std::as_bytes(std::span(text.data(), text.size()));
  return {b.begin(), b.end()};
}

}  // namespace

TEST_CASE("TFRecord framing: masked CRC32C and varints") {
  using namespace tensorboard_detail;
  // RFC 3720 (iSCSI) B.4: crc32c("123456789") = 0xE3069283; masked as TFRecord does:
  // ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
  const auto digits = bytes_of("123456789");
  CHECK(io::zarr::codec::crc32c(digits) == 0xE3069283u);
  const uint32_t crc = 0xE3069283u;
  CHECK(masked_crc32c(digits) == uint32_t(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
  // 32 zero bytes: crc32c 0x8A9136AA (RFC 3720 B.4).
  CHECK(io::zarr::codec::crc32c(std::vector<std::byte>(32)) == 0x8A9136AAu);

  Bytes v;
  put_varint(v, 300);  // the protobuf documentation's example: 0xAC 0x02
  CHECK(v == Bytes{std::byte(0xAC), std::byte(0x02)});

  const Bytes record = tf_record(digits);
  REQUIRE(record.size() == 8 + 4 + 9 + 4);
  CHECK(record[0] == std::byte(9));

  Bytes event = event_head(123456789012);
  CHECK(event_step(event) == 123456789012);
}

TEST_CASE("sfm train writes TensorBoard events that TensorBoard reads as metrics.jsonl and the previews") {
  const auto dir = train_tmp("tensorboard");
  run_serial(small_run(dir.string(), {{"output", {{"images_every", 3}}}}));
  const json board = read_tensorboard(dir);
  check_scalars_match(board.at("run").at("scalars"), metrics(dir));
  const json& images = board.at("run").at("images").at("preview");
  REQUIRE(images.size() == 2);
  int64_t expected_step = 3;
  for (const json& image : images) {
    const auto [width, height] = png_size(dir / "images" / ("step-" + std::to_string(expected_step) + ".png"));
    CHECK(image.at("step") == expected_step);
    CHECK(image.at("width") == width);
    CHECK(image.at("height") == height);
    CHECK(image.at("decoded") == json::array({width, height}));
    CHECK(image.at("same_as_file") == true);
    expected_step += 3;
  }

  SECTION("output.tensorboard = false writes none") {
    const auto off = train_tmp("tensorboard-off");
    run_serial(small_run(off.string(), {{"output", {{"tensorboard", false}}}}));
    for (const auto& entry : std::filesystem::directory_iterator(off))
      CHECK_FALSE(entry.path().filename().string().starts_with("events.out.tfevents."));
  }
}

TEST_CASE("a resumed run's TensorBoard events show each step once, with the resumed run's values") {
  const auto dir = train_tmp("tensorboard-resume");
  // Six steps logged, then killed after its checkpoint-3 (checkpoint-6 removed): steps 4-6 are orphans.
  run_serial(small_run(dir.string()));
  const auto first_run = metrics(dir);
  std::filesystem::remove_all(dir / "checkpoint-6");
  run_serial(small_run(dir.string()), dir / "checkpoint-3");
  const auto resumed = metrics(dir);
  REQUIRE(resumed.size() == 6);
  // The timings of steps 4-6 differ between the runs, so stale events would not match.
  for (int64_t step = 4; step <= 6; ++step)
    CHECK(resumed.at(step).at("samples_per_s") != first_run.at(step).at("samples_per_s"));

  const json board = read_tensorboard(dir);
  check_scalars_match(board.at("run").at("scalars"), resumed);
  // Each file alone: the first run's keeps steps 1-3 only, the resumed run's holds 4-6.
  const json& files = board.at("files");
  REQUIRE(files.size() == 2);
  std::vector<std::vector<int64_t>> steps;
  for (const auto& [name, file] : files.items()) {
    steps.emplace_back();
    for (const json& e : file.at("scalars").at("loss")) steps.back().push_back(e[0].get<int64_t>());
  }
  CHECK(steps[0] == std::vector<int64_t>{1, 2, 3});
  CHECK(steps[1] == std::vector<int64_t>{4, 5, 6});
}
