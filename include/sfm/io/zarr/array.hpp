// sfm::io::zarr::Array: one Zarr v2 or v3 array in a Store, read as dense float32 boxes.
//
// read_box(start, shape) works out the chunks (or, for sharded arrays, the inner chunks) the box
// touches, takes what it can from a byte-bounded LRU cache of decoded chunks and fetches the rest
// with one Store::get_each (sharded: a get_many for the shard indexes, then a get_each for the
// inner chunks' byte ranges). Each value is decoded and its overlap copied into the output in C
// order as soon as it arrives, on a thread pool, so decoding overlaps the reads still in flight.
// With the cache on, whole chunks are decoded into buffers the cache keeps (lone-blosc chunks by
// blosc_scatter, 1.25× libblosc's decompress). With it off, a chunk whose only codec is blosc is
// decoded by blosc_scatter straight into the box: only the blosc blocks holding the overlap are
// decompressed, and only the overlap's elements are unshuffled (random 128³ crops decompress a
// half (128³ chunks) to two thirds (64³) of what whole chunks would); other chunks the box
// crosses in dim 0 decode only the rows it needs when the codecs allow (libblosc's getitem for
// bit shuffle, blosclz, ...), into a pooled, uninitialised buffer.
// Such a chunk of an unsharded array is also read in parts (Store::get_chained): its blosc header
// and block offsets (a guess of 4 KiB, more if the offsets go on), then the stored span of the
// blocks holding those rows, each chunk's second read starting as soon as its first is answered;
// the header and offsets are kept per chunk key, as shard indexes are, so later boxes read only
// blocks. Missing chunks read as the fill value. Copies of an Array share its caches and counters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/io/buffer_pool.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/thread_pool.hpp"
#include "sfm/io/zarr/blosc_scatter.hpp"
#include "sfm/io/zarr/cache.hpp"
#include "sfm/io/zarr/metadata.hpp"
#include "sfm/io/zarr/nd.hpp"
#include "sfm/io/zarr/pipeline.hpp"

namespace sfm::io::zarr {

struct ArrayOptions {
  size_t cache_bytes = size_t(256) << 20;  // decoded-chunk cache budget (0 disables caching)
  ThreadPool* pool = nullptr;              // decode pool; nullptr = ThreadPool::shared()
};

// Counters since open (or the last reset_stats); shared by copies of the Array.
struct ReadStats {
  uint64_t requests = 0;       // store requests issued (metadata excluded)
  uint64_t bytes_fetched = 0;  // bytes those requests returned
  uint64_t cache_hits = 0;     // chunks served from the cache
  uint64_t cache_misses = 0;   // chunks fetched (or found missing) in the store
  uint64_t chunks_decoded = 0;  // whole chunks, or the parts of chunks a read needed
  uint64_t bytes_decoded = 0;   // the bytes those decodes produced (blosc_scatter: the blocks it decompressed)
  double decode_seconds = 0;    // summed over decode threads
};

inline std::string describe_key(const Store& store, const std::string& key) {
  return store.describe() + " key '" + key + "'";
}

class Array {
 public:
  // Opens the array at `path` ("" = store root): zarr.json (v3) or .zarray (+ .zattrs) (v2).
  static Array open(std::shared_ptr<Store> store, const std::string& path, ArrayOptions options = {}) {
    SFM_CHECK(store != nullptr, "zarr::Array::open: null store");
    const std::string p = normalize_path(path);
    const std::vector<StoreRequest> requests{{join_key(p, "zarr.json"), {}}, {join_key(p, ".zarray"), {}},
                                             {join_key(p, ".zattrs"), {}}};
    auto docs = store->get_many(requests);
    SFM_CHECK(docs.size() == 3, store->describe(), ": get_many returned ", docs.size(), " results for 3 requests");
    if (docs[0]) {
      const json j = parse_json(*docs[0], *store, requests[0].key);
      const std::string type = json_field<std::string>(j, "node_type", "?", describe_key(*store, requests[0].key));
      SFM_CHECK(type == "array", describe_key(*store, requests[0].key), " is a Zarr v3 ", type, ", not an array");
      return Array(store, p, parse_v3_array(j, describe_key(*store, requests[0].key)), options);
    }
    if (docs[1]) {
      const json attrs = docs[2] ? parse_json(*docs[2], *store, requests[2].key) : json(nullptr);
      return Array(store, p,
                   parse_v2_array(parse_json(*docs[1], *store, requests[1].key), attrs, describe_key(*store, requests[1].key)),
                   options);
    }
    fail("no Zarr array at '", p, "' in ", store->describe(), " (neither zarr.json nor .zarray exists)");
  }

