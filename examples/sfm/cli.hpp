// Small helpers shared by the sfm subcommands: argument parsing and JSON output.
//
// Arguments are `--key value` pairs and positionals; a subcommand declares the keys it accepts, so
// a typo is an error, not silently ignored. Errors are sfm::Error; main() prints them as one line
// and exits with status 2.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"

namespace sfm::cli {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;  // a key may repeat (--set)

  bool has(const std::string& key) const { return options.count(key) != 0; }
  std::string get(const std::string& key, const std::string& fallback = "") const {
    const auto found = options.find(key);
    return found == options.end() ? fallback : found->second.back();
  }
  std::string require(const std::string& key) const {
    SFM_CHECK(has(key), "missing required option --", key);
    return get(key);
  }
};

// Parses argv[first..] accepting only `known` option keys; `flags` take no value.
inline Args parse_args(int argc, char** argv, int first, const std::set<std::string>& known,
                       const std::set<std::string>& flags = {}) {
  Args args;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      args.positional.push_back(arg);
      continue;
    }
    const std::string key = arg.substr(2);
    SFM_CHECK(known.count(key) || flags.count(key), "unknown option ", arg);
    if (flags.count(key)) {
      args.options[key].push_back("true");
      continue;
    }
    SFM_CHECK(i + 1 < argc, "option ", arg, " needs a value");
    args.options[key].push_back(argv[++i]);
  }
  return args;
}

// An integer option value, with a clear error when it is not one.
inline int64_t parse_int(const std::string& text, const std::string& what) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SFM_CHECK(used == text.size() && !text.empty(), what, ": expected an integer, got '", text, "'");
  return value;
}

// A comma-separated list of integers ("64,64,128"), with a clear error naming the option.
inline std::vector<int64_t> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<int64_t> values;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    values.push_back(parse_int(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin), what));
    if (comma == std::string::npos) return values;
    begin = comma + 1;
  }
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  SFM_CHECK(in.good(), "cannot open ", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", json_error_text(e));
  }
}

int run_embed(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_train(int argc, char** argv);
int run_zarr(int argc, char** argv);
int run_synth(int argc, char** argv);
int run_bench(int argc, char** argv);

}  // namespace sfm::cli
