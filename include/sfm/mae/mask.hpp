// MAE random masking: from per-sample noise to the visible token ids and the hidden-token mask,
// the mask policies that choose how many tokens stay visible, and the all-visible plan of inference.
//
// Exactly MAE's random_masking: ids_shuffle = stable ascending argsort of the noise, the first
// len_keep are visible, mask = 1 for hidden tokens. A mask policy decides len_keep: RandomMask uses
// MAE's int(N·(1 − r)); AdaptiveMask picks the nearest len_keep that lets the encoder sequence
// (len_keep visible tokens + cls) split evenly over a context-parallel group, and decoder_shard says
// which decoder rows each rank of that group holds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/model/config.hpp"

namespace sfm {

struct MaskPlan {
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t len_keep = 0;
  std::vector<int64_t> ids_keep;  // [batch, len_keep], visible token ids in shuffle order
  std::vector<uint8_t> hidden;    // [batch, tokens], 1 for masked tokens

  int64_t hidden_count() const { return batch * (tokens - len_keep); }
  double ratio() const { return double(tokens - len_keep) / double(tokens); }
};

inline MaskPlan mask_from_noise(std::span<const float> noise, int64_t batch, int64_t tokens, int64_t len_keep) {
  SFM_CHECK(int64_t(noise.size()) == batch * tokens, "mask noise has ", noise.size(), " values, expected batch ",
            batch, " × tokens ", tokens);
  SFM_CHECK(len_keep >= 1 && len_keep <= tokens, "len_keep ", len_keep, " outside [1, ", tokens, "]");
  MaskPlan plan{batch, tokens, len_keep, std::vector<int64_t>(size_t(batch * len_keep)),
                std::vector<uint8_t>(size_t(batch * tokens), 1)};
  std::vector<int64_t> order(static_cast<size_t>(tokens));
  for (int64_t b = 0; b < batch; ++b) {
    const float* sample = noise.data() + b * tokens;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sample[i] < sample[j]; });
    for (int64_t k = 0; k < len_keep; ++k) {
      plan.ids_keep[size_t(b * len_keep + k)] = order[size_t(k)];
      plan.hidden[size_t(b * tokens + order[size_t(k)])] = 0;
    }
  }
  return plan;
}

// Every token visible, in grid order (len_keep = N, nothing hidden): the plan of an encoder that
// embeds whole volumes (VitMae::encode), MAE's forward_encoder at mask ratio 0.
inline MaskPlan all_visible(int64_t batch, int64_t tokens) {
  SFM_CHECK(batch >= 1 && tokens >= 1, "all_visible: batch ", batch, ", tokens ", tokens);
  MaskPlan plan{batch, tokens, tokens, std::vector<int64_t>(size_t(batch * tokens)),
                std::vector<uint8_t>(size_t(batch * tokens), 0)};
  for (int64_t b = 0; b < batch; ++b)
    std::iota(plan.ids_keep.begin() + b * tokens, plan.ids_keep.begin() + (b + 1) * tokens, int64_t(0));
  return plan;
}

// Noise for `batch` samples starting at global sample index `first_sample` of training step `step`:
// a pure function of (seed, step, sample), so it does not depend on how samples are spread over ranks.
inline std::vector<float> mask_noise(uint64_t seed, uint64_t step, uint64_t first_sample, int64_t batch,
                                     int64_t tokens) {
  std::vector<float> noise(size_t(batch * tokens));
  for (int64_t b = 0; b < batch; ++b)
    Rng(seed, rng_stream(RngPurpose::mask, step, first_sample + uint64_t(b)))
        .fill_uniform(std::span<float>(noise).subspan(size_t(b * tokens), size_t(tokens)));
  return noise;
}

// MAE's policy: len_keep = int(N · (1 − mask_ratio)).
struct RandomMask {
  static int64_t len_keep(const ModelConfig& config) { return config.default_len_keep(); }
};

// The len_keep in [1, tokens] nearest to tokens·(1 − mask_ratio) such that len_keep + 1 (the
// visible tokens and cls, the encoder sequence) is a multiple of cp, so the encoder splits into cp
// equal blocks without padding. Ties (the target exactly halfway between two candidates) go to the
// smaller len_keep: the direction of MAE's int() truncation, and the cheaper step. With cp = 1 this
// is the integer nearest the target, which can be one above MAE's int() (N = 11, r = 0.75: 3, not
// 2); use RandomMask where MAE's own count matters.
inline int64_t cp_len_keep(int64_t tokens, double mask_ratio, int cp) {
  SFM_CHECK(cp >= 1, "cp_len_keep: cp ", cp, " must be at least 1");
  const int64_t m_min = cp == 1 ? 2 : 1, m_max = (tokens + 1) / cp;  // candidates len_keep = m·cp − 1
  SFM_CHECK(m_min <= m_max, "cp_len_keep: no len_keep in [1, ", tokens, "] has len_keep + 1 divisible by cp ", cp);
  const double target = double(tokens) * (1.0 - mask_ratio);
  const int64_t below = std::clamp(int64_t(std::floor((target + 1) / cp)), m_min, m_max) * cp - 1;
  const int64_t above = std::min(below + cp, m_max * cp - 1);
  return std::abs(double(above) - target) < std::abs(double(below) - target) ? above : below;
}