  // From metadata already in hand (consolidated metadata).
  Array(std::shared_ptr<Store> store, std::string path, ArrayMetadata metadata, ArrayOptions options = {})
      : state_(std::make_shared<State>(options.cache_bytes)) {
    state_->store = std::move(store);
    state_->path = normalize_path(std::move(path));
    state_->meta = std::move(metadata);
    state_->pool = options.pool;
    state_->pipeline = Pipeline::for_array(state_->meta, where_metadata());
    const auto* sharding = state_->pipeline->sharding();
    state_->sharded = sharding != nullptr;
  }

  const ArrayMetadata& metadata() const { return state_->meta; }
  const std::vector<int64_t>& shape() const { return state_->meta.shape; }
  size_t rank() const { return state_->meta.shape.size(); }
  const std::string& path() const { return state_->path; }
  const std::shared_ptr<Store>& store() const { return state_->store; }
  std::string describe() const { return state_->store->describe() + " array '" + state_->path + "'"; }

  // The box [start, start + shape) as dense float32 in C order.
  std::vector<float> read_box(std::span<const int64_t> start, std::span<const int64_t> shape) const {
    check_box(start, shape);
    std::vector<float> out(size_t(nd::count(shape)));
    read_box(start, shape, out);
    return out;
  }
  // Same, into a caller-provided buffer of exactly prod(shape) floats.
  void read_box(std::span<const int64_t> start, std::span<const int64_t> shape, std::span<float> out) const;

  std::vector<float> read_all() const {
    const std::vector<int64_t> zero(rank(), 0);
    return read_box(zero, shape());
  }

  // The box in the array's own data type: native-endian elements in C order, every chunk decoded
  // whole and not cached — for values float32 cannot hold (float64 coordinates, int64 headers),
  // not for the crop reads the float32 path above is tuned for.
  Bytes read_box_native(std::span<const int64_t> start, std::span<const int64_t> shape) const;
  // The box as float64 (any numeric dtype, float64 exactly).
  std::vector<double> read_box_f64(std::span<const int64_t> start, std::span<const int64_t> shape) const {
    const Bytes native = read_box_native(start, shape);
    std::vector<double> out(size_t(nd::count(shape)));
    convert_elements(state_->pipeline->dtype(), native.data(), out.data(), out.size());
    return out;
  }

  ReadStats stats() const {
    const State& s = *state_;
    return {s.requests.load(), s.bytes.load(),         s.hits.load(), s.misses.load(),
            s.decoded.load(),  s.decoded_bytes.load(), double(s.decode_ns.load()) * 1e-9};
  }
  void reset_stats() const {
    State& s = *state_;
    s.requests = s.bytes = s.hits = s.misses = s.decoded = s.decoded_bytes = s.decode_ns = 0;
  }
  ChunkCache& cache() const { return state_->cache; }

 private:
  struct State {
    explicit State(size_t cache_bytes) : cache(cache_bytes) {}
    std::shared_ptr<Store> store;
    std::string path;
    ArrayMetadata meta;
    std::shared_ptr<const Pipeline> pipeline;
    bool sharded = false;
    ThreadPool* pool = nullptr;
    ChunkCache cache;
    std::mutex index_mutex;
    std::map<std::string, std::shared_ptr<const std::vector<uint64_t>>> shard_indexes;  // null = shard missing
    std::mutex layout_mutex;
    std::map<std::string, std::shared_ptr<const Bytes>> blosc_layouts;  // chunk key → blosc header and offsets
    std::atomic<uint64_t> requests{0}, bytes{0}, hits{0}, misses{0}, decoded{0}, decoded_bytes{0}, decode_ns{0};
  };

  // One decode unit of a read: a chunk, or an inner chunk of a shard.
  struct Unit {
    std::vector<int64_t> index;    // in the unit grid (chunks, or inner chunks)
    std::string store_key;         // the chunk, or the shard holding it
    int64_t inner = -1;            // linear inner-chunk index inside the shard
    std::string cache_key;
    ChunkPtr data;                 // decoded chunk (from the cache, or kept for it); null: none
    bool placed = false;           // its part of the box is written (by the sink that decoded it)
  };

