// Option values the benchmark binaries share: comma-separated lists ("--shape 512,512,512").
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"

namespace sfm::bench {

// "a,b,c" → {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  for (size_t begin = 0; begin <= text.size();) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    out.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  return out;
}

// The positive integers of `option`'s value `text`; exactly `count` of them unless count is 0.
inline std::vector<int64_t> int_list(const std::string& option, const std::string& text, size_t count = 0) {
  std::vector<int64_t> out;
  try {
    for (const std::string& item : split_list(text)) {
      size_t used = 0;
      out.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    }
  } catch (const std::exception&) {
    fail(option, ": expected comma-separated integers, got '", text, "'");
  }
  SFM_CHECK((count == 0 || out.size() == count) && std::all_of(out.begin(), out.end(), [](int64_t v) { return v > 0; }),
            option, " needs ", count == 0 ? std::string("positive integers") : std::to_string(count) + " positive integers",
            ", got '", text, "'");
  return out;
}

}  // namespace sfm::bench
