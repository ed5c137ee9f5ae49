// SequenceShard: one context-parallel rank's share of a MaskPlan, as the row counts that size
// VitMae's activation arena and the index arrays its token kernels take.
//
// Both sequences split by SequenceBlocks over the cp ranks (core/sequence_blocks.hpp), the partition
// the attention policies use: the encoder's len_keep + 1 rows (row 0 cls, row 1 + k the k-th visible
// token in shuffle order) and the decoder's N + 1 positions (position 0 cls, 1 + t token t). Each
// rank stores rows() rows per sample of each, the last padding() of them padding. Cls sits on rank 0
// in both. With cp = 1 the shard is the whole plan and every array equals the plan's own (ids_keep,
// hidden), so the single-rank model runs exactly as before context parallelism.
//
// The bridge between them (decoder_embed output → decoder input) crosses ranks: every rank
// all-gathers the embedded encoder rows into a [cp, batch, encoder rows, Dd] buffer and copies the
// rows its decoder shard needs; `bridge_gathered[j]` → `bridge_decoder[j]` lists those copies as flat
// row indices of the gathered buffer and of this rank's [batch, decoder rows] decoder input (hidden
// tokens get the mask token instead; padding rows stay zero). The backward moves gradients the other
// way along the same pairs and reduce-scatters the gathered buffer. Each encoder row feeds exactly one
// decoder row across the group, so both directions are plain copies into distinct rows.
#pragma once

#include <cstdint>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/activations.hpp"
#include "sfm/model/config.hpp"

namespace sfm {

struct SequenceShard {
  int cp = 1, rank = 0;
  int64_t batch = 0, tokens = 0;
  SequenceBlocks encoder{0, 1};  // len_keep + 1 encoder rows over cp
  SequenceBlocks decoder{0, 1};  // N + 1 decoder positions over cp

  // Encoder: local rows [visible_row, visible_row + visible) of each sample hold the visible tokens
  // visible_ids[b·visible + i] (row 0 of rank 0 holds cls).
  int64_t visible_row = 0, visible = 0;
  std::vector<int64_t> visible_ids;
  // Decoder: local rows [token_row, token_row + token_count) of each sample are tokens
  // [first_token, first_token + token_count); token_hidden[b·token_count + i] is 1 for hidden ones.
  int64_t token_row = 0, token_count = 0, first_token = 0;
  std::vector<uint8_t> token_hidden;
  // The bridge's row copies (see above).
  std::vector<int64_t> bridge_gathered, bridge_decoder;

  SequenceShard() = default;
  SequenceShard(const MaskPlan& plan, int cp, int rank)
      : cp(cp), rank(rank), batch(plan.batch), tokens(plan.tokens), encoder(plan.len_keep + 1, cp),
        decoder(plan.tokens + 1, cp) {
    SFM_CHECK(rank >= 0 && rank < cp, "SequenceShard: rank ", rank, " of cp ", cp);
    visible_row = rank == 0 ? 1 : 0;
    visible = encoder.valid(rank) - visible_row;
    const int64_t first_visible = encoder.start(rank) + visible_row - 1;  // index into ids_keep
    visible_ids.resize(size_t(batch * visible));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < visible; ++i)
        visible_ids[size_t(b * visible + i)] = plan.ids_keep[size_t(b * plan.len_keep + first_visible + i)];

    token_row = rank == 0 ? 1 : 0;
    token_count = decoder.valid(rank) - token_row;
    first_token = decoder.start(rank) + token_row - 1;
    token_hidden.resize(size_t(batch * token_count));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < token_count; ++i)
        token_hidden[size_t(b * token_count + i)] = plan.hidden[size_t(b * tokens + first_token + i)];

    const DecoderShard shard = decoder_shard(plan, cp, rank);
    const int64_t rows = shard.rows();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t e = shard.source[size_t(b * rows + i)];
        if (e < 0) continue;  // mask token or padding
        const int owner = encoder.owner(e);
        bridge_gathered.push_back((owner * batch + b) * encoder.rows() + e - encoder.start(owner));
        bridge_decoder.push_back(b * rows + i);
      }
  }

  // The loss reads this rank's target patches in place when they are contiguous in the
  // [batch, N, P] patch rows (one sample, or every token); otherwise from a compact copy.
  bool targets_in_place() const { return batch == 1 || token_count == tokens; }

  ActivationShape activation_shape(Recompute recompute = {}) const {
    return {batch, encoder.rows(), decoder.rows(), cp, targets_in_place() ? 0 : decoder.rows(), recompute};
  }

  // The activation shape of a rank without building a plan (memory estimates): every rank of a
  // group stores the same rows, so it depends only on the sizes.
  static ActivationShape activation_shape(const ModelConfig& config, int64_t batch, int64_t len_keep, int cp,
                                          Recompute recompute = {}) {
    const SequenceBlocks enc(len_keep + 1, cp), dec(config.tokens() + 1, cp);
    const bool in_place = batch == 1 || cp == 1;
    return {batch, enc.rows(), dec.rows(), cp, in_place ? 0 : dec.rows(), recompute};
  }
};

}  // namespace sfm