  // Where a unit's overlap with the box lies: in the unit, in the box, and its extent.
  struct Overlap {
    std::vector<int64_t> src, dst, extent;
  };
  using Place = std::function<void(Unit&, std::optional<ByteView>)>;
  // Places a unit from the stored blocks [begin, begin + blocks.size()) holding the box's rows and
  // the chunk's blosc header and offsets (`layout`).
  using PlaceBlocks =
      std::function<void(Unit&, const codec::BloscHeader&, ByteView layout, size_t begin, ByteView blocks)>;
  // Writes the native bytes [offset, offset + out.size()) of a decoded chunk into `out`; false when
  // it cannot decode part of the chunk alone.
  using RowDecoder = std::function<bool(size_t offset, std::span<std::byte> out)>;

  static json parse_json(const Bytes& bytes, const Store& store, const std::string& key) {
    try {
      return json::parse(reinterpret_cast<const char*>(bytes.data()), reinterpret_cast<const char*>(bytes.data()) + bytes.size());
    } catch (const json::exception& e) {
      fail(describe_key(store, key), ": invalid JSON: ", json_error_text(e));
    }
  }

  std::string where_metadata() const {
    return describe_key(*state_->store, join_key(state_->path, state_->meta.zarr_format == 3 ? "zarr.json" : ".zarray"));
  }
  ThreadPool& pool() const { return state_->pool ? *state_->pool : ThreadPool::shared(); }

  void check_box(std::span<const int64_t> start, std::span<const int64_t> shape) const {
    const auto& ashape = state_->meta.shape;
    bool ok = start.size() == ashape.size() && shape.size() == ashape.size();
    for (size_t d = 0; ok && d < ashape.size(); ++d)
      ok = start[d] >= 0 && shape[d] >= 0 && start[d] <= ashape[d] && shape[d] <= ashape[d] - start[d];
    if (ok) return;
    const auto list = [](std::span<const int64_t> v) {
      std::ostringstream s;
      s << '[';
      for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
      s << ']';
      return s.str();
    };
    fail("read_box: box start ", list(start), " shape ", list(shape), " lies outside ", describe(), " of shape ",
         list(ashape));
  }

  // Decodes stored bytes into a float32 chunk, timing it: float32 arrays straight into `chunk`,
  // other dtypes through their native bytes.
  void decode_unit(ByteView encoded, std::span<const int64_t> shape, const Pipeline& pipeline, const std::string& where,
                   std::span<float> chunk) const {
    const auto t0 = std::chrono::steady_clock::now();
    const DataType& dtype = pipeline.dtype();
    if (dtype.kind == Kind::Float && dtype.size == 4) {
      pipeline.decode_into(encoded, shape, std::as_writable_bytes(chunk), where);
    } else {
      const Bytes raw = pipeline.decode(encoded, shape, where);
      convert_to_float(dtype, raw.data(), chunk.data(), chunk.size());
    }
    count_decode(t0, chunk.size() * sizeof(float));
  }

  // Fills `slab` with the dim-0 rows of a chunk of `shape` from `row` on, as float32, from their
  // native bytes, which `decode` writes: float32 straight into `slab`, other dtypes through a pooled
  // buffer. False when `decode` cannot decode part of the chunk.
  bool decode_rows(std::span<const int64_t> shape, int64_t row, const DataType& dtype, std::span<float> slab,
                   const RowDecoder& decode) const {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t offset = size_t(row) * size_t(nd::count(shape.subspan(1))) * size_t(dtype.size);
    if (dtype.kind == Kind::Float && dtype.size == 4) {
      if (!decode(offset, std::as_writable_bytes(slab))) return false;
    } else {
      BufferPool::Buffer native = BufferPool::shared().get(slab.size() * size_t(dtype.size));
      if (!decode(offset, native.bytes())) return false;
      convert_to_float(dtype, native.bytes().data(), slab.data(), slab.size());
    }
    count_decode(t0, slab.size() * sizeof(float));
    return true;
  }

  void count_decode(std::chrono::steady_clock::time_point t0, size_t bytes) const {
    state_->decode_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    ++state_->decoded;
    state_->decoded_bytes += bytes;
  }

