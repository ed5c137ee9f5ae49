// io/image.hpp: encoded images decode (libpng's reader, or a hand parse of PGM: io/gray_image_reader.hpp)
// to the size and pixel values put in, write_image writes exactly those bytes under stem +
// extension, and bad pixel counts are clear errors.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "io/gray_image_reader.hpp"
#include "sfm/io/image.hpp"
#include "sfm_test.hpp"

namespace {

// A 7 × 3 image (not square, odd width: a swapped or padded row shows) whose bytes are all
// different within a row and a column, with the extremes 0 and 255.
constexpr int64_t kWidth = 7, kHeight = 3;
std::vector<uint8_t> pattern() {
  std::vector<uint8_t> pixels(size_t(kWidth * kHeight));
  for (int64_t y = 0; y < kHeight; ++y)
    for (int64_t x = 0; x < kWidth; ++x) pixels[size_t(y * kWidth + x)] = uint8_t((x * 37 + y * 101) % 256);
  pixels[1] = 255;
  return pixels;
}

}  // namespace

TEST_CASE("encode_gray_image decodes to the same size and pixels") {
  const std::vector<uint8_t> pixels = pattern();
  const sfm::io::EncodedImage image = sfm::io::encode_gray_image(kWidth, kHeight, pixels);
#ifdef SFM_HAVE_PNG
  REQUIRE(image.extension == ".png");
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(image.bytes.size() > 8);
  for (int i = 0; i < 8; ++i) CHECK(uint8_t(image.bytes[size_t(i)]) == signature[i]);
#else
  REQUIRE(image.extension == ".pgm");
#endif
  const sfm::test::DecodedImage decoded = sfm::test::decode_gray_image(image.bytes, image.extension);
  CHECK(decoded.width == kWidth);
  CHECK(decoded.height == kHeight);
  CHECK(decoded.pixels == pixels);
  // A horizontal gradient over all 256 levels, one row: every level survives.
  std::vector<uint8_t> ramp(256);
  for (int i = 0; i < 256; ++i) ramp[size_t(i)] = uint8_t(i);
  const sfm::io::EncodedImage wide = sfm::io::encode_gray_image(256, 1, ramp);
  CHECK(sfm::test::decode_gray_image(wide.bytes, wide.extension).pixels == ramp);
}

TEST_CASE("write_image writes the encoded bytes to stem + extension, replacing an older file") {
  const auto dir = sfm::test::scratch_dir("image-write");
  const sfm::io::EncodedImage first = sfm::io::encode_gray_image(kWidth, kHeight, pattern());
  const std::filesystem::path path = sfm::io::write_image(dir / "step-7", first);
  CHECK(path == dir / ("step-7" + first.extension));
  CHECK(sfm::test::file_bytes(path) == first.bytes);
  // Written again with other pixels: the file holds the new image, and no temporary file is left.
  std::vector<uint8_t> dark(size_t(kWidth * kHeight), 3);
  const sfm::io::EncodedImage second = sfm::io::encode_gray_image(kWidth, kHeight, dark);
  CHECK(sfm::io::write_image(dir / "step-7", second) == path);
  CHECK(sfm::test::read_gray_image(path).pixels == dark);
  int64_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}

TEST_CASE("encode_gray_image rejects a pixel count that is not width × height, and empty sizes") {
  const std::vector<uint8_t> pixels = pattern();
  CHECK_THROWS_WITH(sfm::io::encode_gray_image(kWidth + 1, kHeight, pixels),
                    sfm::test::contains("21 pixels for 8×3"));
  CHECK_THROWS_WITH(sfm::io::encode_gray_image(0, 0, std::vector<uint8_t>{}), sfm::test::contains("0 pixels for 0×0"));
  CHECK_THROWS_WITH(sfm::io::encode_gray_image(-7, -3, pixels), sfm::test::contains("21 pixels for -7×-3"));
}
