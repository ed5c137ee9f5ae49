// Helpers shared by the core tests: capturing sfm::Error messages, raw file bytes, and running
// a Python with NumPy (the project venv's, else Debian's) to write or check files at test time.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm_test.hpp"

namespace sfm::test {

// The message of the sfm::Error that `action` raises, or nothing if it returns normally. Any other
// exception propagates, which fails the test.
template <class F>
std::optional<std::string> error_message(F&& action) {
  try {
    action();
  } catch (const sfm::Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline void write_bytes(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::vector<std::byte> to_bytes(const std::string& text) {
  const auto* begin = reinterpret_cast<const std::byte*>(text.data());
  return {begin, begin + text.size()};
}

// A Python interpreter that imports numpy. The test fails (never passes silently) if there is none.
inline std::string numpy_python() {
  for (const char* python : {SFM_VENV_PYTHON, SFM_TORCH_PYTHON}) {
    const std::string probe = std::string("\"") + python + "\" -c \"import numpy\" >/dev/null 2>&1";
    if (std::filesystem::exists(python) && std::system(probe.c_str()) == 0) return python;
  }
  INFO("neither " SFM_VENV_PYTHON " nor " SFM_TORCH_PYTHON " can import numpy");
  REQUIRE(false);
  return {};
}

// Runs `code` as a script with `dir` as sys.argv[1]; requires exit status 0.
inline void run_python(const std::filesystem::path& dir, const std::string& code) {
  const std::filesystem::path script = dir / "script.py";
  {
    std::ofstream out(script);
    out << code;
    REQUIRE(out.good());
  }
  std::string command = "\"";
  command.append(numpy_python()).append("\" \"").append(script.string()).append("\" \"").append(dir.string()).append("\"");
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
}

}  // namespace sfm::test
