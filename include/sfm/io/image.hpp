// Encodes 8-bit grayscale and RGB images — PNG through libpng where sfm was built with it
// (SFM_HAVE_PNG), else binary PGM/PPM, which every image viewer opens too — and writes them
// atomically (temp file + rename).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/file_io.hpp"

#ifdef SFM_HAVE_PNG
#include <png.h>
#endif

namespace sfm::io {

// An encoded image: the file's bytes and the extension that names its format.
struct EncodedImage {
  std::vector<std::byte> bytes;
  std::string extension;  // ".png", ".pgm" or ".ppm"
};

namespace image_detail {

// `pixels`: height rows of width × channels bytes (1: gray, 3: RGB).
inline EncodedImage encode(int64_t width, int64_t height, int channels, std::span<const uint8_t> pixels) {
  SFM_CHECK(width > 0 && height > 0 && int64_t(pixels.size()) == width * height * channels, "encode image: ",
            pixels.size(), channels == 1 ? " pixels for " : " bytes for RGB ", width, "×", height);
#ifdef SFM_HAVE_PNG
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = png_uint_32(width);
  image.height = png_uint_32(height);
  image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  SFM_CHECK(png_image_write_get_memory_size(image, size, 0, pixels.data(), 0, nullptr), "libpng: cannot size a ",
            width, "×", height, " image: ", image.message);
  std::vector<std::byte> bytes(size);
  SFM_CHECK(png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data(), 0, nullptr),
            "libpng: cannot encode a ", width, "×", height, " image: ", image.message);
  bytes.resize(size);
  return {std::move(bytes), ".png"};
#else
  const std::string header =
      (channels == 3 ? "P6\n" : "P5\n") + std::to_string(width) + " " + std::to_string(height) + "\n255\n";
  std::vector<std::byte> bytes(header.size() + pixels.size());
  std::memcpy(bytes.data(), header.data(), header.size());
  std::memcpy(bytes.data() + header.size(), pixels.data(), pixels.size());
  return {std::move(bytes), channels == 3 ? ".ppm" : ".pgm"};
#endif
}

}  // namespace image_detail

// Encodes `pixels` (height rows of width bytes) as PNG (or PGM without libpng).
inline EncodedImage encode_gray_image(int64_t width, int64_t height, std::span<const uint8_t> pixels) {
  return image_detail::encode(width, height, 1, pixels);
}

// Encodes `pixels` (height rows of width RGB triples) as PNG (or PPM without libpng).
inline EncodedImage encode_rgb_image(int64_t width, int64_t height, std::span<const uint8_t> pixels) {
  return image_detail::encode(width, height, 3, pixels);
}

// Writes `image` to `stem` + its extension; returns the path.
inline std::filesystem::path write_image(const std::filesystem::path& stem, const EncodedImage& image) {
  const std::filesystem::path path = stem.string() + image.extension;
  const std::span<const std::byte> pieces[] = {image.bytes};
  write_file_atomically(path, pieces);
  return path;
}

}  // namespace sfm::io