// The context-parallel mask policy: len_keep from cp_len_keep, so each of the cp ranks holds
// (len_keep + 1) / cp encoder rows. The effective mask ratio (N − len_keep) / N is what the metrics
// report (MaskPlan::ratio() of the plan it makes).
struct AdaptiveMask {
  int cp = 1;

  int64_t len_keep(const ModelConfig& config) const { return cp_len_keep(config.tokens(), config.mask_ratio, cp); }
  double ratio(const ModelConfig& config) const {
    return double(config.tokens() - len_keep(config)) / double(config.tokens());
  }
};

// The mask policy a config names (parallel.mask), parsed once where the config enters.
enum class MaskKind { adaptive, random };

inline std::string_view mask_kind_name(MaskKind kind) { return kind == MaskKind::adaptive ? "adaptive" : "random"; }

// `what` names the setting in the error ("config: parallel.mask").
inline MaskKind parse_mask_kind(std::string_view name, std::string_view what) {
  for (MaskKind kind : {MaskKind::adaptive, MaskKind::random})
    if (name == mask_kind_name(kind)) return kind;
  fail(what, ": '", name, "' (known: adaptive, random)");
}

// len_keep of the policy `kind` for a cp group of `cp` ranks.
inline int64_t mask_len_keep(MaskKind kind, const ModelConfig& config, int cp) {
  return kind == MaskKind::adaptive ? AdaptiveMask{cp}.len_keep(config) : RandomMask::len_keep(config);
}

// One rank's share of the decoder sequence under context parallelism.
//
// The decoder runs on N + 1 positions (position 0 the cls token, position 1 + t token t in grid
// order), split by SequenceBlocks(N + 1, cp): every rank holds rows() rows, the last padding() of
// them padding, which the attention policies mask as keys (and whose outputs are 0). Padding, not
// dropping cls: N + 1 is rarely a multiple of cp (N is often a power of two, so N + 1 is odd), the
// padding costs under cp rows per sample, and keeping cls keeps the decoder exactly MAE's, so a cp
// run equals a single-rank run and loads the same PyTorch checkpoints.
//
// source[b·rows + i] says where row i of sample b comes from: an encoder row e ≥ 0 (the encoder
// sequence is cls, then the visible tokens in shuffle order, len_keep + 1 rows split by
// SequenceBlocks(len_keep + 1, cp)), or kMaskTokenSource (a hidden token: the mask token), or
// kPaddingSource. Row i's decoder position (its decoder_pos_embed row) is first() + i.
struct DecoderShard {
  static constexpr int64_t kMaskTokenSource = -1;
  static constexpr int64_t kPaddingSource = -2;

  SequenceBlocks blocks;        // the N + 1 decoder positions over cp ranks
  int rank = 0;
  std::vector<int64_t> source;  // [batch, rows()]

  int64_t first() const { return blocks.start(rank); }
  int64_t valid() const { return blocks.valid(rank); }
  int64_t rows() const { return blocks.rows(); }
  int64_t padding() const { return blocks.padding(rank); }
};

inline DecoderShard decoder_shard(const MaskPlan& plan, int cp, int rank) {
  SFM_CHECK(rank >= 0 && rank < cp, "decoder_shard: rank ", rank, " of cp ", cp);
  DecoderShard shard{SequenceBlocks(plan.tokens + 1, cp), rank, {}};
  const int64_t rows = shard.rows();
  shard.source.assign(size_t(plan.batch * rows), DecoderShard::kPaddingSource);
  std::vector<int64_t> encoder_row(size_t(plan.tokens));  // token → its encoder row (hidden: mask token)
  for (int64_t b = 0; b < plan.batch; ++b) {
    std::fill(encoder_row.begin(), encoder_row.end(), DecoderShard::kMaskTokenSource);
    for (int64_t k = 0; k < plan.len_keep; ++k) encoder_row[size_t(plan.ids_keep[size_t(b * plan.len_keep + k)])] = 1 + k;
    for (int64_t i = 0; i < shard.valid(); ++i) {
      const int64_t position = shard.first() + i;
      shard.source[size_t(b * rows + i)] = position == 0 ? 0 : encoder_row[size_t(position - 1)];
    }
  }
  return shard;
}

}  // namespace sfm
