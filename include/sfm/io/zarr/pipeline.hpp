// The codec pipeline that turns a stored chunk into native-endian, C-order elements and back.
//
// Zarr v3: array→array codecs (transpose), one array→bytes codec (bytes with an endianness, or
// sharding_indexed with its own nested pipelines), then bytes→bytes codecs (blosc, gzip, zstd,
// crc32c, and numcodecs.zlib/lz4/...); decoding runs them in reverse. Zarr v2 maps onto the same
// stages: order F is a reversing transpose, the dtype's byte order a bytes codec, the compressor a
// bytes→bytes codec. Every stage checks sizes: a chunk that decodes to the wrong number of bytes,
// a truncated shard index or an inner chunk outside its shard raises sfm::Error naming `where`.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>
#include <nlohmann/json.hpp>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/io/zarr/codecs.hpp"
#include "sfm/io/zarr/dtype.hpp"
#include "sfm/io/zarr/metadata.hpp"
#include "sfm/io/zarr/nd.hpp"

namespace sfm::io::zarr {

using codec::Bytes;
using codec::ByteView;

class Pipeline;

namespace stage {
struct Transpose {
  std::vector<int> order;  // encoded dim i is decoded dim order[i]
};
struct BytesCodec {
  bool big_endian = false;
};
struct Sharding {
  std::vector<int64_t> inner;  // inner chunk shape
  std::shared_ptr<const Pipeline> codecs;
  std::shared_ptr<const Pipeline> index_codecs;
  bool index_at_end = true;
};
struct Compress {
  enum Kind { Blosc, Zstd, Gzip, Zlib, Lz4, Crc32c, Shuffle } kind = Zstd;
  std::string cname = "zstd";  // blosc
  int level = 5;               // blosc clevel, zstd/gzip/zlib level, lz4 acceleration
  int shuffle = 1;             // blosc: 0 none, 1 byte, 2 bit, -1 auto (v2)
  int typesize = 0;            // blosc, shuffle (0: the dtype's size)
  int64_t blocksize = 0;       // blosc
  bool checksum = false;       // zstd
};
}  // namespace stage

class Pipeline {
 public:
  // Builds from a v3 codec list for elements of `dtype` (fill used for missing inner chunks).
  // Malformed codec entries (fields of the wrong JSON type included) raise sfm::Error.
  static std::shared_ptr<const Pipeline> from_v3(const json& codecs, const DataType& dtype, const FillValue& fill,
                                                 const std::string& where) try {
    auto p = std::make_shared<Pipeline>();
    p->dtype_ = dtype;
    p->fill_ = fill.element_bytes(dtype);
    SFM_CHECK(codecs.is_array(), where, ": codecs must be a list");
    int phase = 0;  // 0: array→array, 1: bytes→bytes (after the array→bytes codec)
    for (const json& c : codecs) {
      SFM_CHECK(c.is_object() || c.is_string(), where, ": bad codec entry ", c.dump());
      const std::string name = c.is_string() ? c.get<std::string>() : json_field<std::string>(c, "name", "", where + ": codec");
      const json config = c.is_object() && c.contains("configuration") ? c["configuration"] : json::object();
      const auto need_phase = [&](int want) {
        SFM_CHECK(phase == want, where, ": codec '", name, "' is out of place in the codec list ", codecs.dump());
      };
      if (name == "transpose") {
        need_phase(0);
        p->transposes_.push_back(parse_transpose(config, where));
      } else if (name == "bytes") {
        need_phase(0);
        const std::string endian = json_field<std::string>(config, "endian", "little", where + ": bytes codec");
        SFM_CHECK(endian == "little" || endian == "big", where, ": bytes codec endian must be little or big");
        p->a2b_ = stage::BytesCodec{endian == "big"};
        phase = 1;
      } else if (name == "sharding_indexed") {
        need_phase(0);
        stage::Sharding s;
        SFM_CHECK(config.contains("chunk_shape"), where, ": sharding_indexed needs configuration.chunk_shape");
        s.inner = detail::parse_extents(config["chunk_shape"], "chunk_shape", where, true);
        s.codecs = from_v3(config.value("codecs", json::array({{{"name", "bytes"}}})), dtype, fill, where);
        FillValue none;
        s.index_codecs = from_v3(config.value("index_codecs", json::array({{{"name", "bytes"}}, {{"name", "crc32c"}}})),
                                 DataType{Kind::UInt, 8, false}, none, where + " (shard index codecs)");
        const std::string loc = json_field<std::string>(config, "index_location", "end", where + ": sharding_indexed");
        SFM_CHECK(loc == "start" || loc == "end", where, ": index_location must be start or end, got ", loc);
        s.index_at_end = loc == "end";
        for (const auto& b : s.index_codecs->b2b_)
          SFM_CHECK(b.kind == stage::Compress::Crc32c, "unsupported: shard index codecs other than bytes and crc32c in ",
                    where, " (", config["index_codecs"].dump(), ")");
        p->a2b_ = std::move(s);
        phase = 1;
      } else if (auto b = parse_compress(name, config, 3, where)) {
        need_phase(1);
        p->b2b_.push_back(*b);
      } else if (!json_field<bool>(c, "must_understand", true, where + ": codec '" + name + "'")) {
        continue;  // an optional extension we do not know: allowed to ignore
      } else {
        fail("unsupported: Zarr v3 codec '", name, "' in ", where);
      }
    }
    SFM_CHECK(phase == 1, where, ": the codec list has no array→bytes codec (bytes or sharding_indexed): ", codecs.dump());
    return p;
  } catch (const json::exception& e) {
    fail(where, ": malformed codec list: ", json_error_text(e));
  }

