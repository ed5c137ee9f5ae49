// The activation arena of VitMae: every tensor the forward keeps for the backward, and the
// backward's scratch, carved out of one buffer (llm.c style) and re-carved only when its shape
// (ActivationShape) changes.
//
// Rows are tokens: the encoder runs on B·encoder_rows rows of width D, the decoder on B·decoder_rows
// rows of width Dd; on one rank these are len_keep + 1 and N + 1, under context parallelism this
// rank's share of them (model/sequence_shard.hpp), so everything but the stem shrinks as 1/cp. The
// stem (patch rows, embedded tokens and their gradient) spans the whole token grid on every rank,
// like the input volume each rank of a cp group holds. Block i's input is block i−1's output;
// block 0's input is the stack input.
//
// Activation recomputation (Recompute, model/config.hpp): a block keeps its input x_in, which is
// the residual stream the next block needs anyway, and its internals (layernorm outputs and
// statistics, qkv, attention output and lse, x_mid, fc1, gelu). The first `recomputed` blocks of a
// stack share one set of internals, block 0's, which serves as scratch: per stack the arena shrinks by
//   (recomputed − 1) · rows · (7·dim + 2·hidden + heads + 4) floats   (recomputed ≥ 1),
// rows = batch · that stack's rows per sample. With no block recomputed the layout is unchanged.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sfm/model/config.hpp"

namespace sfm {

// What one rank's arena holds, per sample: encoder and decoder rows; the bridge gathers the encoder
// rows of all cp ranks; target_rows of loss targets are copied out of the patch rows (0: read in place);
// the blocks that recompute share their internals.
struct ActivationShape {
  int64_t batch = 0, encoder_rows = 0, decoder_rows = 0;
  int cp = 1;
  int64_t target_rows = 0;
  Recompute recompute{};

  bool operator==(const ActivationShape&) const = default;
};

// x_in is the block's input; the rest are its internals, the recomputed blocks' shared with block 0.
struct BlockActivations {
  float *x_in, *ln1, *ln1_mean, *ln1_rstd, *qkv, *attn, *lse, *x_mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
};

struct StackActivations {
  std::vector<BlockActivations> blocks;
  float* out;  // output of the last block, before the stack's final norm
  int64_t recomputed = 0;  // blocks [0, recomputed) share block 0's internals and recompute them
};

template <template <class> class Array>
class Activations {
 public:
  // Forward state.
  float *patches, *tokens, *enc_in, *latent, *latent_mean, *latent_rstd;
  // bridge: [cp, B·encoder_rows, Dd], the decoder embedding of every cp rank's encoder rows (chunk
  // rank() is this rank's); in the backward it holds their gradients.
  float *bridge, *dec_in, *dec_normed, *dec_mean, *dec_rstd, *pred, *d_pred, *target;
  StackActivations encoder, decoder;
  // Backward scratch: running residual gradient and per-layer temporaries (sized for either stack).
  float *d_res, *d_small, *d_qkv, *d_hidden, *d_latent, *d_tokens;

  // Sizes the arena for `shape` (no-op when unchanged); new memory starts zeroed.
  void reserve(const ModelConfig& config, const ActivationShape& shape) {
    if (shape == shape_) return;
    arena_.assign(size_t(carve(config, shape, nullptr)), 0.0f);
    carve(config, shape, arena_.data());
    shape_ = shape;
  }

  int64_t bytes() const { return int64_t(arena_.size() * sizeof(float)); }

  // Floats an arena of `shape` takes, without allocating it (memory estimates).
  static int64_t floats(const ModelConfig& config, const ActivationShape& shape) {
    return Activations().carve(config, shape, nullptr);
  }

 private:
  // Assigns every pointer from `base` (nothing when null) and returns the number of floats used.
  int64_t carve(const ModelConfig& c, const ActivationShape& shape, float* base) {
    int64_t used = 0;
    auto take = [&](int64_t n) {
      float* p = base ? base + used : nullptr;
      used += n;
      return p;
    };
    const int64_t N = c.tokens(), P = c.patch_size(), D = c.dim, Dd = c.decoder_dim, B = shape.batch;
    const int64_t enc_rows = B * shape.encoder_rows, dec_rows = B * shape.decoder_rows;
    patches = take(B * N * P);
    tokens = take(B * N * D);
    enc_in = take(enc_rows * D);
    carve_stack(encoder, enc_in, c.depth, shape.recompute.encoder, enc_rows, D, c.heads, D * c.mlp_ratio, take);
    latent = take(enc_rows * D);
    latent_mean = take(enc_rows);
    latent_rstd = take(enc_rows);
    bridge = take(shape.cp * enc_rows * Dd);
    dec_in = take(dec_rows * Dd);
    carve_stack(decoder, dec_in, c.decoder_depth, shape.recompute.decoder, dec_rows, Dd, c.decoder_heads,
                Dd * c.mlp_ratio, take);
    dec_normed = take(dec_rows * Dd);
    dec_mean = take(dec_rows);
    dec_rstd = take(dec_rows);
    pred = take(dec_rows * P);
    d_pred = take(dec_rows * P);

    auto larger = [&](int64_t enc_width, int64_t dec_width) { return std::max(enc_rows * enc_width, dec_rows * dec_width); };
    d_res = take(larger(D, Dd));
    d_small = take(larger(D, Dd));
    d_qkv = take(larger(3 * D, 3 * Dd));
    d_hidden = take(larger(D * c.mlp_ratio, Dd * c.mlp_ratio));
    d_latent = take(enc_rows * D);
    d_tokens = take(B * N * D);
    target = take(B * shape.target_rows * P);
    return used;
  }

  template <class Take>
  static void carve_stack(StackActivations& s, float* input, int64_t depth, int64_t recomputed, int64_t rows,
                          int64_t dim, int64_t heads, int64_t hidden, Take& take) {
    s.blocks.resize(size_t(depth));
    s.recomputed = recomputed;
    for (int64_t i = 0; i < depth; ++i) {
      BlockActivations& a = s.blocks[size_t(i)];
      if (i > 0 && i < recomputed)
        a = s.blocks[0];  // the recomputed blocks' shared internals
      else
        carve_internals(a, rows, dim, heads, hidden, take);
      a.x_in = i == 0 ? input : s.out;
      s.out = take(rows * dim);  // this block's output, the next block's input
    }
  }

  template <class Take>
  static void carve_internals(BlockActivations& a, int64_t rows, int64_t dim, int64_t heads, int64_t hidden, Take& take) {
    a.ln1 = take(rows * dim);
    a.ln1_mean = take(rows);
    a.ln1_rstd = take(rows);
    a.qkv = take(rows * 3 * dim);
    a.attn = take(rows * dim);
    a.lse = take(heads * rows);  // [batch, heads, rows per sample]
    a.x_mid = take(rows * dim);
    a.ln2 = take(rows * dim);
    a.ln2_mean = take(rows);
    a.ln2_rstd = take(rows);
    a.fc1 = take(rows * hidden);
    a.gelu = take(rows * hidden);
  }

  Array<float> arena_;
  ActivationShape shape_{-1};
};

}  // namespace sfm
