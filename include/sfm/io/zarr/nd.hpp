// N-dimensional index helpers for chunked arrays: element counts, C-order strides, and copying a
// box between two C-order buffers (chunk ↔ shard, chunk → read box). Row-wise memcpy on the last
// dimension; the caller guarantees the boxes lie inside both buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

namespace sfm::io::zarr::nd {

inline int64_t count(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  return n;
}

inline std::vector<int64_t> strides(std::span<const int64_t> shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

// Calls fn(index) for every index of the box `extent`, in C order. Nothing for an empty box.
template <class Fn>
void for_each_index(std::span<const int64_t> extent, Fn&& fn) {
  const size_t rank = extent.size();
  for (int64_t e : extent)
    if (e <= 0) return;
  std::vector<int64_t> index(rank, 0);
  while (true) {
    fn(std::span<const int64_t>(index));
    size_t d = rank;
    while (d > 0) {
      --d;
      if (++index[d] < extent[d]) break;
      index[d] = 0;
      if (d == 0) return;
    }
    if (rank == 0) return;
  }
}

// Copies the box of `extent` elements (each `elem` bytes) from `src` (C order, `src_shape`) at
// `src_start` into `dst` (C order, `dst_shape`) at `dst_start`.
inline void copy_box(std::byte* dst, std::span<const int64_t> dst_shape, std::span<const int64_t> dst_start,
                     const std::byte* src, std::span<const int64_t> src_shape, std::span<const int64_t> src_start,
                     std::span<const int64_t> extent, size_t elem) {
  const size_t rank = extent.size();
  if (rank == 0) {
    std::memcpy(dst, src, elem);
    return;
  }
  for (int64_t e : extent)
    if (e <= 0) return;
  const auto ds = strides(dst_shape), ss = strides(src_shape);
  const size_t row = size_t(extent[rank - 1]) * elem;
  int64_t d_off = 0, s_off = 0;  // element offsets of the current row, stepped like an odometer
  for (size_t d = 0; d < rank; ++d) {
    d_off += dst_start[d] * ds[d];
    s_off += src_start[d] * ss[d];
  }
  std::vector<int64_t> i(rank, 0);
  for (;;) {
    std::memcpy(dst + size_t(d_off) * elem, src + size_t(s_off) * elem, row);
    size_t d = rank - 1;  // the last dim is the row itself
    for (;;) {
      if (d == 0) return;
      --d;
      if (++i[d] < extent[d]) {
        d_off += ds[d];
        s_off += ss[d];
        break;
      }
      i[d] = 0;
      d_off -= (extent[d] - 1) * ds[d];
      s_off -= (extent[d] - 1) * ss[d];
    }
  }
}

// Sets the box of `extent` at `dst_start` in `dst` (C order, `dst_shape`) to `value`.
template <class T>
void fill_box(T* dst, std::span<const int64_t> dst_shape, std::span<const int64_t> dst_start,
              std::span<const int64_t> extent, T value) {
  const size_t rank = extent.size();
  if (rank == 0) {
    *dst = value;
    return;
  }
  for (int64_t e : extent)
    if (e <= 0) return;
  const auto ds = strides(dst_shape);
  std::vector<int64_t> outer(extent.begin(), extent.end());
  outer[rank - 1] = 1;
  for_each_index(outer, [&](std::span<const int64_t> i) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += (dst_start[d] + i[d]) * ds[d];
    std::fill(dst + off, dst + off + extent[rank - 1], value);
  });
}

// Fills a C-order buffer of `n` elements with one `elem`-byte value.
inline void fill(std::byte* dst, size_t n, std::span<const std::byte> value) {
  for (size_t i = 0; i < n; ++i) std::memcpy(dst + i * value.size(), value.data(), value.size());
}

}  // namespace sfm::io::zarr::nd
