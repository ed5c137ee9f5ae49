// Tests of io/zarr/codecs.hpp and io/zarr/pipeline.hpp: each codec round-trips, decodes what the
// C libraries' other framings produce (zstd without content size), and refuses corrupt, truncated or
// oversized input with an error naming the place; the v3 pipeline (transpose, bytes endianness,
// sharding with missing inner chunks, nested sharding, crc32c) round-trips; blosc decodes a byte
// range of a chunk alone, from the whole chunk or from its header, offsets and blocks, and refuses
// offsets that point outside the chunk; codec fields of the wrong JSON type are named in sfm's words.
#include <numeric>
#include <random>

#include "sfm/io/zarr/pipeline.hpp"
#include "test_zarr_support.hpp"

using namespace sfm::io::zarr;
using sfm::zarr_test::expect_error;

namespace {

Bytes sample_bytes(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte(i % 7 == 0 ? rng() & 0xff : (i / 13) & 0xff);
  return b;
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value", "[io][zarr]") {
  const std::string check = "123456789";
  CHECK(codec::crc32c(std::as_bytes(std::span(check.data(), check.size()))) == 0xE3069283u);
  const Bytes data = sample_bytes(1000);
  const Bytes framed = codec::crc32c_encode(data);
  CHECK(framed.size() == 1004);
  CHECK(codec::crc32c_decode(framed, "k") == data);
  Bytes bad = framed;
  bad[10] ^= std::byte{1};
  expect_error([&] { codec::crc32c_decode(bad, "store key 'a/c/0'"); }, {"checksum mismatch", "a/c/0"});
  expect_error([&] { codec::crc32c_decode(Bytes(3), "k"); }, {"too short"});
}

TEST_CASE("compressors round-trip and refuse corrupt input", "[io][zarr]") {
  const Bytes data = sample_bytes(50000);
  const size_t limit = data.size();
  SECTION("blosc, every compressor and shuffle") {
    for (const char* cname : {"lz4", "lz4hc", "zstd", "zlib", "blosclz"})
      for (int shuffle : {0, 1, 2}) {
        INFO(cname << " shuffle " << shuffle);
        const Bytes enc = codec::blosc_encode(data, cname, 5, shuffle, 4);
        CHECK(codec::blosc_decode(enc, limit, "k") == data);
        expect_error([&] { codec::blosc_decode(std::span(enc).first(enc.size() / 2), limit, "the/key"); }, {"blosc", "the/key"});
        expect_error([&] { codec::blosc_decode(enc, limit - 1, "k"); }, {"more than the expected"});
      }
    expect_error([&] { codec::blosc_decode(sample_bytes(100), limit, "junk"); }, {"blosc", "junk"});
  }
  SECTION("zstd, with and without content size in the frame") {
    const Bytes enc = codec::zstd_encode(data, 3, true);
    CHECK(codec::zstd_decode(enc, limit, "k") == data);
    // A streamed frame: no content size.
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(ctx, ZSTD_c_contentSizeFlag, 0);
    Bytes streamed(ZSTD_compressBound(data.size()));
    ZSTD_outBuffer out{streamed.data(), streamed.size(), 0};
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    REQUIRE(ZSTD_compressStream2(ctx, &out, &in, ZSTD_e_end) == 0);
    ZSTD_freeCCtx(ctx);
    streamed.resize(out.pos);
    REQUIRE(ZSTD_getFrameContentSize(streamed.data(), streamed.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
    CHECK(codec::zstd_decode(streamed, limit, "k") == data);
    expect_error([&] { codec::zstd_decode(streamed, limit - 10, "k"); }, {"exceeds"});
    expect_error([&] { codec::zstd_decode(std::span(streamed).first(streamed.size() - 8), limit, "trunc/key"); },
                 {"zstd", "trunc/key"});
    expect_error([&] { codec::zstd_decode(std::span(enc).first(enc.size() - 8), limit, "trunc/key"); }, {"zstd", "trunc/key"});
    expect_error([&] { codec::zstd_decode(sample_bytes(64), limit, "junk"); }, {"zstd", "junk"});
    // Two frames back to back decode to the concatenation.
    Bytes two = codec::zstd_encode(std::span(data).first(1000), 1, false);
    const Bytes second = codec::zstd_encode(std::span(data).subspan(1000), 1, false);
    two.insert(two.end(), second.begin(), second.end());
    CHECK(codec::zstd_decode(two, limit, "k") == data);
  }
  SECTION("zlib and gzip") {
    for (bool gzip : {false, true}) {
      const Bytes enc = codec::zlib_encode(data, 6, gzip);
      CHECK(codec::zlib_decode(enc, limit, gzip, "k") == data);
      expect_error([&] { codec::zlib_decode(std::span(enc).first(enc.size() / 2), limit, gzip, "half"); }, {"truncated", "half"});
      expect_error([&] { codec::zlib_decode(enc, limit / 2, gzip, "k"); }, {"exceeds"});
      expect_error([&] { codec::zlib_decode(enc, limit, !gzip, "wrong"); }, {"wrong"});
    }
  }
  SECTION("lz4 (numcodecs framing)") {
    const Bytes enc = codec::lz4_encode(data, 1);
    CHECK(codec::load_le32(enc.data()) == data.size());
    CHECK(codec::lz4_decode(enc, limit, "k") == data);
    expect_error([&] { codec::lz4_decode(std::span(enc).first(enc.size() / 2), limit, "half"); }, {"lz4", "half"});
    expect_error([&] { codec::lz4_decode(enc, limit - 1, "k"); }, {"more than the expected"});
    expect_error([&] { codec::lz4_decode(Bytes(2), limit, "k"); }, {"too short"});
  }
}

TEST_CASE("blosc decodes a byte range alone, equal to the slice of the whole chunk", "[io][zarr]") {
  // 50 000 bytes in 4 KiB blocks: 13 blocks, the last a partial one.
  const Bytes data = sample_bytes(50000, 3);
  for (const char* cname : {"lz4", "zstd", "zlib", "blosclz"})
    for (int shuffle : {0, 1, 2}) {
      INFO(cname << " shuffle " << shuffle);
      const Bytes enc = codec::blosc_encode(data, cname, 5, shuffle, 4, 4096);
      for (const auto& [offset, size] : {std::pair<size_t, size_t>{0, 50000}, {0, 4}, {4096, 4096}, {4092, 8},
                                        {12000, 20000}, {49996, 4}, {45056, 4944}, {0, 0}}) {
        INFO("bytes [" << offset << ", " << offset + size << ")");
        Bytes part(size);
        REQUIRE(codec::blosc_decode_range_into(enc, data.size(), offset, part, "k"));
        CHECK(part == Bytes(data.begin() + ptrdiff_t(offset), data.begin() + ptrdiff_t(offset + size)));
      }
      Bytes part(8);
      CHECK_FALSE(codec::blosc_decode_range_into(enc, data.size(), 2, part, "k"));      // not whole elements
      CHECK_FALSE(codec::blosc_decode_range_into(enc, data.size() + 4, 0, part, "k"));  // another decoded size
      expect_error([&] { codec::blosc_decode_range_into(enc, data.size(), 49996, part, "k"); }, {"outside"});
      expect_error([&] { codec::blosc_decode_range_into(std::span(enc).first(enc.size() / 2), data.size(), 0, part, "half"); },
                   {"blosc", "half"});
    }
  // A pipeline decodes a range alone only when blosc is its one bytes→bytes codec on native bytes.
  const FillValue fill;
  const std::vector<int64_t> shape{10, 50, 25};
  const Bytes chunk = sample_bytes(size_t(10 * 50 * 25 * 4), 5);
  const json blosc = {{"name", "blosc"},
                      {"configuration", {{"cname", "zstd"}, {"clevel", 3}, {"shuffle", "shuffle"}, {"typesize", 4}, {"blocksize", 2048}}}};
  const auto f32 = DataType{Kind::Float, 4, false};
  const auto p = Pipeline::from_v3(json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}, blosc}), f32, fill, "w");
  Bytes rows(size_t(3 * 50 * 25 * 4));
  REQUIRE(p->decode_range_into(p->encode(chunk, shape), shape, size_t(4 * 50 * 25 * 4), rows, "w"));
  CHECK(rows == Bytes(chunk.begin() + 4 * 50 * 25 * 4, chunk.begin() + 7 * 50 * 25 * 4));
  const auto big = Pipeline::from_v3(json::array({{{"name", "bytes"}, {"configuration", {{"endian", "big"}}}}, blosc}), f32, fill, "w");
  CHECK_FALSE(big->decode_range_into(big->encode(chunk, shape), shape, 0, rows, "w"));
  const auto crc = Pipeline::from_v3(json::array({{{"name", "bytes"}}, blosc, {{"name", "crc32c"}}}), f32, fill, "w");
  CHECK_FALSE(crc->decode_range_into(crc->encode(chunk, shape), shape, 0, rows, "w"));
}

