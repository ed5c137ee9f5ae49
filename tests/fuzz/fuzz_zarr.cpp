// libFuzzer target for the Zarr format code: metadata parsing and chunk decoding on arbitrary bytes.
//
// The first input byte picks what the rest is:
//   0  a metadata document (.zarray, v3 zarr.json array or group): parsed, its codec pipeline
//      built, a chunk key made and the document written back;
//   1  a stored chunk: decoded (into a buffer, the general way, and two rows of it alone, from the
//      whole chunk and, for blosc, from its header, offsets and the blocks they name, as a network
//      read fetches them, and by blosc_scatter straight into a box) by one of a fixed set of pipelines (every codec, blosc in several blocks,
//      sharding with a crc32c index, transpose, big endian), the second byte choosing which;
//   2  a document, a NUL byte, then a chunk: the document opened as an array in a MemoryStore that
//      holds the chunk under each of the array's (few) chunk keys, the whole array read, and a box
//      that cuts the first chunk row read with the cache off (parts of chunks read and decoded: a
//      lone blosc codec's header and offsets first, then the blocks they name).
// Every failure must be an sfm::Error; anything else escapes and libFuzzer reports it as a crash,
// as it does memory errors (AddressSanitizer) and undefined behaviour (UBSan).
//
// With SFM_FUZZ_WRITE_SEEDS=DIR the binary writes a seed corpus (valid documents and chunks that
// sfm's writer makes, in all three modes) into DIR and exits; tests/fuzz/run.sh starts from it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/store_memory.hpp"
#include "sfm/io/thread_pool.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/blosc_scatter.hpp"
#include "sfm/io/zarr/group.hpp"
#include "sfm/io/zarr/metadata.hpp"
#include "sfm/io/zarr/pipeline.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace {

namespace zarr = sfm::io::zarr;
using zarr::json;

// Reads in the calling thread only: deterministic, and no pool threads to trip the sanitizers.
sfm::io::ThreadPool& inline_pool() {
  static sfm::io::ThreadPool pool(0);
  return pool;
}

// Decoding allocates the chunk's size: keep fuzzed shapes small enough not to run out of memory.
constexpr int64_t kMaxElements = int64_t(1) << 16;

bool small(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t e : shape) {
    if (e > kMaxElements) return false;
    n *= std::max<int64_t>(e, 1);
    if (n > kMaxElements) return false;
  }
  return true;
}

json parse(std::string_view text) { return json::parse(text.begin(), text.end(), nullptr, false); }

zarr::ArrayMetadata parse_array(const json& doc) {
  if (doc.is_object() && doc.contains("zarr_format") && doc["zarr_format"] == 2)
    return zarr::parse_v2_array(doc, json::object(), "fuzz .zarray");
  return zarr::parse_v3_array(doc, "fuzz zarr.json");
}

void metadata(std::string_view text) {
  const json doc = parse(text);
  if (doc.is_discarded()) return;
  if (doc.is_object() && doc.contains("node_type") && doc["node_type"] == "group") {
    zarr::parse_v3_group(doc, "fuzz group");
    return;
  }
  const zarr::ArrayMetadata m = parse_array(doc);
  zarr::Pipeline::for_array(m, "fuzz");
  std::vector<int64_t> index(m.rank(), 1);
  (void)m.chunk_key(index);
  (void)m.to_json().dump();
}