  Overlap overlap(const Unit& u, std::span<const int64_t> start, std::span<const int64_t> shape) const {
    const std::vector<int64_t>& unit_shape = state_->meta.chunk_shape();
    Overlap o{std::vector<int64_t>(rank()), std::vector<int64_t>(rank()), std::vector<int64_t>(rank())};
    for (size_t d = 0; d < rank(); ++d) {
      const int64_t lo = std::max(start[d], u.index[d] * unit_shape[d]);
      const int64_t hi = std::min(start[d] + shape[d], (u.index[d] + 1) * unit_shape[d]);
      o.src[d] = lo - u.index[d] * unit_shape[d];
      o.dst[d] = lo - start[d];
      o.extent[d] = hi - lo;
    }
    return o;
  }

  // The store key of `u` for errors: the chunk, or the inner chunk of its shard.
  std::string where_unit(const Unit& u) const {
    const std::string where = describe_key(*state_->store, u.store_key);
    return u.inner < 0 ? where : where + " inner chunk " + std::to_string(u.inner);
  }

  std::vector<Unit> units_of(std::span<const int64_t> start, std::span<const int64_t> shape) const;
  void fetch_chunks(std::vector<Unit*>& todo, std::span<const int64_t> start, std::span<const int64_t> shape,
                    bool in_parts, const Place& place, const PlaceBlocks& place_blocks) const;
  void fetch_sharded(std::vector<Unit*>& todo, const Place& place) const;

