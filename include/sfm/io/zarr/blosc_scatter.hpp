// Decodes the blosc blocks of a chunk straight into the part of a read box that they hold.
//
// A box read with the chunk cache off needs, from each chunk it touches, only the overlap: a box
// inside the chunk. Through libblosc that costs three passes over memory beyond decompression:
// blosc_getitem decompresses the blocks holding the overlap's dim-0 rows into a temporary,
// unshuffles every byte of them into a second one and copies the rows out; the reader then copies
// the overlap from those rows into the box. blosc_scatter instead hands each block's streams to
// the codec library (libzstd, liblz4, zlib) with a scratch buffer that stays in cache (a stream
// blosc stored raw is used where it lies), then gathers the bytes of exactly the overlap's
// elements from the shuffled byte planes into the box, converting to float32 on the way. Blocks
// that hold none of the overlap's elements are not decompressed at all.
//
// The format is c-blosc 1.x's (blosc format 2), checked against its source: a block of bsize
// bytes is one stream, or typesize streams (one per byte plane) when the header's "don't split"
// flag (0x10) is clear, typesize ≤ 16, bsize / typesize ≥ 128 and the block is not the short last
// one; a stream is a little-endian int32 size and that many bytes, stored raw when the size equals
// the stream's decoded size. With byte shuffle (flag 0x1, typesize > 1) byte j of element i of a
// block lies at j · (bsize / typesize) + i. Bit shuffle, memcpyed chunks and the blosclz and snappy
// codecs are left to libblosc: blosc_scatter returns std::nullopt and the caller decodes as before.
// Every offset and size comes from the chunk and is checked against the bytes given.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "sfm/core/error.hpp"
#include "sfm/io/zarr/codecs.hpp"
#include "sfm/io/zarr/dtype.hpp"
#include "sfm/io/zarr/nd.hpp"