TEST_CASE("blosc decodes a byte range from its header, offsets and blocks alone", "[io][zarr]") {
  const Bytes data = sample_bytes(50000, 3);
  for (const char* cname : {"lz4", "zstd", "blosclz"})
    for (int shuffle : {0, 1, 2})
      for (int typesize : {1, 2, 4, 8}) {
        INFO(cname << " shuffle " << shuffle << " typesize " << typesize);
        const Bytes enc = codec::blosc_encode(data, cname, 5, shuffle, typesize, 4096);
        const codec::BloscHeader h = codec::blosc_header(enc, "k");
        REQUIRE(h.nbytes == data.size());
        REQUIRE(h.cbytes == enc.size());
        REQUIRE(h.blocks() >= 1);  // blosc enlarges the blocks of codecs it splits by typesize
        if (h.memcpyed()) {  // blosc stored it as is: no offsets to go by
          CHECK_FALSE(codec::blosc_decodes_part(h, data.size(), 0, 8));
          continue;
        }
        const ByteView layout = std::span(enc).first(h.layout_bytes());
        for (const auto& range : {std::pair<size_t, size_t>{0, 50000}, {0, 8}, {4096, 4096}, {4088, 16},
                                  {12000, 20000}, {49992, 8}, {45056, 4944}}) {
          const size_t offset = range.first, size = range.second;  // captured below: no structured binding (clang 14)
          INFO("bytes [" << offset << ", " << offset + size << ")");
          REQUIRE(codec::blosc_decodes_part(h, data.size(), offset, size));
          const auto span = codec::blosc_block_span(h, layout, offset, size, "k");
          REQUIRE(span.has_value());
          CHECK(span->first >= h.layout_bytes());
          CHECK(span->second <= enc.size());
          const Bytes blocks(enc.begin() + ptrdiff_t(span->first), enc.begin() + ptrdiff_t(span->second));
          Bytes part(size);
          codec::blosc_decode_blocks_into(h, layout, span->first, blocks, offset, part, "k");
          CHECK(part == Bytes(data.begin() + ptrdiff_t(offset), data.begin() + ptrdiff_t(offset + size)));
          // Blocks cut short: an error, never a read past them.
          if (blocks.size() > 1)
            expect_error([&] { codec::blosc_decode_blocks_into(h, layout, span->first, std::span(blocks).first(blocks.size() - 1), offset, part, "cut"); },
                         {"blosc", "cut"});
        }
        CHECK_FALSE(codec::blosc_decodes_part(h, data.size() + 8, 0, 8));  // another decoded size
        if (typesize > 1) CHECK_FALSE(codec::blosc_decodes_part(h, data.size(), 1, 8));
      }
  const Bytes enc = codec::blosc_encode(data, "zstd", 5, 1, 4, 4096);
  const codec::BloscHeader h = codec::blosc_header(enc, "k");
  REQUIRE(h.blocks() == 13);
  // An offset outside the chunk's blocks (past its end, into its header, negative as int32): an error
  // naming the place and the block.
  for (const uint32_t bad : {uint32_t(h.cbytes), uint32_t(h.cbytes + 1000), uint32_t(20), 0xFFFFFFFCu}) {
    Bytes broken = enc;
    codec::store_le32(broken.data() + 16 + 4 * 3, bad);
    expect_error([&] { codec::blosc_block_span(h, broken, 3 * 4096 + 100, 8, "store key 'a/c/0'"); },
                 {"corrupt offset table", "a/c/0", "block 3"});
    expect_error([&] { codec::blosc_block_span(h, broken, 2 * 4096 + 100, 4096, "store key 'a/c/0'"); },
                 {"corrupt offset table", "block 3"});  // block 3's start ends block 2's span
  }
  // Blocks out of order: no span (the caller decodes the whole chunk, whose decoder checks them).
  Bytes swapped = enc;
  std::swap_ranges(swapped.begin() + 16 + 4 * 3, swapped.begin() + 16 + 4 * 4, swapped.begin() + 16 + 4 * 4);
  CHECK_FALSE(codec::blosc_block_span(h, swapped, 3 * 4096, 8192, "k").has_value());
  // Offsets that name bytes the caller did not fetch are refused before blosc reads them.
  Bytes part(8);
  expect_error([&] { codec::blosc_decode_blocks_into(h, enc, h.layout_bytes() + 1, ByteView(enc).subspan(h.layout_bytes() + 1), 0, part, "k"); },
               {"outside the fetched bytes"});
  expect_error([&] { codec::blosc_block_span(h, ByteView(enc).first(20), 0, 8, "k"); }, {"header and offsets"});
  // Headers: too short, inconsistent sizes; memcpyed chunks (clevel 0) hold no offsets to go by.
  expect_error([&] { codec::blosc_header(ByteView(enc).first(10), "short"); }, {"shorter than a blosc header", "short"});
  Bytes zero_block = enc;
  codec::store_le32(zero_block.data() + 8, 0);
  expect_error([&] { codec::blosc_header(zero_block, "k"); }, {"corrupt blosc header"});
  Bytes tiny = enc;
  codec::store_le32(tiny.data() + 12, 20);  // cbytes smaller than header and offsets
  expect_error([&] { codec::blosc_header(tiny, "k"); }, {"corrupt blosc header"});
  const codec::BloscHeader copied = codec::blosc_header(codec::blosc_encode(data, "zstd", 0, 1, 4, 4096), "k");
  CHECK(copied.memcpyed());
  CHECK(copied.layout_bytes() == 16);
  CHECK_FALSE(codec::blosc_decodes_part(copied, data.size(), 0, 8));
}