  // Builds the equivalent pipeline of a v2 array (order, dtype byte order, compressor).
  static std::shared_ptr<const Pipeline> from_v2(const ArrayMetadata& m, const std::string& where) try {
    auto p = std::make_shared<Pipeline>();
    p->dtype_ = m.dtype;
    p->fill_ = m.fill.element_bytes(m.dtype);
    if (m.order == 'F' && m.rank() > 1) {
      stage::Transpose t;
      for (size_t d = m.rank(); d-- > 0;) t.order.push_back(int(d));
      p->transposes_.push_back(t);
    }
    p->a2b_ = stage::BytesCodec{m.dtype.big_endian};
    if (m.filters.is_array())
      for (const json& f : m.filters) {
        auto b = f.is_object() ? parse_compress(json_field<std::string>(f, "id", "", where + ": filters"), f, 2, where) : std::nullopt;
        SFM_CHECK(b && b->kind == stage::Compress::Shuffle, "unsupported: Zarr v2 filter ", f.dump(), " in ", where);
        p->b2b_.push_back(*b);
      }
    if (!m.compressor.is_null()) {
      SFM_CHECK(m.compressor.is_object() && m.compressor.contains("id"), where, ": bad compressor ", m.compressor.dump());
      const std::string id = json_value<std::string>(m.compressor["id"], where + ": compressor 'id'");
      auto b = parse_compress(id, m.compressor, 2, where);
      SFM_CHECK(b.has_value(), "unsupported: Zarr v2 compressor '", id, "' in ", where);
      p->b2b_.push_back(*b);
    }
    return p;
  } catch (const json::exception& e) {
    fail(where, ": malformed compressor or filters: ", json_error_text(e));
  }

  static std::shared_ptr<const Pipeline> for_array(const ArrayMetadata& m, const std::string& where) {
    return m.zarr_format == 2 ? from_v2(m, where) : from_v3(m.codecs, m.dtype, m.fill, where);
  }

  const DataType& dtype() const { return dtype_; }
  std::span<const std::byte> fill_bytes() const { return fill_; }

  // The sharding codec when it is the whole pipeline (so inner chunks can be read one by one).
  const stage::Sharding* sharding() const {
    if (!transposes_.empty() || !b2b_.empty()) return nullptr;
    return std::get_if<stage::Sharding>(&a2b_);
  }