namespace sfm::io::zarr {

using codec::ByteView;

// The part of one chunk a box read needs, and where it goes.
struct ChunkOverlap {
  std::span<const int64_t> chunk_shape;  // the chunk's shape, in elements
  std::span<const int64_t> src;          // the overlap's start inside the chunk
  std::span<const int64_t> extent;       // the overlap's extent
  float* dst = nullptr;                  // the box element the overlap's first element goes to
  std::span<const int64_t> dst_strides;  // the box's C-order strides, in elements
};

namespace detail {

// Elements [first, first + count) of a byte-shuffled block, from its planes, as native elements
// of N bytes into `out`: byte j of element i is planes[j][i]. Runs go 16 elements at a time, in
// fixed-size steps the compiler vectorises; a run of 16 or more ends with one step over its last
// 16 elements (rewriting a few with the same values) instead of a scalar tail.
template <size_t N>
inline void unshuffle_run(const std::byte* const* planes, size_t first, size_t count, std::byte* out) {
  static_assert(N == 2 || N == 4 || N == 8, "word-wise runs: 2, 4 or 8-byte elements (called on little-endian hosts)");
  using Word = std::conditional_t<N == 2, uint16_t, std::conditional_t<N == 4, uint32_t, uint64_t>>;
  {
    const uint8_t* p[N];
    for (size_t j = 0; j < N; ++j) p[j] = reinterpret_cast<const uint8_t*>(planes[j]) + first;
    const auto elements = [&](size_t at, size_t n) {
      for (size_t i = at; i < at + n; ++i) {
        Word w = 0;
        for (size_t j = 0; j < N; ++j) w |= Word(p[j][i]) << (8 * j);  // byte j is the j-th least significant
        std::memcpy(out + i * N, &w, N);
      }
    };
    constexpr size_t kStep = 16;
    const auto step = [&](size_t at) {
#if defined(__SSE2__)
      if constexpr (N == 4) {
        // Interleave the four planes' 16 bytes: bytes, then byte pairs (blosc's SSE2 unshuffle).
        const auto load = [&](size_t j) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[j] + at)); };
        const __m128i a = load(0), b = load(1), c = load(2), d = load(3);
        const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
        const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
        __m128i* to = reinterpret_cast<__m128i*>(out + at * 4);
        _mm_storeu_si128(to, _mm_unpacklo_epi16(ab_lo, cd_lo));
        _mm_storeu_si128(to + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
        _mm_storeu_si128(to + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
        _mm_storeu_si128(to + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
        return;
      }
#endif
      elements(at, kStep);
    };
    if (count < kStep) return elements(0, count);
    size_t i = 0;
    for (; i + kStep <= count; i += kStep) step(i);
    if (i < count) step(count - kStep);
  }
}

// The same for any element size: 2, 4 and 8 bytes through the word-wise runs above (on
// little-endian hosts), others byte by byte.
inline void unshuffle_run(const std::byte* const* planes, size_t typesize, size_t first, size_t count, std::byte* out) {
  if constexpr (std::endian::native == std::endian::little) {
    if (typesize == 2) return unshuffle_run<2>(planes, first, count, out);
    if (typesize == 4) return unshuffle_run<4>(planes, first, count, out);
    if (typesize == 8) return unshuffle_run<8>(planes, first, count, out);
  }
  for (size_t i = 0; i < count; ++i)
    for (size_t j = 0; j < typesize; ++j) out[i * typesize + j] = planes[j][first + i];
}

// Whether this build decompresses blosc format code `format` itself: 1 lz4 (and lz4hc), 3 zlib,
// 4 zstd.
constexpr bool scatter_codec(int format) {
#ifdef SFM_ZARR_HAVE_LZ4
  if (format == 1) return true;
#endif
#ifdef SFM_ZARR_HAVE_ZLIB
  if (format == 3) return true;
#endif
#ifdef SFM_ZARR_HAVE_ZSTD
  if (format == 4) return true;
#endif
  return format < 0;  // never; keeps the function well-formed without any codec library
}

// Decompresses one blosc stream of exactly `size` decoded bytes with the codec of blosc format
// code `format` (scatter_codec holds) into `out`; false when it is not a valid stream of that size.
inline bool decompress_stream(int format, ByteView in, std::byte* out, size_t size) {
  switch (format) {
#ifdef SFM_ZARR_HAVE_LZ4
    case 1:  // lz4 and lz4hc
      return size <= size_t(INT32_MAX) && LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()),
                                                               reinterpret_cast<char*>(out), int(in.size()), int(size)) == int(size);
#endif
#ifdef SFM_ZARR_HAVE_ZLIB
    case 3: {
      uLongf n = uLongf(size);
      return uncompress(reinterpret_cast<Bytef*>(out), &n, reinterpret_cast<const Bytef*>(in.data()), uLong(in.size())) == Z_OK &&
             n == size;
    }
#endif
#ifdef SFM_ZARR_HAVE_ZSTD
    case 4: {
      thread_local const std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
      SFM_CHECK(context != nullptr, "zstd: out of memory");
      const size_t n = ZSTD_decompressDCtx(context.get(), out, size, in.data(), in.size());
      return !ZSTD_isError(n) && n == size;
    }
#endif
    default:
      return false;
  }
}

}  // namespace detail