TEST_CASE("v3 pipelines round-trip: transpose, endianness, sharding, crc32c", "[io][zarr]") {
  const DataType i4{Kind::Int, 4, false};
  FillValue fill;
  fill.kind = Kind::Int;
  fill.i = -1;
  const std::vector<int64_t> shape{4, 6, 5};
  std::vector<int32_t> values(120);
  std::iota(values.begin(), values.end(), 0);
  const auto raw = std::as_bytes(std::span(values));
  const auto check = [&](const json& codecs) {
    INFO(codecs.dump());
    auto p = Pipeline::from_v3(codecs, i4, fill, "test");
    const Bytes enc = p->encode(raw, shape);
    const Bytes dec = p->decode(enc, shape, "test");
    CHECK(std::equal(dec.begin(), dec.end(), raw.begin(), raw.end()));
    return enc;
  };
  check(json::parse(R"([{"name": "bytes", "configuration": {"endian": "little"}}])"));
  const Bytes big = check(json::parse(R"([{"name": "bytes", "configuration": {"endian": "big"}}])"));
  CHECK(big[3] == std::byte{0});
  CHECK(big[7] == std::byte{1});  // element 1, big-endian
  const Bytes tr = check(json::parse(R"([{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, {"name": "bytes"}])"));
  int32_t second;
  std::memcpy(&second, tr.data() + 4, 4);
  CHECK(second == 5);  // encoded dim 2 of the decoded array, i.e. decoded[0][1][0] = 5
  check(json::parse(R"([{"name": "bytes"}, {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
    "shuffle": "bitshuffle", "typesize": 4, "blocksize": 0}}, {"name": "crc32c"}])"));
  check(json::parse(R"([{"name": "bytes"}, {"name": "gzip", "configuration": {"level": 1}}, {"name": "zstd",
    "configuration": {"level": 1, "checksum": true}}])"));
  check(json::parse(R"([{"name": "bytes"}, {"name": "numcodecs.zlib", "configuration": {"level": 1}},
    {"name": "numcodecs.lz4"}])"));
  for (const char* loc : {"start", "end"}) {
    json sh = json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 3, 5],
      "codecs": [{"name": "transpose", "configuration": {"order": [1, 0, 2]}}, {"name": "bytes"}, {"name": "zstd"}],
      "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}]}}])");
    sh[0]["configuration"]["index_location"] = loc;
    check(sh);
  }
  // Nested sharding.
  check(json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 6, 5], "codecs": [
    {"name": "sharding_indexed", "configuration": {"chunk_shape": [1, 3, 5], "codecs": [{"name": "bytes"}]}}]}}])"));
  // Inner chunks equal to the fill value are not stored, and read back as fill.
  std::vector<int32_t> sparse(120, -1);
  sparse[0] = 7;
  auto p = Pipeline::from_v3(json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 3, 5],
      "codecs": [{"name": "bytes"}]}}])"), i4, fill, "test");
  const Bytes enc = p->encode(std::as_bytes(std::span(sparse)), shape);
  CHECK(enc.size() == 2 * 3 * 5 * 4 + 4 * 16 + 4);  // one inner chunk + index + crc
  const Bytes dec = p->decode(enc, shape, "test");
  CHECK(std::memcmp(dec.data(), sparse.data(), dec.size()) == 0);
}