  // Stored bytes of a chunk of `shape` → native-endian C-order elements.
  Bytes decode(ByteView encoded, std::span<const int64_t> shape, const std::string& where) const {
    const size_t elem = size_t(dtype_.size);
    const size_t nbytes = size_t(nd::count(shape)) * elem;
    const size_t limit = 2 * nbytes + (size_t(1) << 20);
    Bytes data;
    ByteView view = encoded;
    for (size_t k = b2b_.size(); k-- > 0;) {
      data = decode_b2b(b2b_[k], view, limit, where);
      view = data;
    }
    std::vector<int64_t> eshape(shape.begin(), shape.end());  // the shape after the transposes
    for (const auto& t : transposes_) {
      SFM_CHECK(t.order.size() == shape.size(), where, ": transpose order has ", t.order.size(), " dims, the chunk ",
                shape.size());
      eshape = permute(eshape, t.order);
    }
    Bytes array;
    if (const auto* b = std::get_if<stage::BytesCodec>(&a2b_)) {
      SFM_CHECK(view.size() == nbytes, where, ": chunk decodes to ", view.size(), " bytes, expected ", nbytes, " (",
                nd::count(shape), " elements of ", elem, " bytes): corrupt or truncated chunk");
      array = data.empty() || view.data() != data.data() ? Bytes(view.begin(), view.end()) : std::move(data);
      if (b->big_endian != (std::endian::native == std::endian::big)) byteswap_elements(array, dtype_.size);
    } else {
      array = decode_shard(std::get<stage::Sharding>(a2b_), view, eshape, where);
    }
    for (size_t k = transposes_.size(); k-- > 0;) {
      std::vector<int64_t> before = eshape;
      eshape = unpermute(eshape, transposes_[k].order);
      array = transpose_decode(array, before, transposes_[k].order, elem);
    }
    return array;
  }

  // Same as decode, into `out` (exactly the chunk's bytes). When the last codec to run is blosc,
  // zstd or lz4 with nothing after it (no transpose, native byte order), it decompresses straight
  // into `out`: no intermediate buffer, no copy.
  void decode_into(ByteView encoded, std::span<const int64_t> shape, std::span<std::byte> out,
                   const std::string& where) const {
    const size_t nbytes = size_t(nd::count(shape)) * size_t(dtype_.size);
    SFM_CHECK(out.size() == nbytes, where, ": decode_into: a buffer of ", out.size(), " bytes for a ", nbytes, "-byte chunk");
    const bool direct = native_bytes() && !b2b_.empty();
    if (direct) {
      Bytes data;
      ByteView view = encoded;
      for (size_t k = b2b_.size(); k-- > 1;) {
        data = decode_b2b(b2b_[k], view, 2 * nbytes + (size_t(1) << 20), where);
        view = data;
      }
      using C = stage::Compress;
      const C::Kind last = b2b_[0].kind;
      if ((last == C::Blosc && codec::blosc_decode_into(view, out, where)) ||
          (last == C::Zstd && codec::zstd_decode_into(view, out, where)) ||
          (last == C::Lz4 && codec::lz4_decode_into(view, out, where)))
        return;
    }
    const Bytes decoded = decode(encoded, shape, where);
    std::memcpy(out.data(), decoded.data(), nbytes);
  }

  // Bytes [offset, offset + out.size()) of the decoded chunk of `shape` into `out`, decoding only
  // what the codecs allow: a lone blosc codec on native-order bytes decompresses just the blosc
  // blocks that hold the range. False when this pipeline (or this chunk's blosc header) cannot decode
  // part of a chunk alone; the caller then decodes all of it.
  bool decode_range_into(ByteView encoded, std::span<const int64_t> shape, size_t offset, std::span<std::byte> out,
                         const std::string& where) const {
    const size_t nbytes = size_t(nd::count(shape)) * size_t(dtype_.size);
    SFM_CHECK(offset <= nbytes && out.size() <= nbytes - offset, where, ": decode_range_into: bytes [", offset, ", ",
              offset + out.size(), ") of a ", nbytes, "-byte chunk");
    if (!lone_blosc()) return false;
    return codec::blosc_decode_range_into(encoded, nbytes, offset, out, where);
  }

