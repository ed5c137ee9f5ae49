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
//   (recomputed − 1) · rows · (7·dim + 2·hidden + heads + 4) elements   (recomputed ≥ 1),
// rows = batch · that stack's rows per sample. With no block recomputed the layout is unchanged.
//
// Element types: activations and their gradients are T (the precision's compute type: fp32, or
// bf16 under Bf16Mixed); LayerNorm statistics and the attention lse are fp32 either way. fp32 arenas
// are packed (the layout they always had); bf16 ones start every array on 64 bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
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
template <class T>
struct BlockActivations {
  T *x_in, *ln1;
  float *ln1_mean, *ln1_rstd;
  T *qkv, *attn;
  float* lse;
  T *x_mid, *ln2;
  float *ln2_mean, *ln2_rstd;
  T *fc1, *gelu;
};

template <class T>
struct StackActivations {
  std::vector<BlockActivations<T>> blocks;
  T* out;  // output of the last block, before the stack's final norm
  int64_t recomputed = 0;  // blocks [0, recomputed) share block 0's internals and recompute them
};

template <template <class> class Array, class T = float>
class Activations {
 public:
  // Forward state.
  T *patches, *tokens, *enc_in, *latent;
  float *latent_mean, *latent_rstd;
  // bridge: [cp, B·encoder_rows, Dd], the decoder embedding of every cp rank's encoder rows (chunk
  // rank() is this rank's); in the backward it holds their gradients.
  T *bridge, *dec_in, *dec_normed;
  float *dec_mean, *dec_rstd;
  T *pred, *d_pred, *target;
  StackActivations<T> encoder, decoder;
  // Backward scratch: running residual gradient and per-layer temporaries (sized for either stack).
  T *d_res, *d_small, *d_qkv, *d_hidden, *d_latent, *d_tokens;

  // Sizes the arena for `shape` (no-op when unchanged); new memory starts zeroed.
  void reserve(const ModelConfig& config, const ActivationShape& shape) {
    if (shape == shape_) return;
    arena_.assign(size_t(carve(config, shape, nullptr)), 0);
    carve(config, shape, arena_.data());
    shape_ = shape;
  }

  int64_t bytes() const { return int64_t(arena_.size()); }

  // Bytes an arena of `shape` takes, without allocating it (memory estimates).
  static int64_t bytes_for(const ModelConfig& config, const ActivationShape& shape) {
    return Activations().carve(config, shape, nullptr);
  }

 private:
  // Hands out consecutive arrays of a byte buffer (or only counts them when the buffer is null).
  class Carver {
   public:
    explicit Carver(unsigned char* base) : base_(base) {}
    template <class U = T>
    U* take(int64_t n) {
      used_ = (used_ + kAlign - 1) / kAlign * kAlign;
      U* p = base_ ? reinterpret_cast<U*>(base_ + used_) : nullptr;
      used_ += n * int64_t(sizeof(U));
      return p;
    }
    float* stats(int64_t n) { return take<float>(n); }
    int64_t used() const { return used_; }

   private:
    static constexpr int64_t kAlign = std::is_same_v<T, float> ? int64_t(sizeof(float)) : 64;
    unsigned char* base_;
    int64_t used_ = 0;
  };

  // Assigns every pointer from `base` (nothing when null) and returns the number of bytes used.
  int64_t carve(const ModelConfig& c, const ActivationShape& shape, unsigned char* base) {
    Carver carver(base);
    auto take = [&](int64_t n) { return carver.take(n); };
    auto stats = [&](int64_t n) { return carver.stats(n); };
    const int64_t N = c.tokens(), P = c.patch_size(), D = c.dim, Dd = c.decoder_dim, B = shape.batch;
    const int64_t enc_rows = B * shape.encoder_rows, dec_rows = B * shape.decoder_rows;
    patches = take(B * N * P);
    tokens = take(B * N * D);
    enc_in = take(enc_rows * D);
    carve_stack(encoder, enc_in, c.depth, shape.recompute.encoder, enc_rows, D, c.heads, D * c.mlp_ratio, carver);
    latent = take(enc_rows * D);
    latent_mean = stats(enc_rows);
    latent_rstd = stats(enc_rows);
    bridge = take(shape.cp * enc_rows * Dd);
    dec_in = take(dec_rows * Dd);
    carve_stack(decoder, dec_in, c.decoder_depth, shape.recompute.decoder, dec_rows, Dd, c.decoder_heads,
                Dd * c.mlp_ratio, carver);
    dec_normed = take(dec_rows * Dd);
    dec_mean = stats(dec_rows);
    dec_rstd = stats(dec_rows);
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
    return carver.used();
  }

  static void carve_stack(StackActivations<T>& s, T* input, int64_t depth, int64_t recomputed, int64_t rows,
                          int64_t dim, int64_t heads, int64_t hidden, Carver& take) {
    s.blocks.resize(size_t(depth));
    s.recomputed = recomputed;
    for (int64_t i = 0; i < depth; ++i) {
      BlockActivations<T>& a = s.blocks[size_t(i)];
      if (i > 0 && i < recomputed)
        a = s.blocks[0];  // the recomputed blocks' shared internals
      else
        carve_internals(a, rows, dim, heads, hidden, take);
      a.x_in = i == 0 ? input : s.out;
      s.out = take.take(rows * dim);  // this block's output, the next block's input
    }
  }

  static void carve_internals(BlockActivations<T>& a, int64_t rows, int64_t dim, int64_t heads, int64_t hidden,
                              Carver& take) {
    a.ln1 = take.take(rows * dim);
    a.ln1_mean = take.stats(rows);
    a.ln1_rstd = take.stats(rows);
    a.qkv = take.take(rows * 3 * dim);
    a.attn = take.take(rows * dim);
    a.lse = take.stats(heads * rows);  // [batch, heads, rows per sample]
    a.x_mid = take.take(rows * dim);
    a.ln2 = take.take(rows * dim);
    a.ln2_mean = take.stats(rows);
    a.ln2_rstd = take.stats(rows);
    a.fc1 = take.take(rows * hidden);
    a.gelu = take.take(rows * hidden);
  }

  Array<unsigned char> arena_;
  ActivationShape shape_{-1};
};

}  // namespace sfm
