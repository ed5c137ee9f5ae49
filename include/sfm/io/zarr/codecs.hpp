// Bytes-to-bytes codecs of Zarr v2 (compressors) and v3: blosc, zstd, zlib, gzip, lz4 (numcodecs'
// framing) and crc32c, each as an encode and a bounds-checked decode.
//
// Every decode takes `limit`, the most bytes it may produce, and `where` (store and chunk key) for
// its errors: corrupt or truncated input raises sfm::Error naming the codec, the place and what was
// wrong, and never reads outside the input. blosc, zstd and lz4 also decode straight into a
// caller's buffer (*_decode_into) when their header says the output has exactly its size; they
// return false otherwise, and the caller takes the general path, which reports any mismatch.
// blosc can decode a byte range of a chunk alone, decompressing only the blocks that hold it, from
// the whole chunk (blosc_decode_range_into) or from its header, offsets and those blocks alone
// (blosc_header, blosc_block_span, blosc_decode_blocks_into: what a network reader fetches). The C libraries are Debian's (libblosc, libzstd, zlib, liblz4); a codec
// whose library was not found at build time fails with "unsupported: ...".
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/io/buffer_pool.hpp"

#if __has_include(<blosc.h>)
#include <blosc.h>
#define SFM_ZARR_HAVE_BLOSC 1
#endif
#if __has_include(<zstd.h>)
#include <zstd.h>
#define SFM_ZARR_HAVE_ZSTD 1
#endif
#if __has_include(<zlib.h>)
#include <zlib.h>
#define SFM_ZARR_HAVE_ZLIB 1
#endif
#if __has_include(<lz4.h>)
#include <lz4.h>
#define SFM_ZARR_HAVE_LZ4 1
#endif

