// Tests of io/zarr/blosc_scatter.hpp against libblosc: for every codec, shuffle, dtype and block
// size it handles, the overlap it writes into a box equals the whole chunk decoded by
// blosc_decompress, converted to float32 and copied with nd::copy_box; from the whole chunk and
// from the stored span of the blocks alone (what a network read fetches). What it leaves to
// libblosc (bit shuffle, blosclz, memcpyed chunks) it refuses without writing, and corrupt or cut
// input is an error naming the chunk, never a read past the bytes given.
#include <cmath>
#include <cstring>
#include <random>

#include "sfm/io/zarr/blosc_scatter.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io::zarr;
using codec::Bytes;
using sfm::zarr_test::expect_error;

namespace {

// Smooth values with random low bytes, as seismic amplitudes are: blosc stores the noisy byte
// planes of a split block raw and compresses the others.
Bytes sample_chunk(const DataType& type, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(count * size_t(type.size));
  for (size_t i = 0; i < count; ++i) {
    const double smooth = 1000.0 * std::sin(double(i) * 0.01) + double(rng() % 64);
    std::byte* p = out.data() + i * size_t(type.size);
    if (type.kind == Kind::Float && type.size == 4) {
      const float v = float(smooth) + float(rng() % 1000) * 1e-4f;
      std::memcpy(p, &v, 4);
    } else if (type.kind == Kind::Float && type.size == 8) {
      const double v = smooth + double(rng()) * 1e-12;
      std::memcpy(p, &v, 8);
    } else if (type.size == 2) {
      const int16_t v = int16_t(smooth);
      std::memcpy(p, &v, 2);
    } else {
      *p = std::byte(uint8_t(int(smooth) & 0xff));
    }
  }
  return out;
}

struct Box {
  std::vector<int64_t> src, extent, dst;
};

// A random overlap inside `chunk`, placed at a random spot of a box of `box_shape`.
Box random_box(std::mt19937& rng, const std::vector<int64_t>& chunk, const std::vector<int64_t>& box_shape) {
  Box b;
  for (size_t d = 0; d < chunk.size(); ++d) {
    const int64_t extent = 1 + int64_t(rng() % uint32_t(chunk[d]));
    b.extent.push_back(extent);
    b.src.push_back(int64_t(rng() % uint32_t(chunk[d] - extent + 1)));
    b.dst.push_back(int64_t(rng() % uint32_t(box_shape[d] - extent + 1)));
  }
  return b;
}

// What blosc_scatter must write: the whole chunk through libblosc, as float32, copied into the box.
std::vector<float> reference(const Bytes& encoded, const DataType& type, const std::vector<int64_t>& chunk,
                             const std::vector<int64_t>& box_shape, const Box& b, float background) {
  const Bytes native = codec::blosc_decode(encoded, size_t(nd::count(chunk) * type.size), "reference");
  std::vector<float> values(size_t(nd::count(chunk)));
  convert_to_float(type, native.data(), values.data(), values.size());
  std::vector<float> box(size_t(nd::count(box_shape)), background);
  nd::copy_box(reinterpret_cast<std::byte*>(box.data()), box_shape, b.dst, reinterpret_cast<const std::byte*>(values.data()),
               chunk, b.src, b.extent, sizeof(float));
  return box;
}

// blosc_scatter into a box of `box_shape` (unwritten elements keep `background`).
std::optional<size_t> scatter(const codec::BloscHeader& h, ByteView layout, size_t begin, ByteView stored,
                              const DataType& type, const std::vector<int64_t>& chunk,
                              const std::vector<int64_t>& box_shape, const Box& b, std::vector<float>& box,
                              const std::string& where = "store key 'a/c/0'") {
  const std::vector<int64_t> strides = nd::strides(box_shape);
  int64_t at = 0;
  for (size_t d = 0; d < b.dst.size(); ++d) at += b.dst[d] * strides[d];
  const ChunkOverlap part{chunk, b.src, b.extent, box.data() + at, strides};
  return blosc_scatter(h, layout, begin, stored, type, part, where);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("blosc_scatter writes what libblosc decodes, from the whole chunk and from its blocks alone", "[io][zarr]") {
  const DataType f4{Kind::Float, 4, false}, f8{Kind::Float, 8, false}, i2{Kind::Int, 2, false}, u1{Kind::UInt, 1, false};
  std::mt19937 rng(7);
  int split = 0, unsplit = 0, checked = 0;
  for (const auto& chunk : {std::vector<int64_t>{7, 13, 11}, std::vector<int64_t>{16, 32, 40}, std::vector<int64_t>{33, 65},
                            std::vector<int64_t>{3000}})
    for (const DataType& type : {f4, f8, i2, u1})
      for (const char* cname : {"zstd", "lz4", "lz4hc", "zlib"})
        for (const int shuffle : {0, 1})
          for (const size_t blocksize : {size_t(0), size_t(1024), size_t(4000)}) {
            INFO(chunk.size() << "-d chunk of " << nd::count(chunk) << ", " << type.size << "-byte " << int(type.kind) << ", "
                 << cname << " shuffle " << shuffle << " blocksize " << blocksize);
            const Bytes data = sample_chunk(type, size_t(nd::count(chunk)), uint32_t(checked));
            const Bytes enc = codec::blosc_encode(data, cname, 5, shuffle, type.size, blocksize);
            const codec::BloscHeader h = codec::blosc_header(enc, "k");
            if (h.memcpyed()) continue;  // incompressible at this size: left to libblosc (below)
            ((h.flags & 0x10) ? unsplit : split) += 1;
            std::vector<int64_t> box_shape = chunk;
            for (int64_t& e : box_shape) e += 5;
            for (int trial = 0; trial < 4; ++trial) {
              const Box b = trial == 0 ? Box{std::vector<int64_t>(chunk.size(), 0), chunk, std::vector<int64_t>(chunk.size(), 2)}
                                       : random_box(rng, chunk, box_shape);
              const std::vector<float> want = reference(enc, type, chunk, box_shape, b, -7.0f);
              std::vector<float> got(want.size(), -7.0f);
              REQUIRE(scatter(h, enc, 0, enc, type, chunk, box_shape, b, got).has_value());
              CHECK(same_bits(got, want));
              // From the stored span of the blocks holding the overlap's dim-0 rows alone, in a
              // buffer of exactly that size.
              const size_t row = size_t(nd::count(std::span(chunk).subspan(1)) * type.size);
              const auto span = codec::blosc_block_span(h, std::span(enc).first(h.layout_bytes()), size_t(b.src[0]) * row,
                                                        size_t(b.extent[0]) * row, "k");
              REQUIRE(span.has_value());
              const Bytes blocks(enc.begin() + ptrdiff_t(span->first), enc.begin() + ptrdiff_t(span->second));
              std::vector<float> from_blocks(want.size(), -7.0f);
              REQUIRE(scatter(h, std::span(enc).first(h.layout_bytes()), span->first, blocks, type, chunk, box_shape, b,
                              from_blocks)
                          .has_value());
              CHECK(same_bits(from_blocks, want));
              // The same blocks cut short: an error naming the chunk, never a read past them.
              if (blocks.size() > 1 && span->second < h.cbytes) {
                std::vector<float> cut(want.size());
                expect_error([&] {
                  scatter(h, std::span(enc).first(h.layout_bytes()), span->first, std::span(blocks).first(blocks.size() / 2),
                          type, chunk, box_shape, b, cut);
                },
                             {"blosc", "a/c/0"});
              }
              ++checked;
            }
          }
  INFO(split << " split and " << unsplit << " unsplit chunks");
  CHECK(split > 0);    // lz4 splits blocks into byte planes ...
  CHECK(unsplit > 0);  // ... zstd and zlib do not
  CHECK(checked > 500);
}

TEST_CASE("blosc_scatter leaves bit shuffle, blosclz and memcpyed chunks to libblosc, writing nothing", "[io][zarr]") {
  const DataType f4{Kind::Float, 4, false};
  const std::vector<int64_t> chunk{8, 16, 16};
  const Bytes data = sample_chunk(f4, size_t(nd::count(chunk)), 1);
  const Box b{{0, 0, 0}, chunk, {0, 0, 0}};
  for (const auto& [cname, clevel, shuffle] : {std::tuple{"zstd", 5, 2}, std::tuple{"blosclz", 5, 1}, std::tuple{"zstd", 0, 1}}) {
    INFO(cname << " clevel " << clevel << " shuffle " << shuffle);
    const Bytes enc = codec::blosc_encode(data, cname, clevel, shuffle, 4, 0);
    const codec::BloscHeader h = codec::blosc_header(enc, "k");
    std::vector<float> box(size_t(nd::count(chunk)), -7.0f);
    CHECK_FALSE(scatter(h, enc, 0, enc, f4, chunk, chunk, b, box).has_value());
    CHECK(box == std::vector<float>(box.size(), -7.0f));
  }
  // Another decoded size than the chunk's, or a typesize other than the element's with shuffle.
  const Bytes enc = codec::blosc_encode(data, "zstd", 5, 1, 4, 0);
  const codec::BloscHeader h = codec::blosc_header(enc, "k");
  std::vector<float> box(size_t(nd::count(chunk)));
  const std::vector<int64_t> bigger{9, 16, 16};
  CHECK_FALSE(scatter(h, enc, 0, enc, f4, bigger, bigger, b, box).has_value());
  const Bytes bytes2 = codec::blosc_encode(data, "zstd", 5, 1, 2, 0);
  REQUIRE((codec::blosc_header(bytes2, "k").flags & 0x1) != 0);
  CHECK_FALSE(scatter(codec::blosc_header(bytes2, "k"), bytes2, 0, bytes2, f4, chunk, chunk, b, box).has_value());
}

TEST_CASE("blosc_scatter refuses corrupt chunks with an error naming them", "[io][zarr]") {
  const DataType f4{Kind::Float, 4, false};
  const std::vector<int64_t> chunk{64, 32, 32};
  const Bytes data = sample_chunk(f4, size_t(nd::count(chunk)), 2);
  const Box b{{0, 0, 0}, chunk, {0, 0, 0}};
  for (const char* cname : {"zstd", "lz4"}) {
    INFO(cname);
    const Bytes enc = codec::blosc_encode(data, cname, 5, 1, 4, 8192);
    const codec::BloscHeader h = codec::blosc_header(enc, "k");
    REQUIRE(h.blocks() >= 4);
    const size_t victim = h.blocks() / 2, block_bytes = h.blocksize;
    std::vector<float> box(size_t(nd::count(chunk)));
    // A block offset past the end, or into the header and offsets.
    for (const uint32_t bad : {uint32_t(h.cbytes), 0xFFFFFFF0u, uint32_t(3)}) {
      Bytes broken = enc;
      codec::store_le32(broken.data() + codec::kBloscHeaderBytes + 4 * victim, bad);
      expect_error([&] { scatter(h, broken, 0, broken, f4, chunk, chunk, b, box, "store key 'x/c/1'"); },
                   {"blosc", "x/c/1", "block " + std::to_string(victim)});
    }
    // A stream size past the stored bytes.
    Bytes long_stream = enc;
    const size_t at = codec::load_le32(enc.data() + codec::kBloscHeaderBytes + 4 * victim);
    codec::store_le32(long_stream.data() + at, uint32_t(enc.size()));
    expect_error([&] { scatter(h, long_stream, 0, long_stream, f4, chunk, chunk, b, box, "store key 'x/c/1'"); },
                 {"blosc", "x/c/1", "runs past"});
    // Compressed bytes that do not decode to the stream's size (the victim block's first stream that
    // blosc compressed: a raw one has no format to break).
    const size_t streams = (h.flags & 0x10) ? 1 : 4, stream_bytes = block_bytes / streams;
    size_t pos = at, stream = 0;
    while (codec::load_le32(enc.data() + pos) == stream_bytes) {
      pos += 4 + stream_bytes;
      ++stream;
    }
    REQUIRE(stream < streams);
    Bytes garbled = enc;
    for (size_t i = pos + 4; i < pos + 64; ++i) garbled[i] = std::byte(0xA5);
    expect_error([&] { scatter(h, garbled, 0, garbled, f4, chunk, chunk, b, box, "store key 'x/c/1'"); },
                 {"blosc", "x/c/1", "block " + std::to_string(victim) + " stream " + std::to_string(stream), "corrupt chunk"});
  }
}