  // Whether the stored chunk is a blosc buffer of the native-order elements (one blosc codec, no
  // transpose, no byte swap): then parts of it decode from the blosc blocks holding them alone.
  bool lone_blosc() const {
    return native_bytes() && b2b_.size() == 1 && b2b_[0].kind == stage::Compress::Blosc;
  }

  // Native-endian C-order elements of a chunk of `shape` → stored bytes.
  Bytes encode(ByteView array, std::span<const int64_t> shape) const {
    const size_t elem = size_t(dtype_.size);
    SFM_CHECK(array.size() == size_t(nd::count(shape)) * elem, "encode: buffer size does not match the chunk shape");
    Bytes data(array.begin(), array.end());
    std::vector<int64_t> eshape(shape.begin(), shape.end());
    for (const auto& t : transposes_) {
      SFM_CHECK(t.order.size() == shape.size(), "encode: transpose order has ", t.order.size(), " dims, the chunk ",
                shape.size());
      data = transpose_encode(data, eshape, t.order, elem);
      eshape = permute(eshape, t.order);
    }
    if (const auto* b = std::get_if<stage::BytesCodec>(&a2b_)) {
      if (b->big_endian != (std::endian::native == std::endian::big)) byteswap_elements(data, dtype_.size);
    } else {
      data = encode_shard(std::get<stage::Sharding>(a2b_), data, eshape);
    }
    for (const auto& b : b2b_) data = encode_b2b(b, data);
    return data;
  }

  // ---- shard index (for reading inner chunks one by one) ----
  static int64_t inner_count(const stage::Sharding& s, std::span<const int64_t> shard_shape) {
    int64_t n = 1;
    for (size_t d = 0; d < shard_shape.size(); ++d) n *= shard_shape[d] / s.inner[d];
    return n;
  }
  static size_t index_nbytes(const stage::Sharding& s, std::span<const int64_t> shard_shape) {
    return size_t(inner_count(s, shard_shape)) * 16 + 4 * s.index_codecs->b2b_.size();
  }
  static constexpr uint64_t kMissing = std::numeric_limits<uint64_t>::max();
  // The decoded index: (offset, nbytes) per inner chunk in C order; kMissing pairs for empty ones.
  static std::vector<uint64_t> decode_index(const stage::Sharding& s, ByteView bytes, std::span<const int64_t> shard_shape,
                                            const std::string& where) {
    const size_t want = index_nbytes(s, shard_shape);
    SFM_CHECK(bytes.size() == want, where, ": truncated shard index (", bytes.size(), " bytes, expected ", want, ")");
    const std::vector<int64_t> ishape{inner_count(s, shard_shape), 2};
    const Bytes raw = s.index_codecs->decode(bytes, ishape, where + " (shard index)");
    std::vector<uint64_t> index(raw.size() / 8);
    std::memcpy(index.data(), raw.data(), raw.size());
    for (size_t i = 0; i < index.size(); i += 2) {
      const bool missing = index[i] == kMissing && index[i + 1] == kMissing;
      SFM_CHECK(missing || index[i] <= kMissing - index[i + 1], where, ": corrupt shard index entry ", i / 2);
    }
    return index;
  }

 private:
  // Whether the bytes→bytes codecs alone make the chunk: no transpose, a bytes codec in native order.
  bool native_bytes() const {
    const auto* bytes = std::get_if<stage::BytesCodec>(&a2b_);
    return transposes_.empty() && bytes != nullptr &&
           (bytes->big_endian == (std::endian::native == std::endian::big) || dtype_.size == 1);
  }