// Pipelines for mode 1: v2 and v3 codec lists over a 4×6×5 chunk.
const std::vector<std::shared_ptr<const zarr::Pipeline>>& pipelines() {
  static const auto list = [] {
    std::vector<std::shared_ptr<const zarr::Pipeline>> out;
    const auto v2 = [&](const std::string& dtype, const json& compressor, const json& filters, const std::string& order) {
      const json doc{{"zarr_format", 2}, {"shape", {8, 12, 10}}, {"chunks", {4, 6, 5}}, {"dtype", dtype},
                     {"fill_value", 0}, {"order", order}, {"compressor", compressor}, {"filters", filters}};
      out.push_back(zarr::Pipeline::for_array(zarr::parse_v2_array(doc, json::object(), "fuzz"), "fuzz"));
    };
    v2("<f4", {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}}, nullptr, "C");
    v2("<i2", {{"id", "blosc"}, {"cname", "zstd"}, {"clevel", 3}, {"shuffle", 2}}, nullptr, "F");
    v2(">f8", {{"id", "zstd"}, {"level", 1}}, nullptr, "C");
    v2("<u4", {{"id", "zlib"}, {"level", 1}}, nullptr, "C");
    v2("<f2", {{"id", "gzip"}, {"level", 1}}, nullptr, "C");
    v2("|u1", {{"id", "lz4"}, {"acceleration", 1}}, nullptr, "C");
    v2("<f4", nullptr, json::array({{{"id", "shuffle"}, {"elementsize", 4}}}), "C");
    const auto v3 = [&](const std::string& dtype, const json& codecs, const std::vector<int64_t>& chunks) {
      const json doc{{"zarr_format", 3},
                     {"node_type", "array"},
                     {"shape", {8, 12, 10}},
                     {"data_type", dtype},
                     {"chunk_grid", {{"name", "regular"}, {"configuration", {{"chunk_shape", chunks}}}}},
                     {"chunk_key_encoding", {{"name", "default"}}},
                     {"fill_value", 0},
                     {"codecs", codecs}};
      out.push_back(zarr::Pipeline::for_array(zarr::parse_v3_array(doc, "fuzz"), "fuzz"));
    };
    const json bytes_le{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}};
    const json bytes_be{{"name", "bytes"}, {"configuration", {{"endian", "big"}}}};
    v3("float32", json::array({bytes_le, {{"name", "blosc"}, {"configuration", {{"cname", "zstd"}, {"clevel", 5},
                                                                                {"shuffle", "shuffle"}, {"typesize", 4}}}}}),
       {4, 6, 5});
    v3("float32", json::array({bytes_le, {{"name", "blosc"}, {"configuration", {{"cname", "lz4"}, {"clevel", 5},
                                                                                {"shuffle", "bitshuffle"}, {"typesize", 4},
                                                                                {"blocksize", 128}}}}}),
       {4, 6, 5});
    v3("int32", json::array({{{"name", "transpose"}, {"configuration", {{"order", {2, 0, 1}}}}}, bytes_be,
                             {{"name", "gzip"}, {"configuration", {{"level", 1}}}}}),
       {4, 6, 5});
    v3("uint16", json::array({bytes_le, {{"name", "zstd"}, {"configuration", {{"level", 1}}}}, {{"name", "crc32c"}}}),
       {4, 6, 5});
    for (const std::string location : {"end", "start"})
      v3("float32",
         json::array({{{"name", "sharding_indexed"},
                       {"configuration", {{"chunk_shape", {2, 3, 5}},
                                          {"codecs", json::array({bytes_le, {{"name", "zstd"}, {"configuration", {{"level", 1}}}}})},
                                          {"index_codecs", json::array({bytes_le, {{"name", "crc32c"}}})},
                                          {"index_location", location}}}}}),
         {4, 6, 5});
    return out;
  }();
  return list;
}