TEST_CASE("pipelines refuse unknown codecs and corrupt data, naming them", "[io][zarr]") {
  const DataType f4{Kind::Float, 4, false};
  FillValue fill;
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "bytes"}, {"name": "bz2"}])"), f4, fill, "a/zarr.json"); },
               {"unsupported", "bz2", "a/zarr.json"});
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "numcodecs.delta", "configuration": {"dtype": "<f4"}},
      {"name": "bytes"}])"), f4, fill, "x"); }, {"unsupported", "numcodecs.delta"});
  CHECK_NOTHROW(Pipeline::from_v3(json::parse(R"([{"name": "bytes"}, {"name": "future", "must_understand": false}])"), f4, fill, "x"));
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "zstd"}, {"name": "bytes"}])"), f4, fill, "x"); },
               {"out of place"});
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "transpose", "configuration": {"order": [0, 0]}},
      {"name": "bytes"}])"), f4, fill, "x"); }, {"permutation"});
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "blosc", "configuration": {"cname": "zstd"}}])"), f4, fill, "x"); },
               {"out of place"});
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "bytes"}, {"name": "blosc", "configuration": {"cname": "lzma"}}])"),
                                       f4, fill, "x"); }, {"unsupported", "lzma"});
  expect_error([&] { Pipeline::from_v3(json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [2],
      "index_codecs": [{"name": "bytes"}, {"name": "zstd"}]}}])"), f4, fill, "x"); }, {"unsupported", "index"});
  // A field of the wrong JSON type is named, in sfm's words (expect_error refuses nlohmann's text).
  const auto v3_error = [&](const char* codecs, const std::string& text) {
    expect_error([&] { Pipeline::from_v3(json::parse(codecs), f4, fill, "c/zarr.json"); }, {text});
  };
  v3_error(R"([{"name": 5}])", "c/zarr.json: codec: 'name': expected a string, got 5");
  v3_error(R"([{"name": "bytes", "configuration": {"endian": 1}}])", "c/zarr.json: bytes codec: 'endian': expected a string");
  v3_error(R"([{"name": "bytes"}, {"name": "blosc", "configuration": {"cname": 2}}])", "c/zarr.json: blosc: 'cname'");
  v3_error(R"([{"name": "bytes"}, {"name": "blosc", "configuration": {"cname": "lz4", "shuffle": 1.5}}])",
           "c/zarr.json: blosc 'shuffle': expected a string, got 1.5");
  v3_error(R"([{"name": "bytes"}, {"name": "zstd", "configuration": {"checksum": "yes"}}])",
           "c/zarr.json: zstd: 'checksum': expected true or false, got \"yes\"");
  v3_error(R"([{"name": "bytes"}, {"name": "future", "must_understand": "no"}])",
           "c/zarr.json: codec 'future': 'must_understand': expected true or false");
  v3_error(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [2], "index_location": 0}}])",
           "c/zarr.json: sharding_indexed: 'index_location': expected a string, got 0");
  ArrayMetadata v2;
  v2.zarr_format = 2;
  v2.dtype = f4;
  v2.compressor = {{"id", 7}};
  expect_error([&] { Pipeline::from_v2(v2, "d/.zarray"); }, {"d/.zarray: compressor 'id': expected a string, got 7"});
  v2.compressor = nullptr;
  v2.filters = json::array({{{"id", false}}});
  expect_error([&] { Pipeline::from_v2(v2, "d/.zarray"); }, {"d/.zarray: filters: 'id': expected a string, got false"});

  const std::vector<int64_t> shape{8, 8};
  std::vector<float> values(64, 1.5f);
  auto plain = Pipeline::from_v3(json::parse(R"([{"name": "bytes"}, {"name": "zstd"}])"), f4, fill, "x");
  Bytes enc = plain->encode(std::as_bytes(std::span(values)), shape);
  const std::vector<int64_t> other{8, 9};
  expect_error([&] { plain->decode(enc, other, "file:///s key 'a/c/0/0'"); }, {"a/c/0/0", "expected 288"});
  auto raw = Pipeline::from_v3(json::parse(R"([{"name": "bytes"}])"), f4, fill, "x");
  expect_error([&] { raw->decode(Bytes(100), shape, "key 'r/c/1/1'"); }, {"r/c/1/1", "expected 256"});
  // Shards: truncated index, entries pointing outside the shard, checksum mismatch.
  auto sharded = Pipeline::from_v3(json::parse(R"([{"name": "sharding_indexed", "configuration": {"chunk_shape": [4, 4],
      "codecs": [{"name": "bytes"}]}}])"), f4, fill, "x");
  Bytes shard = sharded->encode(std::as_bytes(std::span(values)), shape);
  expect_error([&] { sharded->decode(std::span(shard).first(40), shape, "key 's/c/0/0'"); }, {"s/c/0/0", "truncated shard"});
  Bytes moved = shard;
  moved[moved.size() - 4 - 64] = std::byte{0xff};  // first index entry's offset, low byte
  expect_error([&] { sharded->decode(moved, shape, "key 's/c/0/0'"); }, {"s/c/0/0", "checksum mismatch"});
  // The same corruption with the checksum recomputed: the entry points outside the shard.
  const size_t index_at = shard.size() - 4 - 64;
  Bytes index(moved.begin() + index_at, moved.end() - 4);
  const uint32_t crc = codec::crc32c(index);
  codec::store_le32(moved.data() + moved.size() - 4, crc);
  moved[index_at + 1] = std::byte{0xff};
  codec::store_le32(moved.data() + moved.size() - 4, codec::crc32c(std::span(moved).subspan(index_at, 64)));
  expect_error([&] { sharded->decode(moved, shape, "key 's/c/0/0'"); }, {"s/c/0/0", "outside"});
}