// Writes the elements of `part` (native-endian `dtype` elements in the chunk, float32 in the box)
// from the chunk's `layout` (its header `h` and block offsets) and `stored`, its stored bytes from
// byte `begin` on, which must hold every block with an element of the overlap. Returns the bytes
// of the blocks it decompressed, or std::nullopt, having written nothing, when it leaves this
// chunk to libblosc (see above). A corrupt chunk raises sfm::Error naming `where`.
inline std::optional<size_t> blosc_scatter(const codec::BloscHeader& h, ByteView layout, size_t begin, ByteView stored,
                                           const DataType& dtype, const ChunkOverlap& part, const std::string& where) {
  const size_t rank = part.chunk_shape.size();
  const size_t elem = size_t(dtype.size);
  const int format = h.flags >> 5;
  const bool shuffled = (h.flags & 0x1) != 0 && h.typesize > 1;
  const size_t nbytes = size_t(nd::count(part.chunk_shape)) * elem;
  const bool handled = h.version == 2 && (h.flags & 0x0e) == 0 && detail::scatter_codec(format) &&
                       h.nbytes == nbytes && h.blocksize % elem == 0 && h.blocksize % h.typesize == 0 &&
                       (!shuffled || h.typesize == elem) && rank > 0 && layout.size() >= h.layout_bytes();
  if (!handled) return std::nullopt;
  for (const int64_t e : part.extent)
    if (e <= 0) return size_t(0);
  stored = stored.first(std::min(stored.size(), h.cbytes > begin ? h.cbytes - begin : 0));
  const bool dont_split = (h.flags & 0x10) != 0;
  const bool convert = !(dtype.kind == Kind::Float && elem == 4);

  thread_local std::vector<std::byte> scratch, row_buffer;
  if (scratch.size() < h.blocksize) scratch.resize(h.blocksize);
  const std::byte* planes[16];
  size_t block_first = 0, block_end = 0, decoded = 0;
  // Makes block b's byte planes (or, unshuffled, its bytes as planes[0]) current.
  const auto load_block = [&](size_t b) {
    const size_t bstart = b * h.blocksize, bsize = std::min(h.blocksize, h.nbytes - bstart);
    const size_t at = codec::load_le32(layout.data() + codec::kBloscHeaderBytes + 4 * b);
    SFM_CHECK(at >= std::max(begin, h.layout_bytes()) && at - begin < stored.size(), "blosc: ", where, ": block ", b,
              " starts at byte ", at, ", outside the stored blocks [", std::max(begin, h.layout_bytes()), ", ",
              begin + stored.size(), ")");
    const bool leftover = bsize < h.blocksize;
    const size_t streams = !dont_split && h.typesize <= 16 && bsize / h.typesize >= 128 && !leftover ? h.typesize : 1;
    const size_t stream_bytes = bsize / streams;
    size_t pos = at - begin;
    const std::byte* data[16];
    for (size_t s = 0; s < streams; ++s) {
      SFM_CHECK(stored.size() - pos >= 4, "blosc: ", where, ": block ", b, " ends inside a stream header");
      const size_t csize = codec::load_le32(stored.data() + pos);
      pos += 4;
      SFM_CHECK(csize <= stored.size() - pos, "blosc: ", where, ": block ", b, " stream ", s, " of ", csize,
                " bytes runs past the stored bytes");
      const ByteView in = stored.subspan(pos, csize);
      if (csize == stream_bytes) {
        data[s] = in.data();
      } else {
        std::byte* out = scratch.data() + s * stream_bytes;
        SFM_CHECK(detail::decompress_stream(format, in, out, stream_bytes), "blosc: ", where, ": block ", b, " stream ", s,
                  " does not decompress to its ", stream_bytes, " bytes: corrupt chunk");
        data[s] = out;
      }
      pos += csize;
    }
    if (shuffled) {
      const size_t plane = bsize / h.typesize;
      for (size_t j = 0; j < h.typesize; ++j) planes[j] = streams == 1 ? data[0] + j * plane : data[j];
    } else {
      planes[0] = data[0];
    }
    block_first = bstart / elem;
    block_end = (bstart + bsize) / elem;
    decoded += bsize;
  };
  // Elements [first, first + count) of the current block, as float32, into `out`.
  const auto emit = [&](size_t first, size_t count, float* out) {
    std::byte* native = convert ? nullptr : reinterpret_cast<std::byte*>(out);
    if (convert) {
      if (row_buffer.size() < count * elem) row_buffer.resize(count * elem);
      native = row_buffer.data();
    }
    if (shuffled) detail::unshuffle_run(planes, elem, first, count, native);
    else std::memcpy(native, planes[0] + first * elem, count * elem);
    if (convert) convert_to_float(dtype, native, out, count);
  };

  // The overlap's rows (its last dim) in C order, an odometer over the others; rows ascend in the
  // chunk, so each needed block is decompressed once, in order.
  const std::vector<int64_t> cs = nd::strides(part.chunk_shape);
  int64_t chunk_at = 0, box_at = 0;
  for (size_t d = 0; d < rank; ++d) chunk_at += part.src[d] * cs[d];
  const size_t run = size_t(part.extent[rank - 1]);
  std::vector<int64_t> i(rank, 0);
  for (;;) {
    for (size_t x = size_t(chunk_at), end = x + run; x < end;) {
      if (x < block_first || x >= block_end) load_block(x * elem / h.blocksize);
      const size_t upto = std::min(end, block_end);
      emit(x - block_first, upto - x, part.dst + box_at + int64_t(x - size_t(chunk_at)));
      x = upto;
    }
    size_t d = rank - 1;
    for (;;) {
      if (d == 0) return decoded;
      --d;
      if (++i[d] < part.extent[d]) {
        chunk_at += cs[d];
        box_at += part.dst_strides[d];
        break;
      }
      i[d] = 0;
      chunk_at -= (part.extent[d] - 1) * cs[d];
      box_at -= (part.extent[d] - 1) * part.dst_strides[d];
    }
  }
}

}  // namespace sfm::io::zarr