void chunk(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const auto& list = pipelines();
  const zarr::Pipeline& p = *list[size_t(bytes[0]) % list.size()];
  const std::vector<int64_t> shape{4, 6, 5};
  std::vector<std::byte> out(size_t(zarr::nd::count(shape) * p.dtype().size));
  try {
    p.decode_into(bytes.subspan(1), shape, out, "fuzz chunk");
  } catch (const sfm::Error&) {
    // The general decode below must refuse the same input on its own.
  }
  p.decode(bytes.subspan(1), shape, "fuzz chunk");
  // Rows 1 and 2 alone (blosc: only the blocks holding them) decode or are refused just as safely.
  const size_t row = out.size() / size_t(shape[0]);
  try {
    p.decode_range_into(bytes.subspan(1), shape, row, std::span(out).subspan(row, 2 * row), "fuzz chunk rows");
  } catch (const sfm::Error&) {
  }
  // The same rows from the header, offsets and blocks alone, each part cut from the input as a
  // network read would fetch it (into buffers of exactly its size, so ASan sees any read past them).
  if (p.lone_blosc()) {
    try {
      const auto encoded = bytes.subspan(1);
      const zarr::codec::BloscHeader h = zarr::codec::blosc_header(encoded, "fuzz blosc header");
      if (encoded.size() >= h.layout_bytes() && zarr::codec::blosc_decodes_part(h, out.size(), row, 2 * row)) {
        const zarr::Bytes layout(encoded.begin(), encoded.begin() + ptrdiff_t(h.layout_bytes()));
        if (const auto span = zarr::codec::blosc_block_span(h, layout, row, 2 * row, "fuzz blosc offsets")) {
          const size_t end = std::min(span->second, encoded.size());  // the server sends what there is
          const zarr::Bytes blocks(encoded.begin() + ptrdiff_t(std::min(span->first, end)), encoded.begin() + ptrdiff_t(end));
          zarr::codec::blosc_decode_blocks_into(h, layout, span->first, blocks, row, std::span(out).subspan(row, 2 * row),
                                                "fuzz blosc blocks");
        }
      }
    } catch (const sfm::Error&) {
    }
    // Rows 1 and 2, columns 1 to 3 of each, decoded straight into a box by blosc_scatter: from the
    // whole chunk, and from the blocks alone.
    try {
      const auto encoded = bytes.subspan(1);
      const zarr::codec::BloscHeader h = zarr::codec::blosc_header(encoded, "fuzz blosc header");
      if (encoded.size() >= h.layout_bytes()) {
        const std::vector<int64_t> src{1, 0, 1}, extent{2, 6, 3}, box_shape{2, 6, 3};
        std::vector<float> box(size_t(zarr::nd::count(box_shape)));
        const std::vector<int64_t> strides = zarr::nd::strides(box_shape);
        const zarr::ChunkOverlap part{shape, src, extent, box.data(), strides};
        const zarr::Bytes layout(encoded.begin(), encoded.begin() + ptrdiff_t(h.layout_bytes()));
        const zarr::Bytes whole(encoded.begin(), encoded.end());
        zarr::blosc_scatter(h, layout, 0, whole, p.dtype(), part, "fuzz scatter");
        if (zarr::codec::blosc_decodes_part(h, out.size(), row, 2 * row))
          if (const auto span = zarr::codec::blosc_block_span(h, layout, row, 2 * row, "fuzz scatter offsets")) {
            const size_t end = std::min(span->second, encoded.size());
            const zarr::Bytes blocks(encoded.begin() + ptrdiff_t(std::min(span->first, end)), encoded.begin() + ptrdiff_t(end));
            zarr::blosc_scatter(h, layout, span->first, blocks, p.dtype(), part, "fuzz scatter blocks");
          }
      }
    } catch (const sfm::Error&) {
    }
  }
  if (const auto* s = p.sharding()) {
    const size_t isize = zarr::Pipeline::index_nbytes(*s, shape);
    if (bytes.size() - 1 >= isize) zarr::Pipeline::decode_index(*s, bytes.subspan(1, isize), shape, "fuzz shard index");
  }
}

void array(std::string_view input) {
  const size_t nul = input.find('\0');
  if (nul == std::string_view::npos) return;
  const json doc = parse(input.substr(0, nul));
  if (doc.is_discarded()) return;
  const zarr::ArrayMetadata m = parse_array(doc);
  if (!small(m.shape) || !small(m.grid_chunks) || !small(m.chunk_shape())) return;
  std::vector<int64_t> grid(m.rank());
  for (size_t d = 0; d < m.rank(); ++d) grid[d] = m.shape[d] == 0 ? 0 : (m.shape[d] + m.grid_chunks[d] - 1) / m.grid_chunks[d];
  if (zarr::nd::count(grid) > 16) return;
  auto store = std::make_shared<sfm::io::MemoryStore>("fuzz");
  const std::string text = doc.dump();
  store->set(m.zarr_format == 3 ? "zarr.json" : ".zarray", std::as_bytes(std::span(text.data(), text.size())));
  const std::string_view body = input.substr(nul + 1);
  zarr::nd::for_each_index(grid, [&](std::span<const int64_t> index) {
    store->set(m.chunk_key(index), std::as_bytes(std::span(body.data(), body.size())));
  });
  zarr::ArrayOptions options;
  options.pool = &inline_pool();
  const zarr::Array a = zarr::Array::open(store, "", options);
  (void)a.read_all();
  // With the cache off, a box that starts inside the first chunk row decodes parts of chunks.
  if (m.rank() == 0 || m.shape[0] < 2) return;
  options.cache_bytes = 0;
  const zarr::Array uncached = zarr::Array::open(store, "", options);
  std::vector<int64_t> start(m.rank(), 0), box = m.shape;
  start[0] = 1;
  box[0] -= 1;
  (void)uncached.read_box(start, box);
}

// ---- the seed corpus ----------------------------------------------------------------------------

