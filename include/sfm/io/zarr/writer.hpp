// Writing Zarr v2 and v3 arrays and groups through Store::set.
//
// ArrayWriter::create writes the metadata (.zarray/.zattrs or zarr.json); write_box then encodes
// the grid chunks (or shards) a box covers, in parallel, and stores them. A box must cover whole
// chunks (edge chunks: up to the array's end), so a volume can be written slab by slab. Defaults
// follow MDIO: blosc with zstd level 5 and byte shuffle (v2: compressor blosc; v3: bytes + blosc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/thread_pool.hpp"
#include "sfm/io/zarr/metadata.hpp"
#include "sfm/io/zarr/nd.hpp"
#include "sfm/io/zarr/pipeline.hpp"

namespace sfm::io::zarr {

struct WriteOptions {
  int zarr_format = 3;
  std::vector<int64_t> chunks;       // empty: min(shape, 64) per dim (the inner chunk when sharded)
  std::vector<int64_t> shard_shape;  // v3 only: shard (grid chunk) shape; empty: no sharding
  std::string compressor = "blosc";  // blosc | zstd | gzip | zlib (v2) | lz4 (v2) | none
  std::string blosc_cname = "zstd";  // lz4 | lz4hc | zstd | zlib | blosclz
  int level = 5;
  int blosc_shuffle = 1;             // 0 none, 1 byte, 2 bit
  bool crc32c = false;               // v3: append a crc32c codec
  bool big_endian = false;
  char order = 'C';                  // v2 only
  char separator = 0;                // 0: '.' for v2, '/' for v3
  std::optional<double> fill_value;  // default 0
  std::vector<std::string> dimension_names;
  json attributes = json::object();
  json codecs = nullptr;           // v3: an explicit codec list (overrides the above)
  json compressor_json = nullptr;  // v2: an explicit compressor (overrides the above)
  ThreadPool* pool = nullptr;
};

// Builds the metadata `create` would write (exposed for tests and the CLI's dry runs).
inline ArrayMetadata make_metadata(std::span<const int64_t> shape, const DataType& dtype, const WriteOptions& o) {
  SFM_CHECK(o.zarr_format == 2 || o.zarr_format == 3, "zarr writer: zarr_format must be 2 or 3");
  ArrayMetadata m;
  m.zarr_format = o.zarr_format;
  m.shape.assign(shape.begin(), shape.end());
  m.dtype = dtype;
  m.dtype.big_endian = o.big_endian && dtype.size > 1;
  std::vector<int64_t> chunks = o.chunks;
  if (chunks.empty())
    for (int64_t e : shape) chunks.push_back(std::max<int64_t>(1, std::min<int64_t>(e, 64)));
  SFM_CHECK(chunks.size() == shape.size(), "zarr writer: chunks has ", chunks.size(), " dims, shape ", shape.size());
  for (int64_t c : chunks) SFM_CHECK(c > 0, "zarr writer: chunk extents must be positive");
  const double fill = o.fill_value.value_or(0.0);
  m.fill.kind = dtype.kind == Kind::Float ? Kind::Float : Kind::Int;
  m.fill.f = fill;
  m.fill.i = std::isfinite(fill) ? int64_t(fill) : 0;
  m.fill.u = dtype.kind == Kind::UInt || dtype.kind == Kind::Bool ? uint64_t(std::max(0.0, fill)) : 0;
  if (dtype.kind == Kind::UInt || dtype.kind == Kind::Bool) m.fill.kind = dtype.kind;
  m.dimension_names = o.dimension_names;
  SFM_CHECK(m.dimension_names.empty() || m.dimension_names.size() == shape.size(),
            "zarr writer: dimension_names needs one name per dim");
  m.attributes = o.attributes.is_object() ? o.attributes : json::object();
  if (o.zarr_format == 2) {
    SFM_CHECK(o.shard_shape.empty(), "unsupported: sharding in Zarr v2");
    SFM_CHECK(o.order == 'C' || o.order == 'F', "zarr writer: order must be C or F");
    m.grid_chunks = chunks;
    m.order = o.order;
    m.default_key_encoding = false;
    m.separator = o.separator ? o.separator : '.';
    m.filters = nullptr;
    if (!o.compressor_json.is_null()) m.compressor = o.compressor_json;
    else if (o.compressor == "blosc")
      m.compressor = {{"id", "blosc"}, {"cname", o.blosc_cname}, {"clevel", o.level}, {"shuffle", o.blosc_shuffle}, {"blocksize", 0}};
    else if (o.compressor == "zstd") m.compressor = {{"id", "zstd"}, {"level", o.level}};  // TensorStore refuses "checksum"
    else if (o.compressor == "gzip" || o.compressor == "zlib") m.compressor = {{"id", o.compressor}, {"level", o.level}};
    else if (o.compressor == "lz4") m.compressor = {{"id", "lz4"}, {"acceleration", 1}};
    else if (o.compressor == "none") m.compressor = nullptr;
    else fail("unsupported: Zarr v2 compressor '", o.compressor, "' in the writer");
    if (!m.dimension_names.empty()) m.attributes["_ARRAY_DIMENSIONS"] = m.dimension_names;
    return m;
  }
  m.separator = o.separator ? o.separator : '/';
  if (!o.codecs.is_null()) {
    m.codecs = o.codecs;
  } else {
    json inner = json::array({{{"name", "bytes"}, {"configuration", {{"endian", m.dtype.big_endian ? "big" : "little"}}}}});
    static const char* shuffles[] = {"noshuffle", "shuffle", "bitshuffle"};
    if (o.compressor == "blosc")
      inner.push_back({{"name", "blosc"},
                       {"configuration", {{"cname", o.blosc_cname}, {"clevel", o.level},
                                          {"shuffle", shuffles[std::clamp(o.blosc_shuffle, 0, 2)]},
                                          {"typesize", dtype.size}, {"blocksize", 0}}}});
    else if (o.compressor == "zstd") inner.push_back({{"name", "zstd"}, {"configuration", {{"level", o.level}, {"checksum", false}}}});
    else if (o.compressor == "gzip") inner.push_back({{"name", "gzip"}, {"configuration", {{"level", o.level}}}});
    else if (o.compressor != "none") fail("unsupported: Zarr v3 compressor '", o.compressor, "' in the writer");
    if (o.crc32c) inner.push_back({{"name", "crc32c"}});
    if (o.shard_shape.empty()) {
      m.codecs = inner;
    } else {
      m.codecs = json::array({{{"name", "sharding_indexed"},
                               {"configuration",
                                {{"chunk_shape", chunks},
                                 {"codecs", inner},
                                 {"index_codecs", json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                                                               {{"name", "crc32c"}}})},
                                 {"index_location", "end"}}}}});
    }
  }
  m.grid_chunks = o.shard_shape.empty() ? chunks : o.shard_shape;
  // Round-trip through the parser so that what we write is what we read.
  return parse_v3_array(m.to_json(), "zarr writer metadata");
}