  std::shared_ptr<State> state_;
};

// The decode units (chunks, or inner chunks of shards) the box touches, in C order.
inline std::vector<Array::Unit> Array::units_of(std::span<const int64_t> start, std::span<const int64_t> shape) const {
  const ArrayMetadata& m = state_->meta;
  const size_t rank = m.rank();
  const std::vector<int64_t>& unit_shape = m.chunk_shape();
  std::vector<int64_t> first(rank), extent(rank);
  for (size_t d = 0; d < rank; ++d) {
    first[d] = start[d] / unit_shape[d];
    extent[d] = (start[d] + shape[d] - 1) / unit_shape[d] - first[d] + 1;
  }
  std::vector<Unit> units;
  units.reserve(size_t(nd::count(extent)));
  std::vector<int64_t> per_shard(rank, 1);
  if (state_->sharded)
    for (size_t d = 0; d < rank; ++d) per_shard[d] = m.grid_chunks[d] / unit_shape[d];
  nd::for_each_index(extent, [&](std::span<const int64_t> i) {
    Unit u;
    u.index.resize(rank);
    std::vector<int64_t> grid(rank), local(rank);
    for (size_t d = 0; d < rank; ++d) {
      u.index[d] = first[d] + i[d];
      grid[d] = u.index[d] / per_shard[d];
      local[d] = u.index[d] % per_shard[d];
    }
    u.store_key = join_key(state_->path, m.chunk_key(grid));
    u.cache_key = u.store_key;
    if (state_->sharded) {
      int64_t lin = 0;
      for (size_t d = 0; d < rank; ++d) lin = lin * per_shard[d] + local[d];
      u.inner = lin;
      u.cache_key += "#" + std::to_string(lin);
    }
    units.push_back(std::move(u));
  });
  return units;
}

// Native bytes of a box: every unit decoded whole by the pipeline (no cache, no partial decodes)
// and copied in; missing units are the fill value.
inline Bytes Array::read_box_native(std::span<const int64_t> start, std::span<const int64_t> shape) const {
  check_box(start, shape);
  const ArrayMetadata& m = state_->meta;
  const Pipeline& pipeline = state_->sharded ? *state_->pipeline->sharding()->codecs : *state_->pipeline;
  const size_t elem = size_t(pipeline.dtype().size);
  const std::vector<int64_t>& unit_shape = m.chunk_shape();
  Bytes out(size_t(nd::count(shape)) * elem);
  if (out.empty()) return out;
  Bytes fill_unit(size_t(nd::count(unit_shape)) * elem);
  nd::fill(fill_unit.data(), size_t(nd::count(unit_shape)), pipeline.fill_bytes());
  const auto copy = [&](const Unit& u, const std::byte* unit) {
    const Overlap o = overlap(u, start, shape);
    nd::copy_box(out.data(), shape, o.dst, unit, unit_shape, o.src, o.extent, elem);
  };
  std::vector<Unit> units = units_of(start, shape);
  std::vector<Unit*> todo;
  for (Unit& u : units) todo.push_back(&u);
  const Place place = [&](Unit& u, std::optional<ByteView> encoded) {
    u.placed = true;
    if (!encoded) return copy(u, fill_unit.data());
    const Bytes decoded = pipeline.decode(*encoded, unit_shape, where_unit(u));
    copy(u, decoded.data());
  };
  if (state_->sharded) fetch_sharded(todo, place);
  else fetch_chunks(todo, start, shape, false, place, {});
  for (const Unit& u : units)
    if (!u.placed) copy(u, fill_unit.data());  // an inner chunk its shard's index says is missing
  return out;
}

inline void Array::read_box(std::span<const int64_t> start, std::span<const int64_t> shape, std::span<float> out) const {
  check_box(start, shape);
  SFM_CHECK(out.size() == size_t(nd::count(shape)), "read_box: output buffer holds ", out.size(), " floats, the box ",
            nd::count(shape));
  if (out.empty()) return;
  const ArrayMetadata& m = state_->meta;
  const size_t rank = m.rank();
  const std::vector<int64_t>& unit_shape = m.chunk_shape();
  std::vector<Unit> units = units_of(start, shape);
  // Cache lookups, then one fetch for the rest.
  std::vector<Unit*> todo;
  for (Unit& u : units) {
    if (auto hit = state_->cache.get(u.cache_key)) {
      u.data = *hit;
      ++state_->hits;
    } else {
      todo.push_back(&u);
    }
  }
  state_->misses += todo.size();
  // A fetched unit is decoded and copied into the box by the sink that receives its bytes, while
  // other units are still being read. With the cache on, whole chunks are decoded (into new
  // buffers the cache keeps); with it off, only the dim-0 rows the box needs, when the codecs allow
  // (blosc decompresses only the blocks holding them), into a pooled buffer.
  const float fill = float(m.fill.as_double());
  const bool caching = state_->cache.capacity_bytes() > 0;
  const Pipeline& pipeline = state_->sharded ? *state_->pipeline->sharding()->codecs : *state_->pipeline;
  const size_t unit_count = size_t(nd::count(unit_shape));
  const auto copy = [&](const Overlap& o, const std::byte* chunk, std::span<const int64_t> chunk_shape) {
    nd::copy_box(reinterpret_cast<std::byte*>(out.data()), shape, o.dst, chunk, chunk_shape, o.src, o.extent, sizeof(float));
  };
  // The unit's rows that the box overlaps, decoded alone by `decode`, into the box; false when
  // `decode` cannot decode them alone.
  const auto place_rows = [&](const Overlap& o, const RowDecoder& decode) {
    std::vector<int64_t> slab_shape = unit_shape;
    slab_shape[0] = o.extent[0];
    const size_t slab_count = size_t(nd::count(slab_shape));
    BufferPool::Buffer slab = BufferPool::shared().get(slab_count * sizeof(float));
    if (!decode_rows(unit_shape, o.src[0], pipeline.dtype(), {reinterpret_cast<float*>(slab.bytes().data()), slab_count},
                     decode))
      return false;
    Overlap in_slab = o;
    in_slab.src[0] = 0;
    copy(in_slab, slab.bytes().data(), slab_shape);
    return true;
  };
  // `part` of a unit decoded by blosc_scatter from the stored bytes `stored` (from byte `begin` of
  // the chunk on); false when it leaves the chunk to libblosc.
  const std::vector<int64_t> box_strides = nd::strides(shape), unit_strides = nd::strides(unit_shape);
  const std::vector<int64_t> unit_origin(rank, 0);
  const auto scatter = [&](const ChunkOverlap& part, const codec::BloscHeader& header, ByteView layout, size_t begin,
                           ByteView stored, const std::string& where) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::optional<size_t> decoded = blosc_scatter(header, layout, begin, stored, pipeline.dtype(), part, where);
    if (decoded) count_decode(t0, *decoded);
    return decoded.has_value();
  };
  // The unit's overlap `o` with the box, decoded straight into the box.
  const auto scatter_to_box = [&](const Overlap& o, const codec::BloscHeader& header, ByteView layout, size_t begin,
                                  ByteView stored, const std::string& where) {
    int64_t at = 0;
    for (size_t d = 0; d < rank; ++d) at += o.dst[d] * box_strides[d];
    return scatter(ChunkOverlap{unit_shape, o.src, o.extent, out.data() + at, box_strides}, header, layout, begin, stored,
                   where);
  };
  // The header of a whole stored unit that blosc_scatter may decode (a lone blosc codec, all its
  // bytes in hand); std::nullopt otherwise.
  const auto whole_blosc = [&](ByteView encoded, const std::string& where) -> std::optional<codec::BloscHeader> {
    if (rank == 0 || !pipeline.lone_blosc() || encoded.size() < codec::kBloscHeaderBytes) return std::nullopt;
    const codec::BloscHeader header = codec::blosc_header(encoded, where);
    if (encoded.size() < header.cbytes) return std::nullopt;
    return header;
  };
  const Place place = [&](Unit& u, std::optional<ByteView> encoded) {
    const Overlap o = overlap(u, start, shape);
    u.placed = true;
    if (!encoded) {
      nd::fill_box(out.data(), shape, o.dst, o.extent, fill);
      return;
    }
    const std::string where = where_unit(u);
    const std::optional<codec::BloscHeader> header = whole_blosc(*encoded, where);
    if (caching) {
      auto owned = std::make_shared<std::vector<float>>(unit_count);
      const ChunkOverlap all{unit_shape, unit_origin, unit_shape, owned->data(), unit_strides};
      if (!header || !scatter(all, *header, *encoded, 0, *encoded, where))
        decode_unit(*encoded, unit_shape, pipeline, where, *owned);
      copy(o, reinterpret_cast<const std::byte*>(owned->data()), unit_shape);
      u.data = std::move(owned);
      return;
    }
    if (header && scatter_to_box(o, *header, *encoded, 0, *encoded, where)) return;
    if (rank > 0 && o.extent[0] < unit_shape[0] && place_rows(o, [&](size_t offset, std::span<std::byte> rows) {
          return pipeline.decode_range_into(*encoded, unit_shape, offset, rows, where);
        }))
      return;
    BufferPool::Buffer chunk = BufferPool::shared().get(unit_count * sizeof(float));
    decode_unit(*encoded, unit_shape, pipeline, where, {reinterpret_cast<float*>(chunk.bytes().data()), unit_count});
    copy(o, chunk.bytes().data(), unit_shape);
  };
  const PlaceBlocks place_blocks = [&](Unit& u, const codec::BloscHeader& header, ByteView layout, size_t begin,
                                      ByteView blocks) {
    u.placed = true;
    const std::string where = where_unit(u);
    const Overlap o = overlap(u, start, shape);
    if (scatter_to_box(o, header, layout, begin, blocks, where)) return;
    place_rows(o, [&](size_t offset, std::span<std::byte> rows) {
      codec::blosc_decode_blocks_into(header, layout, begin, blocks, offset, rows, where);
      return true;
    });
  };
  if (!todo.empty()) {
    if (state_->sharded) fetch_sharded(todo, place);
    else fetch_chunks(todo, start, shape, !caching && rank > 0 && pipeline.lone_blosc(), place, place_blocks);
  }
  // The rest: cached chunks, and chunks a shard index says are missing (the fill value).
  std::vector<Unit*> rest;
  for (Unit& u : units)
    if (!u.placed) rest.push_back(&u);
  pool().parallel_for(rest.size(), [&](size_t k) {
    const Unit& u = *rest[k];
    const Overlap o = overlap(u, start, shape);
    if (u.data) copy(o, reinterpret_cast<const std::byte*>(u.data->data()), unit_shape);
    else nd::fill_box(out.data(), shape, o.dst, o.extent, fill);
  });
  if (caching)
    for (Unit* u : todo) state_->cache.put(u->cache_key, u->data);
}