  static std::vector<int64_t> permute(const std::vector<int64_t>& shape, const std::vector<int>& order) {
    std::vector<int64_t> out(shape.size());
    for (size_t i = 0; i < order.size(); ++i) out[i] = shape[size_t(order[i])];
    return out;
  }
  static std::vector<int64_t> unpermute(const std::vector<int64_t>& eshape, const std::vector<int>& order) {
    std::vector<int64_t> out(eshape.size());
    for (size_t i = 0; i < order.size(); ++i) out[size_t(order[i])] = eshape[i];
    return out;
  }
  // Walks the encoded (transposed) array in C order; `decoded_offset` is the matching element of the
  // decoded array. decode copies encoded → decoded, encode the other way.
  static Bytes transpose_move(ByteView src, std::span<const int64_t> eshape, const std::vector<int>& order, size_t elem,
                              bool decode) {
    const std::vector<int64_t> dshape = unpermute(std::vector<int64_t>(eshape.begin(), eshape.end()), order);
    const auto dstr = nd::strides(dshape);
    std::vector<int64_t> step(order.size());
    for (size_t i = 0; i < order.size(); ++i) step[i] = dstr[size_t(order[i])];
    Bytes out(src.size());
    size_t e = 0;
    nd::for_each_index(eshape, [&](std::span<const int64_t> idx) {
      int64_t off = 0;
      for (size_t i = 0; i < idx.size(); ++i) off += idx[i] * step[i];
      if (decode) std::memcpy(out.data() + size_t(off) * elem, src.data() + e * elem, elem);
      else std::memcpy(out.data() + e * elem, src.data() + size_t(off) * elem, elem);
      ++e;
    });
    return out;
  }
  static Bytes transpose_decode(ByteView src, std::span<const int64_t> eshape, const std::vector<int>& order, size_t elem) {
    return transpose_move(src, eshape, order, elem, true);
  }
  static Bytes transpose_encode(ByteView src, std::span<const int64_t> dshape, const std::vector<int>& order, size_t elem) {
    return transpose_move(src, permute(std::vector<int64_t>(dshape.begin(), dshape.end()), order), order, elem, false);
  }

