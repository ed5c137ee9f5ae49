// Reads back the 8-bit grayscale images io/image.hpp writes, independently of its encoder: PNG
// through libpng's reading API where sfm has libpng (SFM_HAVE_PNG), binary PGM (P5) parsed by
// hand. Shared by io/test_image.cpp and the trainer's preview checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#ifdef SFM_HAVE_PNG
#include <png.h>
#endif

#include "sfm_test.hpp"

namespace sfm::test {

struct DecodedImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height rows of width bytes

  uint8_t at(int64_t row, int64_t col) const { return pixels[size_t(row * width + col)]; }
};

// Decodes `bytes` as the format `extension` names (".png" or ".pgm"); the test fails on anything
// else, and on a PNG that is not single-channel gray.
inline DecodedImage decode_gray_image(std::span<const std::byte> bytes, const std::string& extension) {
  DecodedImage out;
  if (extension == ".png") {
#ifdef SFM_HAVE_PNG
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    REQUIRE(png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()) != 0);
    CHECK((image.format & (PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)) == 0);  // stored as gray
    image.format = PNG_FORMAT_GRAY;
    out.width = image.width, out.height = image.height;
    out.pixels.resize(PNG_IMAGE_SIZE(image));
    REQUIRE(png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr) != 0);
#else
    FAIL("a .png image in a build without libpng");
#endif
  } else {
    REQUIRE(extension == ".pgm");
    std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    std::string magic;
    int max_value = 0;
    in >> magic >> out.width >> out.height >> max_value;
    REQUIRE(magic == "P5");
    REQUIRE(max_value == 255);
    in.get();  // the single whitespace byte before the raster
    out.pixels.resize(size_t(out.width * out.height));
    in.read(reinterpret_cast<char*>(out.pixels.data()), std::streamsize(out.pixels.size()));
    REQUIRE(in.gcount() == std::streamsize(out.pixels.size()));
    REQUIRE(in.peek() == EOF);  // nothing after the raster
  }
  return out;
}

inline std::vector<std::byte> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  return bytes;
}

// The image file at `path`, decoded by its extension.
inline DecodedImage read_gray_image(const std::filesystem::path& path) {
  return decode_gray_image(file_bytes(path), path.extension().string());
}

}  // namespace sfm::test