// Reads the chunks of `todo` and places each as it arrives. With `in_parts`, a chunk the box crosses
// in dim 0 is read in parts: its blosc header and offsets (known, or a guess of the first 4 KiB, then
// the rest of the offsets if they go on), then the span of the blocks holding the box's rows. The
// whole chunk is read instead when the box needs all its rows, when the header rules a partial
// decode out (memcpyed, another blosc format or size, a typesize that splits a row) or the blocks are
// not stored in order, and when the guess already holds all of it.
inline void Array::fetch_chunks(std::vector<Unit*>& todo, std::span<const int64_t> start, std::span<const int64_t> shape,
                                bool in_parts, const Place& place, const PlaceBlocks& place_blocks) const {
  enum Phase : size_t { kWhole, kGuess, kLayout, kBlocks, kPhases };
  constexpr size_t kGuessBytes = 4096;
  const std::vector<int64_t>& chunk = state_->meta.chunk_shape();
  const size_t row_bytes = in_parts ? size_t(nd::count(std::span(chunk).subspan(1))) * size_t(state_->meta.dtype.size) : 0;
  const size_t nbytes = in_parts ? row_bytes * size_t(chunk[0]) : 0;
  struct Part {
    size_t offset = 0, size = 0;              // the decoded bytes of the box's rows
    std::shared_ptr<const Bytes> layout;      // blosc header and offsets, once known
    codec::BloscHeader header;
    size_t begin = 0, end = 0;                // the stored span of their blocks
  };
  std::vector<Part> parts(todo.size());
  struct Read {
    StoreRequest request;
    size_t tag;  // unit * kPhases + phase
  };
  const auto whole = [&](size_t k) { return Read{{todo[k]->store_key, std::nullopt}, k * kPhases + kWhole}; };
  // The read after unit k's layout is known: the blocks holding its rows, or the whole chunk.
  const auto after_layout = [&](size_t k, std::shared_ptr<const Bytes> layout) {
    Part& p = parts[k];
    p.header = codec::blosc_header(*layout, where_unit(*todo[k]));
    if (!codec::blosc_decodes_part(p.header, nbytes, p.offset, p.size)) return whole(k);
    const auto span = codec::blosc_block_span(p.header, *layout, p.offset, p.size, where_unit(*todo[k]));
    if (!span) return whole(k);
    std::tie(p.begin, p.end) = *span;
    p.layout = std::move(layout);
    return Read{{todo[k]->store_key, ByteRange{int64_t(p.begin), int64_t(p.end - p.begin)}}, k * kPhases + kBlocks};
  };
  std::vector<Read> first;
  for (size_t k = 0; k < todo.size(); ++k) {
    const Overlap o = overlap(*todo[k], start, shape);
    if (!in_parts || o.extent[0] == chunk[0]) {
      first.push_back(whole(k));
      continue;
    }
    parts[k].offset = size_t(o.src[0]) * row_bytes;
    parts[k].size = size_t(o.extent[0]) * row_bytes;
    std::shared_ptr<const Bytes> known;
    {
      std::lock_guard lock(state_->layout_mutex);
      if (auto it = state_->blosc_layouts.find(todo[k]->store_key); it != state_->blosc_layouts.end()) known = it->second;
    }
    first.push_back(known ? after_layout(k, std::move(known))
                          : Read{{todo[k]->store_key, ByteRange{0, int64_t(kGuessBytes)}}, k * kPhases + kGuess});
  }
  std::vector<StoreRequest> requests;
  for (const Read& r : first) requests.push_back(r.request);
  state_->requests += requests.size();
  // Tags of the first reads are their indexes; later ones are first.size() + unit * kPhases + phase.
  state_->store->get_chained(requests, pool(), [&](size_t tag, std::optional<ByteView> value, const ReadMore& more) {
    const size_t code = tag < first.size() ? first[tag].tag : tag - first.size();
    const size_t k = code / kPhases;
    Unit& u = *todo[k];
    Part& p = parts[k];
    if (value) state_->bytes += value->size();
    const auto read = [&](Read r) {
      ++state_->requests;
      more(std::move(r.request), first.size() + r.tag);
    };
    switch (Phase(code % kPhases)) {
      case kWhole:
        place(u, value);
        return;
      case kGuess:
      case kLayout: {
        if (!value) return place(u, value);  // no such chunk: the fill value
        const codec::BloscHeader header = codec::blosc_header(*value, where_unit(u));
        if (value->size() >= header.cbytes) return place(u, value);  // the whole chunk is in hand
        if (value->size() < header.layout_bytes()) {
          // The offsets go on past the guess; a shorter answer is a truncated chunk, which the whole
          // chunk's decoder reports.
          if (code % kPhases == kLayout || value->size() < kGuessBytes) return place(u, value);
          return read({{u.store_key, ByteRange{0, int64_t(header.layout_bytes())}}, k * kPhases + kLayout});
        }
        auto layout = std::make_shared<const Bytes>(value->begin(), value->begin() + ptrdiff_t(header.layout_bytes()));
        {
          std::lock_guard lock(state_->layout_mutex);
          if (state_->blosc_layouts.size() > 65536) state_->blosc_layouts.clear();
          state_->blosc_layouts[u.store_key] = layout;
        }
        const Read next = after_layout(k, std::move(layout));
        if (next.tag % kPhases == kBlocks && p.end <= value->size())  // the blocks are in hand too
          return place_blocks(u, p.header, *p.layout, p.begin, value->subspan(p.begin, p.end - p.begin));
        return read(next);
      }
      case kBlocks: {
        const std::string where = where_unit(u);
        SFM_CHECK(value.has_value(), where, ": the chunk disappeared between the reads of its header and of its blocks");
        SFM_CHECK(value->size() == p.end - p.begin, where, ": bytes [", p.begin, ", ", p.end, ") of a ", p.header.cbytes,
                  "-byte blosc chunk came back as ", value->size(), " bytes: truncated chunk");
        return place_blocks(u, p.header, *p.layout, p.begin, *value);
      }
      case kPhases:
        break;
    }
    fail("unreachable read phase");
  });
}

