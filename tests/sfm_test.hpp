// One include for every test: Catch2 2.x (Debian 12, catch2/catch.hpp) or 3.x (Ubuntu 24.04),
// plus small helpers for comparing float arrays against a reference with a stated tolerance.
#pragma once

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>

namespace sfm::test {

// Largest |a[i] - b[i]| over the arrays (which must have equal length).
template <class A, class B>
double max_abs_diff(std::span<const A> a, std::span<const B> b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

template <class T>
double max_abs(std::span<const T> a) {
  double worst = 0;
  for (const T& v : a) worst = std::max(worst, std::abs(double(v)));
  return worst;
}

// A fresh empty directory under the build tree's temp area, removed first if it exists.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const char* root = std::getenv("SFM_TEST_TMP");
  std::filesystem::path dir = std::filesystem::path(root ? root : std::filesystem::temp_directory_path().string()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace sfm::test