  static stage::Transpose parse_transpose(const json& config, const std::string& where) {
    stage::Transpose t;
    const json order = config.value("order", json(nullptr));
    if (order.is_array()) {
      for (const json& v : order) {
        SFM_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < int64_t(order.size()), where,
                  ": transpose order ", order.dump(), " is not a permutation");
        t.order.push_back(int(v.get<int64_t>()));
      }
      std::vector<int> sorted = t.order;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i)
        SFM_CHECK(sorted[i] == int(i), where, ": transpose order ", order.dump(), " is not a permutation");
      return t;
    }
    fail("unsupported: transpose order ", order.dump(), " in ", where, " (expected a permutation list)");
  }

  static std::optional<stage::Compress> parse_compress(const std::string& name, const json& cfg, int format,
                                                       const std::string& where) {
    using C = stage::Compress;
    C c;
    const std::string n = name.rfind("numcodecs.", 0) == 0 ? name.substr(10) : name;
    const bool numcodecs_style = format == 2 || n != name;
    if (n == "blosc") {
      c.kind = C::Blosc;
      c.cname = json_field<std::string>(cfg, "cname", "lz4", where + ": blosc");
      c.level = detail::int_field(cfg, "clevel", 5, where);
      c.blocksize = detail::int_field(cfg, "blocksize", int64_t(0), where);
      c.typesize = detail::int_field(cfg, "typesize", 0, where);
      const json sh = cfg.value("shuffle", json(numcodecs_style ? json(1) : json("noshuffle")));
      if (sh.is_number_integer()) c.shuffle = sh.get<int>();
      else {
        const std::string s = json_value<std::string>(sh, where + ": blosc 'shuffle'");
        SFM_CHECK(s == "noshuffle" || s == "shuffle" || s == "bitshuffle", where, ": unknown blosc shuffle '", s, "'");
        c.shuffle = s == "noshuffle" ? 0 : s == "shuffle" ? 1 : 2;
      }
      static const char* known[] = {"lz4", "lz4hc", "blosclz", "zstd", "zlib", "snappy"};
      SFM_CHECK(std::find(std::begin(known), std::end(known), c.cname) != std::end(known), "unsupported: blosc cname '",
                c.cname, "' in ", where);
    } else if (n == "zstd") {
      c.kind = C::Zstd;
      c.level = detail::int_field(cfg, "level", 0, where);
      c.checksum = json_field<bool>(cfg, "checksum", false, where + ": zstd");
    } else if (n == "gzip" || n == "zlib") {
      c.kind = n == "gzip" ? C::Gzip : C::Zlib;
      c.level = detail::int_field(cfg, "level", 1, where);
      if (format == 3 && n == "zlib" && name == n) return std::nullopt;  // not a v3 core codec name
    } else if (n == "lz4") {
      if (format == 3 && name == n) return std::nullopt;
      c.kind = C::Lz4;
      c.level = detail::int_field(cfg, "acceleration", 1, where);
    } else if (n == "shuffle" && (format == 2 || name != n)) {
      c.kind = C::Shuffle;
      c.typesize = detail::int_field(cfg, "elementsize", 0, where);
    } else if (n == "crc32c" && format == 3 && name == n) {
      c.kind = C::Crc32c;
    } else {
      return std::nullopt;
    }
    return c;
  }

  Bytes decode_b2b(const stage::Compress& c, ByteView in, size_t limit, const std::string& where) const {
    using C = stage::Compress;
    switch (c.kind) {
      case C::Blosc: return codec::blosc_decode(in, limit, where);
      case C::Zstd: return codec::zstd_decode(in, limit, where);
      case C::Gzip: return codec::zlib_decode(in, limit, true, where);
      case C::Zlib: return codec::zlib_decode(in, limit, false, where);
      case C::Lz4: return codec::lz4_decode(in, limit, where);
      case C::Crc32c: return codec::crc32c_decode(in, where);
      case C::Shuffle: return codec::shuffle_bytes(in, size_t(c.typesize > 0 ? c.typesize : dtype_.size), false);
    }
    fail("unreachable codec");
  }
  Bytes encode_b2b(const stage::Compress& c, ByteView in) const {
    using C = stage::Compress;
    switch (c.kind) {
      case C::Blosc: {
        const int typesize = c.typesize > 0 ? c.typesize : dtype_.size;
        int shuffle = c.shuffle;
        if (shuffle < 0) shuffle = typesize == 1 ? 2 : 1;  // numcodecs AUTOSHUFFLE
        return codec::blosc_encode(in, c.cname, c.level, shuffle, typesize, size_t(c.blocksize));
      }
      case C::Zstd: return codec::zstd_encode(in, c.level, c.checksum);
      case C::Gzip: return codec::zlib_encode(in, c.level, true);
      case C::Zlib: return codec::zlib_encode(in, c.level, false);
      case C::Lz4: return codec::lz4_encode(in, c.level);
      case C::Crc32c: return codec::crc32c_encode(in);
      case C::Shuffle: return codec::shuffle_bytes(in, size_t(c.typesize > 0 ? c.typesize : dtype_.size), true);
    }
    fail("unreachable codec");
  }

  Bytes decode_shard(const stage::Sharding& s, ByteView blob, std::span<const int64_t> shard_shape,
                     const std::string& where) const {
    SFM_CHECK(s.inner.size() == shard_shape.size(), where, ": sharding chunk_shape rank differs from the array's");
    for (size_t d = 0; d < shard_shape.size(); ++d)
      SFM_CHECK(shard_shape[d] % s.inner[d] == 0, where, ": shard shape is not a multiple of the inner chunk shape");
    const size_t isize = index_nbytes(s, shard_shape);
    SFM_CHECK(blob.size() >= isize, where, ": truncated shard (", blob.size(), " bytes, shorter than its ", isize,
              "-byte index)");
    const auto index = decode_index(s, s.index_at_end ? blob.last(isize) : blob.first(isize), shard_shape, where);
    const size_t elem = size_t(dtype_.size);
    Bytes out(size_t(nd::count(shard_shape)) * elem);
    std::vector<int64_t> grid(shard_shape.size());
    for (size_t d = 0; d < grid.size(); ++d) grid[d] = shard_shape[d] / s.inner[d];
    const std::vector<int64_t> zero(shard_shape.size(), 0);
    Bytes fill_chunk;
    size_t k = 0;
    nd::for_each_index(grid, [&](std::span<const int64_t> g) {
      const uint64_t off = index[2 * k], len = index[2 * k + 1];
      const std::string inner_where = where + " inner chunk " + std::to_string(k);
      ++k;
      Bytes chunk;
      if (off == kMissing && len == kMissing) {
        if (fill_chunk.empty()) {
          fill_chunk.resize(size_t(nd::count(s.inner)) * elem);
          nd::fill(fill_chunk.data(), size_t(nd::count(s.inner)), s.codecs->fill_bytes());
        }
      } else {
        SFM_CHECK(off <= blob.size() && len <= blob.size() - off, inner_where, ": bytes [", off, ", ", off + len,
                  ") lie outside the ", blob.size(), "-byte shard");
        chunk = s.codecs->decode(blob.subspan(size_t(off), size_t(len)), s.inner, inner_where);
      }
      std::vector<int64_t> start(g.size());
      for (size_t d = 0; d < g.size(); ++d) start[d] = g[d] * s.inner[d];
      nd::copy_box(out.data(), shard_shape, start, chunk.empty() ? fill_chunk.data() : chunk.data(), s.inner, zero,
                   s.inner, elem);
    });
    return out;
  }

  Bytes encode_shard(const stage::Sharding& s, ByteView array, std::span<const int64_t> shard_shape) const {
    const size_t elem = size_t(dtype_.size);
    std::vector<int64_t> grid(shard_shape.size());
    for (size_t d = 0; d < grid.size(); ++d) grid[d] = shard_shape[d] / s.inner[d];
    const int64_t n = nd::count(grid);
    const size_t isize = index_nbytes(s, shard_shape);
    std::vector<uint64_t> index(size_t(2 * n), kMissing);
    Bytes body;
    const std::vector<int64_t> zero(shard_shape.size(), 0);
    Bytes chunk(size_t(nd::count(s.inner)) * elem);
    const auto fill = s.codecs->fill_bytes();
    size_t k = 0;
    nd::for_each_index(grid, [&](std::span<const int64_t> g) {
      std::vector<int64_t> start(g.size());
      for (size_t d = 0; d < g.size(); ++d) start[d] = g[d] * s.inner[d];
      nd::copy_box(chunk.data(), s.inner, zero, array.data(), shard_shape, start, s.inner, elem);
      bool all_fill = true;
      for (size_t i = 0; i < chunk.size() && all_fill; i += elem) all_fill = std::memcmp(chunk.data() + i, fill.data(), elem) == 0;
      if (!all_fill) {
        const Bytes enc = s.codecs->encode(chunk, s.inner);
        index[2 * k] = (s.index_at_end ? 0 : isize) + body.size();
        index[2 * k + 1] = enc.size();
        body.insert(body.end(), enc.begin(), enc.end());
      }
      ++k;
    });
    Bytes raw(index.size() * 8);
    std::memcpy(raw.data(), index.data(), raw.size());
    const Bytes idx = s.index_codecs->encode(raw, std::vector<int64_t>{n, 2});
    Bytes out;
    if (!s.index_at_end) out.insert(out.end(), idx.begin(), idx.end());
    out.insert(out.end(), body.begin(), body.end());
    if (s.index_at_end) out.insert(out.end(), idx.begin(), idx.end());
    return out;
  }

  DataType dtype_;
  Bytes fill_;
  std::vector<stage::Transpose> transposes_;
  std::variant<stage::BytesCodec, stage::Sharding> a2b_;
  std::vector<stage::Compress> b2b_;
};

}  // namespace sfm::io::zarr
