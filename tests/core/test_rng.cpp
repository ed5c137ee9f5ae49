// Tests of sfm/core/rng.hpp: Philox known answers, the keyed generator's layout, statistics, and
// independence of the numbers from call order and thread count.
#include "sfm/core/rng.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "core_test_util.hpp"

using sfm::PhiloxBlock;
using sfm::PhiloxKey;

namespace {

bool same_words(PhiloxBlock a, PhiloxBlock b) { return a == b; }

struct Moments {
  double mean = 0, variance = 0;
};

Moments moments(const std::vector<float>& values) {
  Moments m;
  for (float v : values) m.mean += v;
  m.mean /= double(values.size());
  for (float v : values) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= double(values.size() - 1);
  return m;
}

}  // namespace

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[rng]") {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4].
  CHECK(same_words(sfm::philox4x32({{0, 0, 0, 0}}, {{0, 0}}), {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}));
  CHECK(same_words(sfm::philox4x32({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, {{0xffffffff, 0xffffffff}}),
                   {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}));
  CHECK(same_words(sfm::philox4x32({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, {{0xa4093822, 0x299f31d0}}),
                   {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}));
  static_assert(sfm::philox4x32({{0, 0, 0, 0}}, {{0, 0}}) == PhiloxBlock{{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
}

TEST_CASE("Rng words are Philox of (stream, block) under the seed", "[rng]") {
  const uint64_t seed = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL;
  const sfm::Rng rng(seed, stream);
  for (uint64_t index : {uint64_t{0}, uint64_t{1}, uint64_t{6}, uint64_t{1} << 34 | 3, ~uint64_t{0}}) {
    const uint64_t block = index / 4;
    const PhiloxBlock expected = sfm::philox4x32(
        {{0x76543210u, 0xfedcba98u, static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32)}},
        {{0x89abcdefu, 0x01234567u}});
    CHECK(rng.bits(index) == expected.words[index % 4]);
    CHECK(rng.uniform(index) == float(expected.words[index % 4] >> 8) / 16777216.0f);
  }
  static_assert(sfm::Rng(0, 0).bits(1) == 0xe169c58d);
}

TEST_CASE("Rng uniform values lie in [0, 1) with the right moments", "[rng]") {
  const sfm::Rng rng(42, sfm::rng_stream(sfm::RngPurpose::init, 0, 0));
  std::vector<float> values(1 << 20);
  rng.fill_uniform(values);
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  CHECK(*low >= 0.0f);
  CHECK(*high < 1.0f);
  const Moments m = moments(values);
  CHECK(std::abs(m.mean - 0.5) < 2e-3);              // sd of the mean: 2.8e-4
  CHECK(std::abs(m.variance - 1.0 / 12.0) < 1e-3);  // sd of the variance: 7e-5
  // Each value is a multiple of 2^-24 (24 bits of the word).
  CHECK(std::all_of(values.begin(), values.begin() + 1000,
                    [](float v) { return std::ldexp(v, 24) == std::floor(std::ldexp(v, 24)); }));
}

TEST_CASE("Rng normal values have the right moments and tails", "[rng]") {
  const sfm::Rng rng(7, sfm::rng_stream(sfm::RngPurpose::mask, 3, 9));
  std::vector<float> values(1 << 20);
  rng.fill_normal(values, 0.0f, 1.0f);
  CHECK(std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); }));
  const Moments m = moments(values);
  CHECK(std::abs(m.mean) < 5e-3);
  CHECK(std::abs(m.variance - 1.0) < 1e-2);
  const double within_one = double(std::count_if(values.begin(), values.end(), [](float v) { return std::abs(v) < 1; }));
  const double within_two = double(std::count_if(values.begin(), values.end(), [](float v) { return std::abs(v) < 2; }));
  CHECK(std::abs(within_one / double(values.size()) - 0.682689) < 3e-3);
  CHECK(std::abs(within_two / double(values.size()) - 0.954500) < 2e-3);

  std::vector<float> scaled(1000);
  rng.fill_normal(scaled, 2.0f, 0.02f, 17);
  for (size_t i = 0; i < scaled.size(); ++i) CHECK(scaled[i] == 2.0f + 0.02f * rng.normal(17 + i));
}

TEST_CASE("Rng numbers do not depend on call order, chunking or threads", "[rng]") {
  const sfm::Rng rng(1234, 5);
  const size_t count = 10007;
  const uint64_t first = 3;  // not a block boundary
  std::vector<float> uniform(count), normal(count);
  rng.fill_uniform(uniform, first);
  rng.fill_normal(normal, 0.0f, 1.0f, first);

  for (size_t i = count; i-- > 0;) {  // scalar calls, backwards
    REQUIRE(uniform[i] == rng.uniform(first + i));
    REQUIRE(normal[i] == rng.normal(first + i));
  }
  for (unsigned threads : {1u, 3u, 7u}) {
    std::vector<float> u(count), n(count);
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        const size_t begin = count * t / threads, end = count * (t + 1) / threads;
        rng.fill_uniform(std::span(u).subspan(begin, end - begin), first + begin);
        rng.fill_normal(std::span(n).subspan(begin, end - begin), 0.0f, 1.0f, first + begin);
      });
    for (std::thread& worker : workers) worker.join();
    CHECK(u == uniform);
    CHECK(n == normal);
  }
}

TEST_CASE("Rng streams and seeds give unrelated numbers", "[rng]") {
  const size_t count = 1 << 16;
  std::vector<float> base(count), other_stream(count), other_seed(count);
  sfm::Rng(1, 100).fill_uniform(base);
  sfm::Rng(1, 101).fill_uniform(other_stream);
  sfm::Rng(2, 100).fill_uniform(other_seed);
  for (const std::vector<float>* other : {&other_stream, &other_seed}) {
    double covariance = 0;
    for (size_t i = 0; i < count; ++i) covariance += (base[i] - 0.5) * ((*other)[i] - 0.5);
    const double correlation = covariance / double(count) * 12.0;
    CHECK(std::abs(correlation) < 0.02);  // sd 0.004
    CHECK(base != *other);
  }
}

TEST_CASE("rng_stream packs purpose, step and sample into disjoint bit fields", "[rng]") {
  using sfm::RngPurpose;
  CHECK(sfm::rng_stream(RngPurpose::init, 0, 0) == 0);
  CHECK(sfm::rng_stream(RngPurpose::mask, 1, 2) == (uint64_t{1} << 60 | uint64_t{1} << 28 | 2));
  CHECK(sfm::rng_stream(RngPurpose::dropout, 0xffffffff, 0xfffffff) ==
        (uint64_t{4} << 60 | uint64_t{0xffffffff} << 28 | 0xfffffff));
  CHECK(sfm::rng_stream(RngPurpose::crop, 5, 0) != sfm::rng_stream(RngPurpose::data, 5, 0));

  const auto step_error = sfm::test::error_message([] { sfm::rng_stream(RngPurpose::crop, uint64_t{1} << 32, 0); });
  REQUIRE(step_error);
  CHECK(sfm::test::contains(*step_error, "step 4294967296"));
  CHECK(sfm::test::error_message([] { sfm::rng_stream(RngPurpose::crop, 0, uint64_t{1} << 28); }));
  CHECK(sfm::test::error_message([] { sfm::rng_stream(static_cast<RngPurpose>(16), 0, 0); }));
}