namespace sfm::io::zarr::codec {

using Bytes = std::vector<std::byte>;
using ByteView = std::span<const std::byte>;

// ---- crc32c (Castagnoli, reflected polynomial 0x82F63B78), as the v3 crc32c codec uses -----------
inline uint32_t crc32c(ByteView data, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::byte b : data) crc = table[(crc ^ uint32_t(b)) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

inline uint32_t load_le32(const std::byte* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void store_le32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xffu);
}

// Appends the 4-byte little-endian checksum.
inline Bytes crc32c_encode(ByteView in) {
  Bytes out(in.begin(), in.end());
  out.resize(in.size() + 4);
  store_le32(out.data() + in.size(), crc32c(in));
  return out;
}
// Verifies and strips the checksum.
inline Bytes crc32c_decode(ByteView in, const std::string& where) {
  SFM_CHECK(in.size() >= 4, "crc32c: ", where, ": ", in.size(), " bytes, too short for a checksum");
  const ByteView payload = in.first(in.size() - 4);
  const uint32_t stored = load_le32(in.data() + payload.size());
  const uint32_t actual = crc32c(payload);
  SFM_CHECK(stored == actual, "crc32c: ", where, ": checksum mismatch (stored 0x", std::hex, stored,
            ", computed 0x", actual, std::dec, ")");
  return Bytes(payload.begin(), payload.end());
}

// ---- shuffle (numcodecs Shuffle: byte k of every element stored together) ----------------------
inline Bytes shuffle_bytes(ByteView in, size_t elementsize, bool encode) {
  Bytes out(in.size());
  const size_t n = elementsize ? in.size() / elementsize : 0;
  if (elementsize <= 1 || n == 0) return Bytes(in.begin(), in.end());
  for (size_t i = 0; i < n; ++i)
    for (size_t b = 0; b < elementsize; ++b) {
      if (encode) out[b * n + i] = in[i * elementsize + b];
      else out[i * elementsize + b] = in[b * n + i];
    }
  const size_t tail = n * elementsize;  // numcodecs leaves a partial element at the end as is
  std::copy(in.begin() + tail, in.end(), out.begin() + tail);
  return out;
}

// ---- blosc ---------------------------------------------------------------------------------------
// shuffle: 0 none, 1 byte, 2 bit. Decoding trusts the blosc header (typesize, shuffle, codec).
inline Bytes blosc_encode(ByteView in, const std::string& cname, int clevel, int shuffle, int typesize,
                          size_t blocksize = 0) {
#ifdef SFM_ZARR_HAVE_BLOSC
  SFM_CHECK(in.size() <= size_t(BLOSC_MAX_BUFFERSIZE), "blosc: chunk of ", in.size(), " bytes is too large for blosc");
  Bytes out(in.size() + BLOSC_MAX_OVERHEAD);
  const int n = blosc_compress_ctx(clevel, shuffle, size_t(typesize > 0 ? typesize : 1), in.size(), in.data(),
                                   out.data(), out.size(), cname.c_str(), blocksize, 1);
  SFM_CHECK(n > 0, "blosc: compression with cname '", cname, "' failed (", n, "; is the compressor built into libblosc?)");
  out.resize(size_t(n));
  return out;
#else
  (void)in, (void)cname, (void)clevel, (void)shuffle, (void)typesize, (void)blocksize;
  fail("unsupported: blosc codec (sfm was built without libblosc)");
#endif
}

#ifdef SFM_ZARR_HAVE_BLOSC
// The decoded size a valid blosc header states.
inline size_t blosc_decoded_size(ByteView in, const std::string& where) {
  size_t nbytes = 0;
  SFM_CHECK(in.size() >= BLOSC_MIN_HEADER_LENGTH && blosc_cbuffer_validate(in.data(), in.size(), &nbytes) == 0,
            "blosc: ", where, ": corrupt or truncated blosc buffer (", in.size(), " bytes)");
  return nbytes;
}

inline void blosc_decompress_exact(ByteView in, std::span<std::byte> out, const std::string& where) {
  if (out.empty()) return;
  const int n = blosc_decompress_ctx(in.data(), out.data(), out.size(), 1);
  SFM_CHECK(n > 0 && size_t(n) == out.size(), "blosc: ", where, ": decompression failed (corrupt data, result ", n, ")");
}
#endif

inline Bytes blosc_decode(ByteView in, size_t limit, const std::string& where) {
#ifdef SFM_ZARR_HAVE_BLOSC
  const size_t nbytes = blosc_decoded_size(in, where);
  SFM_CHECK(nbytes <= limit, "blosc: ", where, ": header says ", nbytes, " bytes decoded, more than the expected ", limit);
  Bytes out(nbytes);
  blosc_decompress_exact(in, out, where);
  return out;
#else
  (void)in, (void)limit;
  fail("unsupported: blosc codec at ", where, " (sfm was built without libblosc)");
#endif
}

inline bool blosc_decode_into(ByteView in, std::span<std::byte> out, const std::string& where) {
#ifdef SFM_ZARR_HAVE_BLOSC
  if (blosc_decoded_size(in, where) != out.size()) return false;
  blosc_decompress_exact(in, out, where);
  return true;
#else
  (void)in, (void)out, (void)where;
  return false;
#endif
}

// ---- blosc chunks read in parts -----------------------------------------------------------------
// A blosc (1.x format) chunk is a 16-byte header (format version, codec version, flags, typesize,
// then little-endian int32 nbytes, blocksize, cbytes), then, unless the memcpyed flag is set, one
// int32 offset per block, then the compressed blocks, each from its offset on. blosc_getitem reads
// only the header, the offsets of the blocks holding the items asked for, and those blocks (checked
// against the c-blosc 1.x source: blocks outside the range are skipped before their offset is read,
// and a block's reads are bounded by the header's cbytes). So a reader that fetches the header and
// offsets, then the blocks a range of decoded bytes needs, decodes that range without the rest.
constexpr size_t kBloscHeaderBytes = 16;

struct BloscHeader {
  int version = 0;
  int flags = 0;
  size_t typesize = 0, nbytes = 0, blocksize = 0, cbytes = 0;