class ArrayWriter {
 public:
  static ArrayWriter create(std::shared_ptr<Store> store, const std::string& path, std::span<const int64_t> shape,
                            const DataType& dtype, const WriteOptions& options = {}) {
    ArrayWriter w;
    w.store_ = std::move(store);
    w.path_ = normalize_path(path);
    w.meta_ = make_metadata(shape, dtype, options);
    w.pipeline_ = Pipeline::for_array(w.meta_, w.store_->describe() + " '" + w.path_ + "'");
    w.pool_ = options.pool;
    const auto put = [&](const std::string& name, const json& j) {
      const std::string text = j.dump(2);
      w.store_->set(join_key(w.path_, name), std::as_bytes(std::span(text.data(), text.size())));
    };
    if (w.meta_.zarr_format == 2) {
      put(".zarray", w.meta_.to_json());
      if (!w.meta_.attributes.empty()) put(".zattrs", w.meta_.attributes);
    } else {
      put("zarr.json", w.meta_.to_json());
    }
    return w;
  }

  const ArrayMetadata& metadata() const { return meta_; }

  // Writes a C-order box of native-endian elements of the array's dtype; it must cover whole grid
  // chunks (clipped at the array's end).
  void write_box(std::span<const int64_t> start, std::span<const int64_t> shape, std::span<const std::byte> data) {
    const size_t rank = meta_.rank(), elem = size_t(meta_.dtype.size);
    SFM_CHECK(start.size() == rank && shape.size() == rank, "write_box: box rank differs from the array's");
    SFM_CHECK(data.size() == size_t(nd::count(shape)) * elem, "write_box: ", data.size(), " bytes for a box of ",
              nd::count(shape), " elements of ", elem, " bytes");
    const auto& g = meta_.grid_chunks;
    std::vector<int64_t> first(rank), extent(rank);
    for (size_t d = 0; d < rank; ++d) {
      const int64_t end = start[d] + shape[d];
      SFM_CHECK(start[d] >= 0 && shape[d] >= 0 && end <= meta_.shape[d], "write_box: box outside the array in dim ", d);
      SFM_CHECK(start[d] % g[d] == 0 && (end % g[d] == 0 || end == meta_.shape[d]),
                "write_box: the box must cover whole chunks of ", g[d], " in dim ", d);
      first[d] = start[d] / g[d];
      extent[d] = shape[d] == 0 ? 0 : (end + g[d] - 1) / g[d] - first[d];
    }
    std::vector<std::vector<int64_t>> cells;
    nd::for_each_index(extent, [&](std::span<const int64_t> i) {
      std::vector<int64_t> c(rank);
      for (size_t d = 0; d < rank; ++d) c[d] = first[d] + i[d];
      cells.push_back(c);
    });
    ThreadPool& pool = pool_ ? *pool_ : ThreadPool::shared();
    const size_t batch = std::max<size_t>(4, 2 * pool.size());
    const auto fill = pipeline_->fill_bytes();
    for (size_t b0 = 0; b0 < cells.size(); b0 += batch) {
      const size_t n = std::min(batch, cells.size() - b0);
      std::vector<Bytes> encoded(n);
      pool.parallel_for(n, [&](size_t k) {
        const auto& c = cells[b0 + k];
        Bytes chunk(size_t(nd::count(g)) * elem);
        std::vector<int64_t> src(rank), ext(rank), zero(rank, 0);
        for (size_t d = 0; d < rank; ++d) {
          src[d] = c[d] * g[d] - start[d];
          ext[d] = std::min(g[d], meta_.shape[d] - c[d] * g[d]);
        }
        bool partial = false;
        for (size_t d = 0; d < rank; ++d) partial |= ext[d] < g[d];
        if (partial) nd::fill(chunk.data(), size_t(nd::count(g)), fill);
        nd::copy_box(chunk.data(), g, zero, data.data(), shape, src, ext, elem);
        encoded[k] = pipeline_->encode(chunk, g);
      });
      for (size_t k = 0; k < n; ++k) store_->set(join_key(path_, meta_.chunk_key(cells[b0 + k])), encoded[k]);
    }
  }

