// sfm::Error and the checks that raise it.
//
// Every piece of bad input (a malformed config, a corrupt file, a wrong shape) surfaces as an
// sfm::Error whose message says what went wrong and where (path, key, byte offset). Library code
// never asserts or aborts on user input; the CLI turns an Error into one line on stderr.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sfm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws an Error whose message is the concatenation of `parts` (anything with operator<<).
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw Error(message.str());
}

}  // namespace sfm

// SFM_CHECK(condition, message parts...): raise sfm::Error with the message when condition is false.
#define SFM_CHECK(condition, ...)                   \
  do {                                              \
    if (!(condition)) ::sfm::fail(__VA_ARGS__);     \
  } while (0)
