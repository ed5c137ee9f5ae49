// Counter-based random numbers: Philox4x32-10 and a keyed generator built on it.
//
// Every random number in sfm (init, masks, crops, synthetic data, dropout) is a pure function of
// (seed, stream, index), so results do not depend on world size, thread count, call order or
// backend. Philox4x32-10 is the generator of Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3" (SC 2011), with the constants of Random123, cuRAND and JAX; it runs on host and device.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "sfm/core/error.hpp"
#include "sfm/core/platform.hpp"

namespace sfm {

// Four 32-bit words: a Philox counter or output block.
struct PhiloxBlock {
  uint32_t words[4];
  friend constexpr bool operator==(const PhiloxBlock&, const PhiloxBlock&) = default;
};

struct PhiloxKey {
  uint32_t words[2];
};

// Philox4x32 with 10 rounds: a bijection of the 128-bit counter, chosen by the 64-bit key.
SFM_HOST_DEVICE constexpr PhiloxBlock philox4x32(PhiloxBlock counter, PhiloxKey key) {
  constexpr uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
  uint32_t* c = counter.words;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule: a Weyl sequence, bumped before every round but the first
      key.words[0] += weyl0;
      key.words[1] += weyl1;
    }
    const uint64_t product0 = uint64_t{multiplier0} * c[0];
    const uint64_t product1 = uint64_t{multiplier1} * c[2];
    const uint32_t next[4] = {
        static_cast<uint32_t>(product1 >> 32) ^ c[1] ^ key.words[0], static_cast<uint32_t>(product1),
        static_cast<uint32_t>(product0 >> 32) ^ c[3] ^ key.words[1], static_cast<uint32_t>(product0)};
    for (int i = 0; i < 4; ++i) c[i] = next[i];
  }
  return counter;
}

// What a stream of random numbers is for; one field of the stream id (rng_stream).
enum class RngPurpose : uint32_t { init, mask, crop, data, dropout };

// Stream id layout, most significant bit first:
//   bits 63..60  purpose (4 bits)
//   bits 59..28  step    (32 bits: training step, or another outer counter)
//   bits 27..0   sample  (28 bits: sample within the step, parameter tensor index, ...)
// Values that do not fit their field raise Error instead of aliasing another stream.
inline constexpr int rng_purpose_bits = 4, rng_step_bits = 32, rng_sample_bits = 28;

inline uint64_t rng_stream(RngPurpose purpose, uint64_t step, uint64_t sample) {
  const auto purpose_value = static_cast<uint64_t>(purpose);
  SFM_CHECK(purpose_value >> rng_purpose_bits == 0, "rng_stream: purpose ", purpose_value, " does not fit in ",
            rng_purpose_bits, " bits");
  SFM_CHECK(step >> rng_step_bits == 0, "rng_stream: step ", step, " does not fit in ", rng_step_bits, " bits");
  SFM_CHECK(sample >> rng_sample_bits == 0, "rng_stream: sample ", sample, " does not fit in ", rng_sample_bits,
            " bits");
  return purpose_value << (rng_step_bits + rng_sample_bits) | step << rng_sample_bits | sample;
}

// A keyed generator: value `index` of stream `stream` under `seed`. Philox is applied with
// key = (seed lo, seed hi) and counter = (stream lo, stream hi, block lo, block hi); block b yields
// the 32-bit words of indices 4b .. 4b+3. An index is meant for one use: uniform(i) and normal(i)
// draw on the same bits.
class Rng {
 public:
  SFM_HOST_DEVICE constexpr Rng(uint64_t seed, uint64_t stream)
      : key_{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}},
        stream_lo_(static_cast<uint32_t>(stream)),
        stream_hi_(static_cast<uint32_t>(stream >> 32)) {}

  // The 4 words of block `block` (indices 4*block .. 4*block+3).
  SFM_HOST_DEVICE constexpr PhiloxBlock block(uint64_t block) const {
    return philox4x32(
        PhiloxBlock{{stream_lo_, stream_hi_, static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32)}},
        key_);
  }

  SFM_HOST_DEVICE constexpr uint32_t bits(uint64_t index) const { return block(index / 4).words[index % 4]; }

  // Uniform in [0, 1): the top 24 bits of word `index`, so every value is exact in float.
  SFM_HOST_DEVICE constexpr float uniform(uint64_t index) const { return unit_float(bits(index)); }

  // Standard normal by Box–Muller. Indices 2k and 2k+1 share the words 2k, 2k+1 (the same block):
  // r = sqrt(-2 ln u1), u1 in (0, 1]; normal(2k) = r cos(2 pi u2), normal(2k+1) = r sin(2 pi u2).
  // Computed in double and rounded once, so host and device agree.
  SFM_HOST_DEVICE float normal(uint64_t index) const {
    const PhiloxBlock words = block(index / 4);
    const uint32_t pair = static_cast<uint32_t>(index % 4) & ~1u;
    return box_muller(words.words[pair], words.words[pair + 1], index % 2 != 0);
  }

  // out[i] = uniform(first_index + i).
  void fill_uniform(std::span<float> out, uint64_t first_index = 0) const {
    for_each_word(out.size(), first_index, [&](size_t i, const PhiloxBlock& words, uint32_t word) {
      out[i] = unit_float(words.words[word]);
    });
  }

  // out[i] = mean + std * normal(first_index + i), computed in float from the float normal.
  void fill_normal(std::span<float> out, float mean, float std, uint64_t first_index = 0) const {
    for_each_word(out.size(), first_index, [&](size_t i, const PhiloxBlock& words, uint32_t word) {
      const uint32_t pair = word & ~1u;
      out[i] = mean + std * box_muller(words.words[pair], words.words[pair + 1], word % 2 != 0);
    });
  }

 private:
  SFM_HOST_DEVICE static constexpr float unit_float(uint32_t word) {
    return static_cast<float>(word >> 8) * 5.9604644775390625e-08f;  // 2^-24
  }

  SFM_HOST_DEVICE static float box_muller(uint32_t word1, uint32_t word2, bool sine) {
    const double u1 = (static_cast<double>(word1 >> 8) + 1.0) * 5.9604644775390625e-08;  // (0, 1]
    const double u2 = static_cast<double>(word2 >> 8) * 5.9604644775390625e-08;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586476925286766559 * u2;
    return static_cast<float>(sine ? radius * std::sin(angle) : radius * std::cos(angle));
  }

  // Calls f(i, block words, word within block) for indices first_index + i, one Philox per block.
  template <class F>
  void for_each_word(size_t count, uint64_t first_index, F&& f) const {
    size_t i = 0;
    while (i < count) {
      const uint64_t index = first_index + i;
      const PhiloxBlock words = block(index / 4);
      for (uint32_t word = static_cast<uint32_t>(index % 4); word < 4 && i < count; ++word, ++i) f(i, words, word);
    }
  }

  PhiloxKey key_;
  uint32_t stream_lo_, stream_hi_;
};

}  // namespace sfm
