// Large allocations checked before they are made: the bytes a box of extents needs (overflow
// checked) against the machine's physical memory, so a request that cannot be met is one sfm::Error
// naming how many bytes it needs instead of std::bad_alloc or the kernel's OOM killer.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "sfm/core/error.hpp"

namespace sfm {

// The machine's physical memory in bytes (0 when the system does not say).
inline uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

// "1.5 GiB": a byte count for people.
inline std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 6) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

// "64×64×128": extents as the errors print them.
inline std::string extents_string(std::span<const int64_t> extents) {
  std::string text;
  for (size_t i = 0; i < extents.size(); ++i) text += (i ? "×" : "") + std::to_string(extents[i]);
  return text;
}

// item_bytes × every extent (all non-negative); UINT64_MAX when the product does not fit.
inline uint64_t bytes_of(std::span<const int64_t> extents, uint64_t item_bytes) {
  uint64_t bytes = item_bytes;
  for (const int64_t e : extents) {
    const auto factor = uint64_t(e);
    bytes = factor != 0 && bytes > UINT64_MAX / factor ? UINT64_MAX : bytes * factor;
  }
  return bytes;
}

// Refuses `bytes` (float32 values, say) that exceed the physical memory: "`what` needs N bytes
// (X GiB) of memory, more than this machine's Y GiB".
inline void check_fits_in_memory(uint64_t bytes, const std::string& what) {
  const uint64_t memory = physical_memory_bytes();
  SFM_CHECK(memory == 0 || bytes <= memory, what, " needs ",
            bytes == UINT64_MAX ? std::string("more than 2^64") : std::to_string(bytes), " bytes (",
            format_bytes(double(bytes)), ") of memory, more than this machine's ", format_bytes(double(memory)));
}

}  // namespace sfm