  template <class T>
  void write_box(std::span<const int64_t> start, std::span<const int64_t> shape, std::span<const T> data) {
    write_box(start, shape, to_dtype(data, meta_.dtype));
  }

  // Elements of type T → native bytes of `dtype` (numpy astype semantics: float → int truncates
  // towards zero; out of the target's range it wraps as numpy's does on x86-64, through int64;
  // NaN and infinities become 0 — never the undefined behaviour of a direct out-of-range cast).
  template <class T>
  static Bytes to_dtype(std::span<const T> data, const DataType& dtype) {
    Bytes out(data.size() * size_t(dtype.size));
    const auto put = [&]<class U>(U) {
      for (size_t i = 0; i < data.size(); ++i) {
        U v;
        if constexpr (std::is_integral_v<U> && std::is_floating_point_v<T>) {
          const double d = std::trunc(double(data[i]));
          constexpr double limit = 9223372036854775808.0;  // 2^63
          v = static_cast<U>(std::isfinite(d) && d > -limit && d < limit ? int64_t(d) : int64_t(0));
        } else {
          v = static_cast<U>(data[i]);
        }
        std::memcpy(out.data() + i * sizeof(U), &v, sizeof(U));
      }
    };
    switch (dtype.kind) {
      case Kind::Bool:
        for (size_t i = 0; i < data.size(); ++i) out[i] = std::byte(data[i] != T(0) ? 1 : 0);
        break;
      case Kind::Int:
        if (dtype.size == 1) put(int8_t{}); else if (dtype.size == 2) put(int16_t{});
        else if (dtype.size == 4) put(int32_t{}); else put(int64_t{});
        break;
      case Kind::UInt:
        if (dtype.size == 1) put(uint8_t{}); else if (dtype.size == 2) put(uint16_t{});
        else if (dtype.size == 4) put(uint32_t{}); else put(uint64_t{});
        break;
      case Kind::Float:
        if (dtype.size == 2) {
          for (size_t i = 0; i < data.size(); ++i) {
            const uint16_t h = float_to_half(float(data[i]));
            std::memcpy(out.data() + 2 * i, &h, 2);
          }
        } else if (dtype.size == 4) put(float{});
        else put(double{});
        break;
    }
    return out;
  }

 private:
  std::shared_ptr<Store> store_;
  std::string path_;
  ArrayMetadata meta_;
  std::shared_ptr<const Pipeline> pipeline_;
  ThreadPool* pool_ = nullptr;
};

// Writes a whole array from C-order data of type T, stored as `dtype` (default: T's own type).
template <class T>
ArrayMetadata write_array(std::shared_ptr<Store> store, const std::string& path, std::span<const int64_t> shape,
                          std::span<const T> data, const WriteOptions& options = {},
                          std::optional<DataType> dtype = std::nullopt) {
  ArrayWriter w = ArrayWriter::create(std::move(store), path, shape, dtype.value_or(data_type_of<T>()), options);
  const std::vector<int64_t> zero(shape.size(), 0);
  w.write_box(zero, shape, data);
  return w.metadata();
}

// Writes a group document (.zgroup + .zattrs, or zarr.json).
inline void write_group(Store& store, const std::string& path, int zarr_format, const json& attributes = json::object()) {
  const auto put = [&](const std::string& name, const json& j) {
    const std::string text = j.dump(2);
    store.set(join_key(normalize_path(path), name), std::as_bytes(std::span(text.data(), text.size())));
  };
  if (zarr_format == 2) {
    put(".zgroup", json{{"zarr_format", 2}});
    if (!attributes.empty()) put(".zattrs", attributes);
  } else {
    put("zarr.json", json{{"zarr_format", 3}, {"node_type", "group"}, {"attributes", attributes}});
  }
}

}  // namespace sfm::io::zarr