void write_seed(const std::filesystem::path& dir, const std::string& name, uint8_t mode, std::span<const std::byte> a,
                std::span<const std::byte> b = {}) {
  std::ofstream out(dir / name, std::ios::binary);
  out.put(char(mode));
  out.write(reinterpret_cast<const char*>(a.data()), std::streamsize(a.size()));
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Deterministic bytes that compress somewhat (a ramp with noise), `n` of them.
zarr::Bytes sample_bytes(size_t n, unsigned seed) {
  zarr::Bytes bytes(n);
  uint32_t state = 2463534242u + seed;
  for (size_t i = 0; i < n; ++i) {
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;
    bytes[i] = std::byte(((i / 7) + (state & 3)) & 0xff);
  }
  return bytes;
}

void write_seeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto& list = pipelines();
  const std::vector<int64_t> shape{4, 6, 5};
  for (size_t k = 0; k < list.size(); ++k) {
    const zarr::Bytes raw = sample_bytes(size_t(zarr::nd::count(shape) * list[k]->dtype().size), unsigned(k));
    zarr::Bytes encoded{std::byte(k)};
    const zarr::Bytes body = list[k]->encode(raw, shape);
    encoded.insert(encoded.end(), body.begin(), body.end());
    write_seed(dir, "chunk-" + std::to_string(k), 1, encoded);
  }
  struct Variant {
    int format;
    std::string compressor, cname;
    int shuffle;
    zarr::DataType dtype;
    char order;
    bool big_endian, crc32c, sharded;
  };
  using zarr::Kind;
  const zarr::DataType f32{Kind::Float, 4, false}, f64{Kind::Float, 8, false}, f16{Kind::Float, 2, false},
      i16{Kind::Int, 2, false}, u8{Kind::UInt, 1, false}, b1{Kind::Bool, 1, false};
  const std::vector<Variant> variants{
      {2, "blosc", "lz4", 1, f32, 'C', false, false, false},  {2, "blosc", "zstd", 2, i16, 'F', false, false, false},
      {2, "blosc", "zlib", 0, f64, 'C', true, false, false},  {2, "blosc", "blosclz", 1, u8, 'C', false, false, false},
      {2, "zstd", "", 0, f16, 'C', false, false, false},      {2, "gzip", "", 0, f32, 'F', true, false, false},
      {2, "zlib", "", 0, b1, 'C', false, false, false},       {2, "lz4", "", 0, i16, 'C', false, false, false},
      {2, "none", "", 0, f32, 'C', false, false, false},      {3, "blosc", "zstd", 1, f32, 'C', false, false, false},
      {3, "blosc", "lz4hc", 2, u8, 'C', false, true, false},  {3, "zstd", "", 0, f64, 'C', true, true, false},
      {3, "gzip", "", 0, i16, 'C', false, false, false},      {3, "none", "", 0, b1, 'C', false, false, false},
      {3, "zstd", "", 0, f32, 'C', false, false, true},       {3, "blosc", "zstd", 1, f16, 'C', true, true, true},
  };
  for (size_t k = 0; k < variants.size(); ++k) {
    const Variant& v = variants[k];
    zarr::WriteOptions o;
    o.zarr_format = v.format;
    o.compressor = v.compressor;
    if (!v.cname.empty()) o.blosc_cname = v.cname;
    o.blosc_shuffle = v.shuffle;
    o.order = v.order;
    o.big_endian = v.big_endian;
    o.crc32c = v.crc32c;
    o.chunks = v.sharded ? std::vector<int64_t>{2, 3, 5} : shape;
    if (v.sharded) o.shard_shape = shape;
    o.fill_value = 0;
    o.dimension_names = {"inline", "crossline", "time"};
    const zarr::ArrayMetadata m = zarr::make_metadata(shape, v.dtype, o);
    const std::string doc = m.to_json().dump();
    const auto doc_bytes = std::as_bytes(std::span(doc.data(), doc.size()));
    write_seed(dir, "metadata-" + std::to_string(k), 0, doc_bytes);
    const auto pipeline = zarr::Pipeline::for_array(m, "seed");
    const zarr::Bytes raw = sample_bytes(size_t(zarr::nd::count(shape) * v.dtype.size), unsigned(k));
    zarr::Bytes chunk{std::byte(0)};
    const zarr::Bytes body = pipeline->encode(v.dtype.kind == Kind::Bool ? zarr::Bytes(raw.size(), std::byte(1)) : raw, shape);
    chunk.insert(chunk.end(), body.begin(), body.end());
    write_seed(dir, "array-" + std::to_string(k), 2, doc_bytes, chunk);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SFM_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: metadata(rest); break;
      case 1: chunk(std::as_bytes(std::span(rest.data(), rest.size()))); break;
      case 2: array(rest); break;
    }
  } catch (const sfm::Error&) {
    // Refused with a clear error: what the format code must do with bad input.
  }
  return 0;
}