inline void Array::fetch_sharded(std::vector<Unit*>& todo, const Place& place) const {
  const ArrayMetadata& m = state_->meta;
  const stage::Sharding& sharding = *state_->pipeline->sharding();
  const std::vector<int64_t>& shard_shape = m.grid_chunks;
  const size_t isize = Pipeline::index_nbytes(sharding, shard_shape);
  // 1. Shard indexes not yet known.
  std::map<std::string, std::shared_ptr<const std::vector<uint64_t>>> indexes;
  std::vector<StoreRequest> requests;
  {
    std::lock_guard lock(state_->index_mutex);
    for (Unit* u : todo) {
      if (indexes.count(u->store_key)) continue;
      if (auto it = state_->shard_indexes.find(u->store_key); it != state_->shard_indexes.end()) {
        indexes[u->store_key] = it->second;
      } else {
        indexes[u->store_key] = nullptr;
        requests.push_back({u->store_key, sharding.index_at_end ? ByteRange{-int64_t(isize), -1} : ByteRange{0, int64_t(isize)}});
      }
    }
  }
  if (!requests.empty()) {
    auto results = state_->store->get_many(requests);
    SFM_CHECK(results.size() == requests.size(), state_->store->describe(), ": get_many returned ", results.size(),
              " results for ", requests.size(), " requests");
    state_->requests += requests.size();
    std::vector<std::shared_ptr<const std::vector<uint64_t>>> decoded(results.size());
    for (const auto& r : results)
      if (r) state_->bytes += r->size();
    pool().parallel_for(results.size(), [&](size_t k) {
      if (results[k])
        decoded[k] = std::make_shared<const std::vector<uint64_t>>(Pipeline::decode_index(
            sharding, *results[k], shard_shape, describe_key(*state_->store, requests[k].key)));
    });
    std::lock_guard lock(state_->index_mutex);
    if (state_->shard_indexes.size() > 65536) state_->shard_indexes.clear();
    for (size_t k = 0; k < requests.size(); ++k) {
      indexes[requests[k].key] = decoded[k];
      state_->shard_indexes[requests[k].key] = decoded[k];
    }
  }
  // 2. Inner chunks present in their shard.
  std::vector<Unit*> fetch;
  requests.clear();
  for (Unit* u : todo) {
    const auto& index = indexes[u->store_key];
    const uint64_t off = index ? (*index)[size_t(2 * u->inner)] : Pipeline::kMissing;
    const uint64_t len = index ? (*index)[size_t(2 * u->inner + 1)] : Pipeline::kMissing;
    if (off == Pipeline::kMissing && len == Pipeline::kMissing) continue;  // missing shard or inner chunk: fill
    SFM_CHECK(off <= uint64_t(INT64_MAX) && len <= uint64_t(INT64_MAX) - off,  // the end fits in int64 too
              describe_key(*state_->store, u->store_key), ": corrupt shard index entry ", u->inner);
    fetch.push_back(u);
    requests.push_back({u->store_key, ByteRange{int64_t(off), int64_t(len)}});
  }
  if (requests.empty()) return;
  state_->requests += requests.size();
  state_->store->get_each(requests, pool(), [&](size_t k, std::optional<ByteView> value) {
    const std::string where = where_unit(*fetch[k]);
    SFM_CHECK(value.has_value(), where, ": the shard disappeared between index and chunk reads");
    state_->bytes += value->size();
    SFM_CHECK(value->size() == size_t(requests[k].range->length), where, ": bytes [", requests[k].range->offset, ", ",
              requests[k].range->offset + requests[k].range->length, ") lie beyond the end of the shard (got ",
              value->size(), " bytes): truncated shard");
    place(*fetch[k], value);
  });
}

}  // namespace sfm::io::zarr