  bool memcpyed() const { return (flags & 0x2) != 0; }  // BLOSC_MEMCPYED: the blocks are stored as is
  size_t blocks() const { return blocksize == 0 ? 0 : (nbytes + blocksize - 1) / blocksize; }
  // The header and the offsets: what locating a block needs.
  size_t layout_bytes() const { return kBloscHeaderBytes + (memcpyed() ? 0 : 4 * blocks()); }
};

// The header at the start of `head` (at least its 16 bytes), its sizes checked against each other.
inline BloscHeader blosc_header(ByteView head, const std::string& where) {
  SFM_CHECK(head.size() >= kBloscHeaderBytes, "blosc: ", where, ": ", head.size(),
            " bytes, shorter than a blosc header: corrupt or truncated chunk");
  BloscHeader h;
  h.version = int(head[0]);
  h.flags = int(head[2]);
  h.typesize = size_t(head[3]);
  h.nbytes = load_le32(head.data() + 4);
  h.blocksize = load_le32(head.data() + 8);
  h.cbytes = load_le32(head.data() + 12);
  const bool sane = h.typesize > 0 && h.nbytes <= size_t(INT32_MAX) - kBloscHeaderBytes &&
                    (h.nbytes == 0 || (h.blocksize > 0 && h.blocksize <= h.nbytes)) && h.cbytes >= h.layout_bytes();
  SFM_CHECK(sane, "blosc: ", where, ": corrupt blosc header (typesize ", h.typesize, ", nbytes ", h.nbytes, ", blocksize ",
            h.blocksize, ", cbytes ", h.cbytes, ")");
  return h;
}

// Whether decoded bytes [offset, offset + size) of a chunk of `nbytes` decoded bytes with header `h`
// can be decoded from the blocks holding them alone: blosc format 2 (what c-blosc 1.x writes and
// blosc_getitem reads), blocks with offsets, the size the caller expects, whole items.
inline bool blosc_decodes_part(const BloscHeader& h, size_t nbytes, size_t offset, size_t size) {
  return h.version == 2 && !h.memcpyed() && h.nbytes == nbytes && size > 0 && offset % h.typesize == 0 &&
         size % h.typesize == 0 && offset <= nbytes && size <= nbytes - offset;
}

// The stored bytes [begin, end) of the blocks that hold decoded bytes [offset, offset + size), from
// `layout`, the chunk's first h.layout_bytes() bytes (blosc_decodes_part must hold). An offset outside
// the chunk's blocks is an error; std::nullopt when the blocks are not stored in order (the caller
// then decodes the whole chunk, whose decoder checks every block).
inline std::optional<std::pair<size_t, size_t>> blosc_block_span(const BloscHeader& h, ByteView layout, size_t offset,
                                                                  size_t size, const std::string& where) {
  SFM_CHECK(layout.size() >= h.layout_bytes(), "blosc: ", where, ": ", layout.size(), " bytes of header and offsets, expected ",
            h.layout_bytes());
  const size_t first = offset / h.blocksize, last = (offset + size - 1) / h.blocksize;
  const auto start = [&](size_t block) {
    if (block == h.blocks()) return h.cbytes;
    const size_t at = load_le32(layout.data() + kBloscHeaderBytes + 4 * block);
    SFM_CHECK(at >= h.layout_bytes() && at < h.cbytes, "blosc: ", where, ": corrupt offset table: block ", block,
              " starts at byte ", at, ", outside the chunk's blocks [", h.layout_bytes(), ", ", h.cbytes, ")");
    return at;
  };
  const size_t begin = start(first);
  size_t end = begin;
  for (size_t block = first; block <= last; ++block) {
    const size_t next = start(block + 1);
    if (next <= end) return std::nullopt;
    end = next;
  }
  return std::pair{begin, end};
}

#ifdef SFM_ZARR_HAVE_BLOSC
// Items [offset, offset + out.size()) / typesize of `in`, a blosc buffer whose header states `cbytes`
// no larger than in.size().
inline void blosc_getitem_exact(ByteView in, size_t offset, std::span<std::byte> out, size_t typesize,
                                const std::string& where) {
  const int n = blosc_getitem(in.data(), int(offset / typesize), int(out.size() / typesize), out.data());
  SFM_CHECK(n > 0 && size_t(n) == out.size(), "blosc: ", where, ": decompression failed (corrupt data, result ", n, ")");
}
#endif

// Decoded bytes [offset, offset + out.size()) from a chunk's `layout` (header and offsets) and
// `blocks`, its stored bytes from `begin` on as blosc_block_span named them. blosc_getitem runs on
// a compact copy, the header's cbytes cut to the end of those blocks and their offsets moved with
// them, so that whatever the chunk says, it reads nothing but the bytes given.
inline void blosc_decode_blocks_into(const BloscHeader& h, ByteView layout, size_t begin, ByteView blocks, size_t offset,
                                     std::span<std::byte> out, const std::string& where) {
#ifdef SFM_ZARR_HAVE_BLOSC
  SFM_CHECK(blosc_decodes_part(h, h.nbytes, offset, out.size()) && layout.size() >= h.layout_bytes() &&
                begin >= h.layout_bytes() && h.layout_bytes() + blocks.size() <= size_t(INT32_MAX),
            "blosc: ", where, ": blosc_decode_blocks_into: bytes [", offset, ", ", offset + out.size(),
            ") cannot be decoded from blocks at ", begin);
  const size_t head = h.layout_bytes();
  BufferPool::Buffer compact = BufferPool::shared().get(head + blocks.size());
  std::byte* data = compact.bytes().data();
  std::memcpy(data, layout.data(), head);
  store_le32(data + 12, uint32_t(head + blocks.size()));
  const size_t first = offset / h.blocksize, last = (offset + out.size() - 1) / h.blocksize;
  for (size_t block = 0; block < h.blocks(); ++block) {
    const size_t at = block >= first && block <= last ? load_le32(layout.data() + kBloscHeaderBytes + 4 * block) : begin;
    SFM_CHECK(at >= begin && at - begin < blocks.size(), "blosc: ", where, ": block ", block, " starts at byte ", at,
              ", outside the fetched bytes [", begin, ", ", begin + blocks.size(), ")");
    store_le32(data + kBloscHeaderBytes + 4 * block, uint32_t(head + (at - begin)));
  }
  std::memcpy(data + head, blocks.data(), blocks.size());
  blosc_getitem_exact(compact.bytes(), offset, out, h.typesize, where);
#else
  (void)h, (void)layout, (void)begin, (void)blocks, (void)offset, (void)out;
  fail("unsupported: blosc codec at ", where, " (sfm was built without libblosc)");
#endif
}

// Bytes [offset, offset + out.size()) of a whole blosc chunk of `nbytes` decoded bytes into `out`,
// decompressing only the blosc blocks that hold them. False when the header states another decoded
// size or a typesize that does not divide the range (the caller then decodes the whole chunk).
inline bool blosc_decode_range_into(ByteView in, size_t nbytes, size_t offset, std::span<std::byte> out,
                                    const std::string& where) {
#ifdef SFM_ZARR_HAVE_BLOSC
  SFM_CHECK(offset <= nbytes && out.size() <= nbytes - offset, "blosc: ", where, ": bytes [", offset, ", ",
            offset + out.size(), ") lie outside the ", nbytes, "-byte chunk");
  if (blosc_decoded_size(in, where) != nbytes) return false;
  const BloscHeader h = blosc_header(in, where);
  if (h.typesize == 0 || offset % h.typesize != 0 || out.size() % h.typesize != 0) return false;
  if (out.empty()) return true;
  // blosc_getitem trusts the header's compressed size; blosc_decoded_size checked it against the input.
  blosc_getitem_exact(in, offset, out, h.typesize, where);
  return true;
#else
  (void)in, (void)nbytes, (void)offset, (void)out, (void)where;
  return false;
#endif
}

// ---- zstd ----------------------------------------------------------------------------------------
inline Bytes zstd_encode(ByteView in, int level, bool checksum) {
#ifdef SFM_ZARR_HAVE_ZSTD
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  SFM_CHECK(ctx != nullptr, "zstd: out of memory");
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  Bytes out(ZSTD_compressBound(in.size()));
  const size_t n = ZSTD_compress2(ctx, out.data(), out.size(), in.data(), in.size());
  ZSTD_freeCCtx(ctx);
  SFM_CHECK(!ZSTD_isError(n), "zstd: compression failed: ", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
#else
  (void)in, (void)level, (void)checksum;
  fail("unsupported: zstd codec (sfm was built without libzstd)");
#endif
}

// Frames with a content size decode in one call; frames without one (streamed) decode by stream,
// bounded by `limit`.
inline Bytes zstd_decode(ByteView in, size_t limit, const std::string& where) {
#ifdef SFM_ZARR_HAVE_ZSTD
  const unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  SFM_CHECK(size != ZSTD_CONTENTSIZE_ERROR, "zstd: ", where, ": not a zstd frame (corrupt or truncated, ", in.size(), " bytes)");
  if (size != ZSTD_CONTENTSIZE_UNKNOWN) {
    SFM_CHECK(size <= limit, "zstd: ", where, ": frame says ", size, " bytes decoded, more than the expected ", limit);
    Bytes out(static_cast<size_t>(size));
    const size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    if (!ZSTD_isError(n) && n == size) return out;
    // Several frames, or a corrupt one: the streaming decoder below finds out which, with bounds.
  }
  ZSTD_DStream* stream = ZSTD_createDStream();
  SFM_CHECK(stream != nullptr, "zstd: out of memory");
  Bytes out;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t last = 1;
  std::string error;
  while (input.pos < input.size || last != 0) {
    const size_t before = out.size();
    const size_t grow = std::min<size_t>(std::max<size_t>(ZSTD_DStreamOutSize(), before), limit + 1 - before);
    if (grow == 0) { error = "decoded data exceeds the expected " + std::to_string(limit) + " bytes"; break; }
    out.resize(before + grow);
    ZSTD_outBuffer output{out.data() + before, grow, 0};
    last = ZSTD_decompressStream(stream, &output, &input);
    out.resize(before + output.pos);
    if (ZSTD_isError(last)) { error = ZSTD_getErrorName(last); break; }
    if (out.size() > limit) { error = "decoded data exceeds the expected " + std::to_string(limit) + " bytes"; break; }
    if (input.pos == input.size && last != 0 && output.pos < grow) { error = "truncated frame"; break; }
  }
  ZSTD_freeDStream(stream);
  SFM_CHECK(error.empty(), "zstd: ", where, ": ", error);
  return out;
#else
  (void)in, (void)limit;
  fail("unsupported: zstd codec at ", where, " (sfm was built without libzstd)");
#endif
}

// A single frame that states its content size, decoded into `out` when that size is out.size().
inline bool zstd_decode_into(ByteView in, std::span<std::byte> out, const std::string& where) {
#ifdef SFM_ZARR_HAVE_ZSTD
  (void)where;
  if (ZSTD_getFrameContentSize(in.data(), in.size()) != out.size()) return false;
  const size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  return !ZSTD_isError(n) && n == out.size();  // several frames or a corrupt one: the general path says which
#else
  (void)in, (void)out, (void)where;
  return false;
#endif
}

// ---- zlib / gzip ---------------------------------------------------------------------------------
inline Bytes zlib_encode(ByteView in, int level, bool gzip) {
#ifdef SFM_ZARR_HAVE_ZLIB
  z_stream z{};
  SFM_CHECK(deflateInit2(&z, level, Z_DEFLATED, gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY) == Z_OK, "zlib: init failed");
  Bytes out(deflateBound(&z, uLong(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t n = z.total_out;
  deflateEnd(&z);
  SFM_CHECK(rc == Z_STREAM_END, "zlib: compression failed (", rc, ")");
  out.resize(n);
  return out;
#else
  (void)in, (void)level, (void)gzip;
  fail("unsupported: zlib/gzip codec (sfm was built without zlib)");
#endif
}

inline Bytes zlib_decode(ByteView in, size_t limit, bool gzip, const std::string& where) {
#ifdef SFM_ZARR_HAVE_ZLIB
  const char* name = gzip ? "gzip" : "zlib";
  z_stream z{};
  SFM_CHECK(inflateInit2(&z, gzip ? 15 + 16 : 15) == Z_OK, name, ": init failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = uInt(in.size());
  Bytes out;
  int rc = Z_OK;
  std::string error;
  while (rc != Z_STREAM_END) {
    const size_t before = out.size();
    const size_t grow = std::min<size_t>(std::max<size_t>(size_t(1) << 16, before), limit + 1 - before);
    if (grow == 0) { error = "decoded data exceeds the expected " + std::to_string(limit) + " bytes"; break; }
    out.resize(before + grow);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    z.avail_out = uInt(grow);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(before + (grow - z.avail_out));
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) { error = "truncated stream"; break; }
    if (rc != Z_OK && rc != Z_BUF_ERROR) { error = z.msg ? z.msg : "corrupt stream"; break; }
    if (out.size() > limit) { error = "decoded data exceeds the expected " + std::to_string(limit) + " bytes"; break; }
  }
  inflateEnd(&z);
  SFM_CHECK(error.empty(), name, ": ", where, ": ", error);
  return out;
#else
  (void)in, (void)limit;
  fail("unsupported: ", gzip ? "gzip" : "zlib", " codec at ", where, " (sfm was built without zlib)");
#endif
}

// ---- lz4 (numcodecs framing: 4-byte little-endian decoded size, then one LZ4 block) -------------
inline Bytes lz4_encode(ByteView in, int acceleration) {
#ifdef SFM_ZARR_HAVE_LZ4
  SFM_CHECK(in.size() <= size_t(LZ4_MAX_INPUT_SIZE), "lz4: chunk of ", in.size(), " bytes is too large");
  Bytes out(4 + size_t(LZ4_compressBound(int(in.size()))));
  store_le32(out.data(), uint32_t(in.size()));
  const int n = LZ4_compress_fast(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data() + 4),
                                  int(in.size()), int(out.size() - 4), acceleration > 0 ? acceleration : 1);
  SFM_CHECK(n > 0 || in.empty(), "lz4: compression failed");
  out.resize(4 + size_t(n));
  return out;
#else
  (void)in, (void)acceleration;
  fail("unsupported: lz4 codec (sfm was built without liblz4)");
#endif
}

inline Bytes lz4_decode(ByteView in, size_t limit, const std::string& where) {
#ifdef SFM_ZARR_HAVE_LZ4
  SFM_CHECK(in.size() >= 4, "lz4: ", where, ": ", in.size(), " bytes, too short for the size header");
  const uint32_t size = load_le32(in.data());
  SFM_CHECK(size <= limit, "lz4: ", where, ": header says ", size, " bytes decoded, more than the expected ", limit);
  Bytes out(size);
  if (size == 0) return out;
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + 4), reinterpret_cast<char*>(out.data()),
                                    int(in.size() - 4), int(size));
  SFM_CHECK(n >= 0 && uint32_t(n) == size, "lz4: ", where, ": corrupt or truncated block (decoded ", n, " of ", size, " bytes)");
  return out;
#else
  (void)in, (void)limit;
  fail("unsupported: lz4 codec at ", where, " (sfm was built without liblz4)");
#endif
}

inline bool lz4_decode_into(ByteView in, std::span<std::byte> out, const std::string& where) {
#ifdef SFM_ZARR_HAVE_LZ4
  if (in.size() < 4 || load_le32(in.data()) != out.size() || out.empty()) return false;
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + 4), reinterpret_cast<char*>(out.data()),
                                    int(in.size() - 4), int(out.size()));
  SFM_CHECK(n >= 0 && size_t(n) == out.size(), "lz4: ", where, ": corrupt or truncated block (decoded ", n, " of ",
            out.size(), " bytes)");
  return true;
#else
  (void)in, (void)out, (void)where;
  return false;
#endif
}

}  // namespace sfm::io::zarr::codec
