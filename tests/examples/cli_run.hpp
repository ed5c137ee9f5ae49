// Runs the built `sfm` binary (SFM_CLI) as a subprocess and captures its exit code, stdout and
// stderr, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "io/servers/servers.hpp"

namespace sfm::test {

struct CliResult {
  int status = -1;  // exit code; -1 when the process did not exit normally
  std::string out, err;

  // The stderr lines (without the final newline).
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    size_t begin = 0;
    while (begin < err.size()) {
      const size_t end = err.find('\n', begin);
      lines.push_back(err.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
      if (end == std::string::npos) break;
      begin = end + 1;
    }
    return lines;
  }
};

inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// `sfm args...` with `env` ("NAME=value") added to the environment; output captured under `work`.
inline CliResult run_sfm(const std::vector<std::string>& args, const fs::path& work,
                         const std::vector<std::string>& env = {}) {
  const fs::path out = work / "cli.stdout", err = work / "cli.stderr";
  std::string command = "env";
  for (const std::string& e : env) command += " " + shell_quote(e);
  command += " " + shell_quote(SFM_CLI);
  for (const std::string& a : args) command += " " + shell_quote(a);
  command += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string());
  const int raw = std::system(command.c_str());
  CliResult result;
  result.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = read_text(out);
  result.err = read_text(err);
  return result;
}

}  // namespace sfm::test
