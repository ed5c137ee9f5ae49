// Tests of sfm/core/file_io.hpp: whole-file reads and atomic replacement.
#include "sfm/core/file_io.hpp"

#include <string>
#include <vector>

#include "core_test_util.hpp"

using sfm::test::contains;
using sfm::test::error_message;

TEST_CASE("write_file_atomically writes the pieces and replaces the old file", "[file_io]") {
  const auto dir = sfm::test::scratch_dir("core_file_io");
  const auto path = dir / "out.bin";
  const std::string a = "hello, ", b = "world";
  const std::span<const std::byte> pieces[] = {std::as_bytes(std::span(a)), std::as_bytes(std::span(b)), {}};
  sfm::write_file_atomically(path, pieces);
  CHECK(sfm::read_file(path) == sfm::test::to_bytes("hello, world"));

  const std::span<const std::byte> shorter[] = {std::as_bytes(std::span(b))};
  sfm::write_file_atomically(path, shorter);
  CHECK(sfm::read_file(path) == sfm::test::to_bytes("world"));
  sfm::write_file_atomically(path, {});
  CHECK(sfm::read_file(path).empty());

  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}

TEST_CASE("file errors name the path", "[file_io]") {
  const auto dir = sfm::test::scratch_dir("core_file_io_errors");
  const auto missing = error_message([&] { sfm::read_file(dir / "absent.bin"); });
  REQUIRE(missing);
  CHECK(contains(*missing, "absent.bin"));
  const auto directory = error_message([&] { sfm::read_file(dir); });
  REQUIRE(directory);
  CHECK(contains(*directory, "not a regular file"));
  const auto no_dir = error_message([&] { sfm::write_file_atomically(dir / "none" / "x.bin", {}); });
  REQUIRE(no_dir);
  CHECK(contains(*no_dir, "x.bin.tmp-"));
}
