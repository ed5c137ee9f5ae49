// VitMae<Backend, Precision>: the 3D ViT masked autoencoder, forward and manual backward, written
// once against the backend contract (kernels/backend.hpp) and a precision (kernels/precision.hpp:
// Fp32, the default, or Bf16Mixed: activations, the weights' compute copy and attention in bf16,
// fp32 master weights, gradients, statistics and loss; the rounding points are the kernels'). The
// header includes no backend: a program includes the kernels of the backends it instantiates
// (kernels/cpu/kernels.hpp; kernels/cuda/kernels.cuh in a file nvcc compiles).
//
// Conventions are DESIGN.md's (pinned for PyTorch interop): Conv3d patch embedding as a linear layer
// on patch rows, fixed sin-cos positional embeddings added before masking, cls token, pre-norm
// blocks, decoder with mask tokens unshuffled to the original order, norm-pix MSE over hidden
// tokens. Like llm.c there is no autograd: forward keeps every activation the backward needs in one
// arena (layout in model/activations.hpp), and backward walks the layers in reverse.
// Parameters and gradients follow the flat layout of a ParamTable, in groups (stem, blocks, bridge,
// head); the model reaches them only through a ParamStore, group by group, so the same code runs
// with everything resident (the default) or with ZeRO-sharded parameters gathered on demand.
// Gradients accumulate, so several forward/backward calls before an optimizer step add up.
//
// Context parallelism (use_context_parallel): the ranks of a cp group run the same sample (volume
// and mask) and split its token sequences (model/sequence_shard.hpp): each rank computes only its
// encoder and decoder rows, attention exchanges K/V through the group's policy, the bridge
// all-gathers the embedded encoder rows so each rank can assemble its decoder rows, and forward()
// returns the loss summed over the group. Every rank's gradients are its share of the sample's; the
// ParamStore sums them over the group (ZeroOptimizer on a communicator spanning it: parallel/mesh.hpp).
// Padding rows (sequences that do not split evenly) start at zero and stay finite, and their loss
// gradient is zero, so they add exactly nothing to any parameter gradient. With the default
// SingleRank context the shard is the whole sequence and the computation is the single-rank one.
//
// Activation recomputation (set_recompute, Recompute in model/config.hpp): the forward of a
// recomputed block keeps only its input, the residual stream; its internals go to a scratch set the
// stack's recomputed blocks share (model/activations.hpp). Its backward first re-runs the block's
// forward from that input into the scratch — up to gelu: the block's output, the next block's
// input, is neither needed nor overwritten — then runs the usual backward, with the parameters of
// one acquisition (ZeRO-3 gathers each block once per backward either way). The re-run executes the
// same kernels on the same inputs, so loss and gradients are those without recomputation (bitwise on
// the CPU; cuBLASLt may pick other algorithms for operands at other arena alignments).
// Under cp its attention is the group's collective again, which every rank re-runs alike (all ranks
// of a group must use the same setting).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/mae/mask.hpp"
#include "sfm/model/activations.hpp"
#include "sfm/model/config.hpp"
#include "sfm/model/context_parallel.hpp"
#include "sfm/model/init.hpp"
#include "sfm/model/param_store.hpp"
#include "sfm/model/params.hpp"
#include "sfm/model/pos_embed.hpp"
#include "sfm/model/sequence_shard.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/precision.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

// Offsets of one transformer block's tensors in the flat parameter buffer.
struct BlockOffsets {
  int64_t norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

// A stack of blocks (the encoder or the decoder); block i's tensors form parameter group groups[i].
struct StackLayout {
  int64_t dim = 0, heads = 0, hidden = 0;
  std::vector<BlockOffsets> blocks;
  std::vector<int> groups;
};

template <KernelBackend Backend, Precision Prec = Fp32>
  requires ComputesIn<Backend, typename Prec::Compute>
class VitMae {
 public:
  template <class U>
  using Array = typename Backend::template Array<U>;
  using T = typename Prec::Compute;  // activations and the parameters' compute copy

  // The model with every parameter resident (the single-rank case); use_param_store() swaps in a
  // sharded store, after which the resident buffers are not allocated at all.
  explicit VitMae(ModelConfig config, bool resident = true) : config_(std::move(config)) {
    config_.validate();
    register_params();
    if (resident) {
      resident_ = std::make_unique<ResidentParams<Backend, T>>(table_);
      store_ = resident_.get();
    }
    set_pos_embeds(sincos_pos_embed_3d(config_.grid(), config_.dim),
                   sincos_pos_embed_3d(config_.grid(), config_.decoder_dim));
  }

  const ModelConfig& config() const { return config_; }
  const ParamTable& table() const { return table_; }
  // The fixed positional embeddings [N + 1, D] and [N + 1, Dd] (host copies; checkpoints hold them).
  std::span<const float> pos_embed() const { return pos_embed_; }
  std::span<const float> decoder_pos_embed() const { return decoder_pos_embed_; }
  void set_pos_embeds(std::vector<float> encoder, std::vector<float> decoder) {
    const int64_t rows = config_.tokens() + 1;
    SFM_CHECK(int64_t(encoder.size()) == rows * config_.dim && int64_t(decoder.size()) == rows * config_.decoder_dim,
              "positional embeddings of the wrong size for this model");
    pos_embed_ = std::move(encoder);
    decoder_pos_embed_ = std::move(decoder);
    pos_embed_table_ = to_compute(pos_embed_);
    decoder_pos_embed_table_ = to_compute(decoder_pos_embed_);
  }

  // Runs the model on parameters held by `store` (which outlives its use here).
  void use_param_store(ParamStore<T>& store) {
    store_ = &store;
    resident_.reset();
  }

  // Runs the model as one rank of the context-parallel group `group` (which outlives its use here).
  void use_context_parallel(ContextParallel<T>& group) { context_ = &group; }
  ContextParallel<T>& context_parallel() { return context_ ? *context_ : single_rank_; }

  // Which blocks recompute their activations in the backward (none by default), from the next
  // forward() on.
  void set_recompute(Recompute recompute) {
    recompute.validate(config_);
    recompute_ = recompute;
  }
  const Recompute& recompute() const { return recompute_; }

  // The resident parameters and gradients, in backend memory (only for a model built with
  // resident = true), and host copies of them.
  std::span<float> params() { return resident().params(); }
  std::span<float> grads() { return resident().grads(); }
  std::span<float> param(const std::string& name) { return slice(params(), name); }
  std::span<float> grad(const std::string& name) { return slice(grads(), name); }
  std::vector<float> params_to_host() { return to_host(params()); }
  std::vector<float> grads_to_host() { return to_host(grads()); }
  void params_from_host(std::span<const float> values) {
    SFM_CHECK(int64_t(values.size()) == table_.size(), "params_from_host: ", values.size(), " values for ",
              table_.size(), " parameters");
    copy_from_host(Backend{}, params().data(), values.data(), table_.size());
  }

  // DESIGN.md init (model/init.hpp) of the resident parameters.
  void init_weights(uint64_t seed) {
    std::vector<float> values(size_t(table_.size()));
    init_param_range(table_, seed, 0, table_.size(), values.data());
    params_from_host(values);
  }

  void zero_grad() { fill_zero(Backend{}, grads().data(), table_.size()); }

  // Forward over `batch` volumes [batch, Z, Y, X] (C order) with the given mask; keeps the
  // activations for backward() and returns Σ_hidden token_mse / loss_normalizer (the MAE loss when
  // the normalizer is the plan's hidden count, the default), summed over the cp group. Every rank of
  // the group passes the same volumes and mask.
  double forward(const float* volume, const MaskPlan& mask, double loss_normalizer = 0) {
    SFM_CHECK(store_ != nullptr, "VitMae::forward(): no parameter store (use_param_store() was not called)");
    SFM_CHECK(mask.tokens == config_.tokens(), "mask plan has ", mask.tokens, " tokens, model has ", config_.tokens());
    if (loss_normalizer <= 0) loss_normalizer = double(mask.hidden_count());
    ContextParallel<T>& cp = context_parallel();
    shard_ = SequenceShard(mask, cp.size(), cp.rank());
    const SequenceShard& sh = shard_;
    acts_.reserve(config_, sh.activation_shape(recompute_));
    const Backend be{};
    Activations<Array, T>& a = acts_;
    const int64_t B = mask.batch, N = config_.tokens(), P = config_.patch_size();
    const int64_t D = config_.dim, Dd = config_.decoder_dim;
    const int64_t Re = sh.encoder.rows(), Rd = sh.decoder.rows();  // rows per sample on this rank
    token_hidden_.assign(sh.token_hidden.begin(), sh.token_hidden.end());
    bridge_gathered_.assign(sh.bridge_gathered.begin(), sh.bridge_gathered.end());
    bridge_decoder_.assign(sh.bridge_decoder.begin(), sh.bridge_decoder.end());

    stem_forward(volume, sh);
    stack_forward(encoder_, a.encoder, B, sh.encoder);

    // Bridge: the encoder's final norm and the decoder embedding of this rank's rows, gathered from
    // every rank; then the decoder input: embedded cls and visible tokens at their positions (copied
    // through a compact buffer, d_small, free in the forward), mask tokens at hidden ones, positional
    // embedding of this rank's positions.
    GroupSpan<T> p = store_->acquire_params(bridge_group_);
    layernorm_forward(be, a.latent, a.latent_mean, a.latent_rstd, a.encoder.out, p.at(encoder_norm_w_),
                      p.at(encoder_norm_b_), B * Re, D, kNormEps);
    linear_forward(be, bridge_chunk(), a.latent, p.at(decoder_embed_w_), p.at(decoder_embed_b_), B * Re, D, Dd);
    cp.all_gather(std::span<T>(a.bridge, size_t(cp.size() * B * Re * Dd)));
    if (sh.decoder.padding(sh.rank) > 0) fill_zero(be, a.dec_in, B * Rd * Dd);
    const int64_t copies = int64_t(sh.bridge_decoder.size());
    gather_tokens(be, TokenRows<T>{a.d_small, copies}, TokenRows<const T>{a.bridge, 0},
                  bridge_gathered_.data(), 1, copies, Dd);
    scatter_tokens(be, TokenRows<T>{a.dec_in, 0}, TokenRows<const T>{a.d_small, copies},
                   bridge_decoder_.data(), 1, copies, Dd);
    fill_rows(be, TokenRows<T>{a.dec_in, Rd, sh.token_row}, p.at(mask_token_), token_hidden_.data(), B,
              sh.token_count, Dd);
    add_rows_broadcast(be, TokenRows<T>{a.dec_in, Rd}, decoder_pos_embed_table_.data() + sh.decoder.start(sh.rank) * Dd,
                       B, sh.decoder.valid(sh.rank), Dd);
    store_->release_params(bridge_group_);

    stack_forward(decoder_, a.decoder, B, sh.decoder);

    // Head: the decoder's final norm and the pixel prediction.
    p = store_->acquire_params(head_group_);
    layernorm_forward(be, a.dec_normed, a.dec_mean, a.dec_rstd, a.decoder.out, p.at(decoder_norm_w_),
                      p.at(decoder_norm_b_), B * Rd, Dd, kNormEps);
    linear_forward(be, a.pred, a.dec_normed, p.at(decoder_pred_w_), p.at(decoder_pred_b_), B * Rd, Dd, P);
    store_->release_params(head_group_);

    // The loss of this rank's token rows; the gradient rows of cls and padding stay zero.
    const T* target = a.patches + sh.first_token * P;
    if (!sh.targets_in_place()) {
      copy_rows(be, TokenRows<T>{a.target, sh.token_count}, TokenRows<const T>{a.patches, N, sh.first_token}, B,
                sh.token_count, P);
      target = a.target;
    }
    fill_zero(be, a.d_pred, B * Rd * P);
    const double loss = mae_loss(be, TokenRows<T>{a.d_pred, Rd, sh.token_row},
                                 TokenRows<const T>{a.pred, Rd, sh.token_row}, target, token_hidden_.data(), B,
                                 sh.token_count, P, config_.norm_pix_loss, loss_normalizer);
    return cp.sum(loss);
  }

  // The encoder's features of `batch` volumes [batch, Z, Y, X] (C order, backend memory) with every
  // token visible, in grid order: `features` [batch, N, D] on the host, fp32, the encoder's final
  // LayerNorm output without the cls row (MAE's forward_encoder at mask ratio 0, latent[:, 1:]).
  // Forward only: the decoder does not run, and nothing is kept for a backward (backward() after it
  // is refused). The arena is the training one sized for that: N + 1 encoder rows, every encoder
  // block's internals shared (as under Recompute: one block's worth), no decoder rows. One rank only.
  void encode(const float* volume, int64_t batch, std::span<float> features) {
    SFM_CHECK(store_ != nullptr, "VitMae::encode(): no parameter store (use_param_store() was not called)");
    SFM_CHECK(context_parallel().size() == 1, "VitMae::encode() runs on one rank, not under context parallelism");
    const int64_t N = config_.tokens(), D = config_.dim;
    SFM_CHECK(batch >= 1 && int64_t(features.size()) == batch * N * D, "VitMae::encode(): ", features.size(),
              " feature values for batch ", batch, " × ", N, " tokens × ", D, " channels");
    const SequenceShard sh(all_visible(batch, N), 1, 0);
    acts_.reserve(config_, ActivationShape{batch, N + 1, 0, 1, 0, Recompute{config_.depth, 0}});
    const Backend be{};
    Activations<Array, T>& a = acts_;
    shard_ = SequenceShard{};  // what a backward() would need is not kept

    stem_forward(volume, sh);
    stack_forward(encoder_, a.encoder, batch, sh.encoder);
    // The final norm of every row, then the token rows (cls dropped) compacted into a.tokens, free
    // since the stem.
    const GroupSpan<T> p = store_->acquire_params(bridge_group_);
    layernorm_forward(be, a.latent, a.latent_mean, a.latent_rstd, a.encoder.out, p.at(encoder_norm_w_),
                      p.at(encoder_norm_b_), batch * (N + 1), D, kNormEps);
    store_->release_params(bridge_group_);
    copy_rows(be, TokenRows<T>{a.tokens, N}, TokenRows<const T>{a.latent, N + 1, 1}, batch, N, D);
    if constexpr (std::is_same_v<T, float>) {
      copy_to_host(be, features.data(), a.tokens, batch * N * D);
    } else {
      std::vector<T> host(features.size());
      copy_to_host(be, host.data(), a.tokens, batch * N * D);
      for (size_t i = 0; i < host.size(); ++i) features[i] = float(host[i]);
    }
  }

  // Backward of the last forward(): adds the parameter gradients into grads().
  void backward() {
    SFM_CHECK(shard_.batch > 0, "VitMae::backward() called before forward()");
    const Backend be{};
    Activations<Array, T>& a = acts_;
    ContextParallel<T>& cp = context_parallel();
    const SequenceShard& sh = shard_;
    const int64_t B = sh.batch, N = config_.tokens(), P = config_.patch_size();
    const int64_t D = config_.dim, Dd = config_.decoder_dim;
    const int64_t Re = sh.encoder.rows(), Rd = sh.decoder.rows();

    // Head.
    GroupSpan<T> p = store_->acquire_params(head_group_);
    GroupSpan<float> g = store_->acquire_grads(head_group_);
    linear_backward(be, a.d_small, g.at(decoder_pred_w_), g.at(decoder_pred_b_), a.d_pred, a.dec_normed,
                    p.at(decoder_pred_w_), B * Rd, Dd, P);
    fill_zero(be, a.d_res, B * Rd * Dd);
    layernorm_backward(be, a.d_res, g.at(decoder_norm_w_), g.at(decoder_norm_b_), a.d_small, a.decoder.out,
                       a.dec_mean, a.dec_rstd, p.at(decoder_norm_w_), B * Rd, Dd);
    finish_group(head_group_);

    stack_backward(decoder_, a.decoder, B, sh.decoder);

    // Bridge: through the decoder input (mask token; the embedded rows' gradients copied back along
    // the forward's pairs, through d_qkv, free here, into the zeroed gathered buffer, and summed onto
    // their owners), the decoder embedding and the encoder's final norm.
    p = store_->acquire_params(bridge_group_), g = store_->acquire_grads(bridge_group_);
    sum_rows(be, g.at(mask_token_), TokenRows<const T>{a.d_res, Rd, sh.token_row}, token_hidden_.data(), B,
             sh.token_count, Dd);
    const int64_t copies = int64_t(sh.bridge_decoder.size());
    gather_tokens(be, TokenRows<T>{a.d_qkv, copies}, TokenRows<const T>{a.d_res, 0}, bridge_decoder_.data(), 1,
                  copies, Dd);
    fill_zero(be, a.bridge, cp.size() * B * Re * Dd);
    scatter_tokens(be, TokenRows<T>{a.bridge, 0}, TokenRows<const T>{a.d_qkv, copies}, bridge_gathered_.data(),
                   1, copies, Dd);
    cp.reduce_scatter(std::span<T>(a.bridge, size_t(cp.size() * B * Re * Dd)));
    linear_backward(be, a.d_latent, g.at(decoder_embed_w_), g.at(decoder_embed_b_), bridge_chunk(), a.latent,
                    p.at(decoder_embed_w_), B * Re, D, Dd);
    fill_zero(be, a.d_res, B * Re * D);
    layernorm_backward(be, a.d_res, g.at(encoder_norm_w_), g.at(encoder_norm_b_), a.d_latent, a.encoder.out,
                       a.latent_mean, a.latent_rstd, p.at(encoder_norm_w_), B * Re, D);
    finish_group(bridge_group_);

    stack_backward(encoder_, a.encoder, B, sh.encoder);

    // Stem: through this rank's encoder rows (cls token, visible rows back to the token grid) to the
    // patch embedding.
    p = store_->acquire_params(stem_group_), g = store_->acquire_grads(stem_group_);
    if (sh.visible_row > 0)
      sum_rows(be, g.at(cls_token_), TokenRows<const T>{a.d_res, Re}, nullptr, B, 1, D);
    fill_zero(be, a.d_tokens, B * N * D);
    scatter_tokens(be, TokenRows<T>{a.d_tokens, N}, TokenRows<const T>{a.d_res, Re, sh.visible_row},
                   visible_ids_.data(), B, sh.visible, D);
    linear_backward(be, static_cast<T*>(nullptr), g.at(patch_w_), g.at(patch_b_), a.d_tokens, a.patches,
                    p.at(patch_w_), B * N, P, D);
    finish_group(stem_group_);
  }

  // The prediction of the last forward() for this rank's decoder rows, [batch, rows, P]: on one rank
  // [batch, N + 1, P] with row 0 the cls row; under cp the rows of shard() (decoder positions
  // decoder.start(rank) + i). In the compute type T.
  const T* prediction() const { return acts_.pred; }
  // Sample b's prediction of the last forward() at all N + 1 decoder positions, [N + 1, P] (row 0 the
  // cls row), on the host: under cp the ranks' row blocks are all-gathered over the group, so every
  // rank of the group must call it.
  std::vector<float> gather_prediction(int64_t b) {
    const int64_t P = config_.patch_size(), chunk = shard_.decoder.rows() * P;
    SFM_CHECK(b >= 0 && b < shard_.batch, "gather_prediction: sample ", b, " of a batch of ", shard_.batch);
    ContextParallel<T>& group = context_parallel();
    std::vector<T> gathered(size_t(group.size() * chunk));
    copy_to_host(Backend{}, gathered.data() + group.rank() * chunk, acts_.pred + b * chunk, chunk);
    group.all_gather(gathered);
    std::vector<float> rows(size_t((config_.tokens() + 1) * P));
    for (int r = 0; r < group.size(); ++r)
      for (int64_t i = 0; i < shard_.decoder.valid(r) * P; ++i)
        rows[size_t(shard_.decoder.start(r) * P + i)] = float(gathered[size_t(r * chunk + i)]);
    return rows;
  }
  // How the last forward() split the sequences (the whole of them on one rank).
  const SequenceShard& shard() const { return shard_; }
  // Bytes of the activation arena (sized by the last forward()); the attention policy's workspace
  // is apart (ContextParallel::attention_workspace_bytes).
  int64_t activation_bytes() const { return acts_.bytes(); }
  // The (unnormalised) target patches of the last forward(), [batch, N, P], in T.
  const T* target_patches() const { return acts_.patches; }

 private:
  static constexpr double kNormEps = 1e-6;

  std::span<float> slice(std::span<float> buffer, const std::string& name) {
    const ParamInfo* info = table_.find(name);
    SFM_CHECK(info != nullptr, "model has no parameter '", name, "'");
    return buffer.subspan(size_t(info->offset), size_t(info->numel));
  }

  static std::vector<float> to_host(std::span<const float> values) {
    std::vector<float> host(values.size());
    copy_to_host(Backend{}, host.data(), values.data(), int64_t(values.size()));
    return host;
  }

  // Host values as the compute type, in backend memory (the fixed positional embeddings).
  static Array<T> to_compute(const std::vector<float>& host) {
    std::vector<T> values(host.size());
    for (size_t i = 0; i < host.size(); ++i) values[i] = element_from_float<T>(host[i]);
    Array<T> table(values.size());
    copy_from_host(Backend{}, table.data(), values.data(), int64_t(values.size()));
    return table;
  }

  ResidentParams<Backend, T>& resident() {
    SFM_CHECK(resident_ != nullptr, "this VitMae runs on a sharded ParamStore: it has no resident parameters");
    return *resident_;
  }

  // This rank's chunk of the bridge buffer: the decoder embedding of its encoder rows (forward), their
  // gradient (backward).
  T* bridge_chunk() {
    return acts_.bridge + int64_t(shard_.rank) * shard_.batch * shard_.encoder.rows() * config_.decoder_dim;
  }

  // Stem: patch embedding (Conv3d ≡ patchify + linear) and positional embedding of every token of
  // `volume`, then this rank's encoder rows a.enc_in: cls (rank 0) and its visible tokens of `sh`.
  void stem_forward(const float* volume, const SequenceShard& sh) {
    const Backend be{};
    Activations<Array, T>& a = acts_;
    const int64_t B = sh.batch, N = config_.tokens(), P = config_.patch_size(), D = config_.dim;
    const int64_t Re = sh.encoder.rows();
    visible_ids_.assign(sh.visible_ids.begin(), sh.visible_ids.end());
    const GroupSpan<T> p = store_->acquire_params(stem_group_);
    patchify(be, a.patches, volume, B, config_.grid());
    linear_forward(be, a.tokens, a.patches, p.at(patch_w_), p.at(patch_b_), B * N, P, D);
    add_rows_broadcast(be, TokenRows<T>{a.tokens, N}, pos_embed_table_.data() + D, B, N, D);
    if (sh.encoder.padding(sh.rank) > 0) fill_zero(be, a.enc_in, B * Re * D);
    if (sh.visible_row > 0) {
      fill_rows(be, TokenRows<T>{a.enc_in, Re}, p.at(cls_token_), nullptr, B, 1, D);
      add_rows_broadcast(be, TokenRows<T>{a.enc_in, Re}, pos_embed_table_.data(), B, 1, D);
    }
    gather_tokens(be, TokenRows<T>{a.enc_in, Re, sh.visible_row}, TokenRows<const T>{a.tokens, N},
                  visible_ids_.data(), B, sh.visible, D);
    store_->release_params(stem_group_);
  }

  // A group's backward is complete: its gradients can be reduced, its parameters dropped.
  void finish_group(int group) {
    store_->grads_ready(group);
    store_->release_params(group);
  }

  // Registration in the public MAE state_dict order (positional embeddings are fixed, not here).
  void register_params() {
    const int64_t D = config_.dim, Dd = config_.decoder_dim, P = config_.patch_size();
    const auto [pz, py, px] = config_.patch;
    stem_group_ = table_.begin_group("stem");
    cls_token_ = table_.add("cls_token", {1, 1, D});
    patch_w_ = table_.add("patch_embed.proj.weight", {D, 1, pz, py, px});
    patch_b_ = table_.add("patch_embed.proj.bias", {D});
    encoder_ = register_stack("blocks", D, config_.depth, config_.heads);
    bridge_group_ = table_.begin_group("bridge");
    encoder_norm_w_ = table_.add("norm.weight", {D});
    encoder_norm_b_ = table_.add("norm.bias", {D});
    mask_token_ = table_.add("mask_token", {1, 1, Dd});
    decoder_embed_w_ = table_.add("decoder_embed.weight", {Dd, D});
    decoder_embed_b_ = table_.add("decoder_embed.bias", {Dd});
    decoder_ = register_stack("decoder_blocks", Dd, config_.decoder_depth, config_.decoder_heads);
    head_group_ = table_.begin_group("head");
    decoder_norm_w_ = table_.add("decoder_norm.weight", {Dd});
    decoder_norm_b_ = table_.add("decoder_norm.bias", {Dd});
    decoder_pred_w_ = table_.add("decoder_pred.weight", {P, Dd});
    decoder_pred_b_ = table_.add("decoder_pred.bias", {P});
  }

  StackLayout register_stack(const std::string& prefix, int64_t dim, int64_t depth, int64_t heads) {
    StackLayout s;
    s.dim = dim, s.heads = heads, s.hidden = dim * config_.mlp_ratio;
    for (int64_t i = 0; i < depth; ++i) {
      const std::string b = prefix + "." + std::to_string(i) + ".";
      s.groups.push_back(table_.begin_group(b.substr(0, b.size() - 1)));
      BlockOffsets o{};
      o.norm1_w = table_.add(b + "norm1.weight", {dim});
      o.norm1_b = table_.add(b + "norm1.bias", {dim});
      o.qkv_w = table_.add(b + "attn.qkv.weight", {3 * dim, dim});
      o.qkv_b = table_.add(b + "attn.qkv.bias", {3 * dim});
      o.proj_w = table_.add(b + "attn.proj.weight", {dim, dim});
      o.proj_b = table_.add(b + "attn.proj.bias", {dim});
      o.norm2_w = table_.add(b + "norm2.weight", {dim});
      o.norm2_b = table_.add(b + "norm2.bias", {dim});
      o.fc1_w = table_.add(b + "mlp.fc1.weight", {s.hidden, dim});
      o.fc1_b = table_.add(b + "mlp.fc1.bias", {s.hidden});
      o.fc2_w = table_.add(b + "mlp.fc2.weight", {dim, s.hidden});
      o.fc2_b = table_.add(b + "mlp.fc2.bias", {dim});
      s.blocks.push_back(o);
    }
    return s;
  }

  // Views of the packed qkv [B, rows, 3, H, d] as Q, K, V and of the attention output [B, rows, H, d]
  // for this rank's rows of a sequence, with the global shape (sequence length seq.length).
  struct AttentionViews {
    HeadsView<T> q, k, v, out;
    AttentionShape shape;
  };
  static AttentionViews attention_views(T* qkv, T* out, int64_t B, const SequenceBlocks& seq, int64_t dim,
                                        int64_t heads) {
    const int64_t d = dim / heads, R = seq.rows(), L = seq.length;
    auto part = [&](int64_t which) { return HeadsView<T>{qkv + which * dim, R * 3 * dim, d, 3 * dim}; };
    return {part(0), part(1), part(2), HeadsView<T>{out, R * dim, d, dim}, AttentionShape{B, heads, L, L, d}};
  }
  // The attention call of a stack's block on those views.
  static AttentionInputs<T> attention_inputs(const AttentionViews& v, const StackLayout& s) {
    return {v.q, v.k, v.v, v.shape, float(std::pow(double(s.dim / s.heads), -0.5))};
  }

  // A block's internals from its input a.x_in, everything its backward reads: ln1, qkv, attention
  // output and lse, x_mid = x_in + proj(attention), ln2, fc1, gelu. The block's output,
  // x_mid + fc2(gelu), is the forward's to write (a recomputation does not need it).
  void block_internals(const StackLayout& s, const BlockOffsets& w, const BlockActivations<T>& a,
                       const GroupSpan<T>& p, int64_t B, const SequenceBlocks& seq) {
    const Backend be{};
    const int64_t rows = B * seq.rows(), D = s.dim;
    layernorm_forward(be, a.ln1, a.ln1_mean, a.ln1_rstd, a.x_in, p.at(w.norm1_w), p.at(w.norm1_b), rows, D, kNormEps);
    linear_forward(be, a.qkv, a.ln1, p.at(w.qkv_w), p.at(w.qkv_b), rows, D, 3 * D);
    const AttentionViews v = attention_views(a.qkv, a.attn, B, seq, D, s.heads);
    context_parallel().forward(AttentionOutputs<T>{v.out, a.lse}, attention_inputs(v, s));
    linear_forward(be, a.x_mid, a.attn, p.at(w.proj_w), p.at(w.proj_b), rows, D, D);
    add_inplace(be, a.x_mid, a.x_in, rows * D);
    layernorm_forward(be, a.ln2, a.ln2_mean, a.ln2_rstd, a.x_mid, p.at(w.norm2_w), p.at(w.norm2_b), rows, D, kNormEps);
    linear_forward(be, a.fc1, a.ln2, p.at(w.fc1_w), p.at(w.fc1_b), rows, D, s.hidden);
    gelu_forward(be, a.gelu, a.fc1, rows * s.hidden);
  }

  // x_out = block(x_in) for every block; the output of block i is the input of block i + 1.
  void stack_forward(const StackLayout& s, StackActivations<T>& acts, int64_t B, const SequenceBlocks& seq) {
    const Backend be{};
    const int64_t rows = B * seq.rows(), D = s.dim;
    for (size_t i = 0; i < s.blocks.size(); ++i) {
      const BlockOffsets& w = s.blocks[i];
      const BlockActivations<T>& a = acts.blocks[i];
      const GroupSpan<T> p = store_->acquire_params(s.groups[i]);
      block_internals(s, w, a, p, B, seq);
      T* x_out = i + 1 < s.blocks.size() ? acts.blocks[i + 1].x_in : acts.out;
      linear_forward(be, x_out, a.gelu, p.at(w.fc2_w), p.at(w.fc2_b), rows, s.hidden, D);
      add_inplace(be, x_out, a.x_mid, rows * D);
      store_->release_params(s.groups[i]);
    }
  }

  // On entry d_res holds ∂loss/∂(stack output); on exit ∂loss/∂(stack input).
  void stack_backward(const StackLayout& s, StackActivations<T>& acts, int64_t B, const SequenceBlocks& seq) {
    const Backend be{};
    ContextParallel<T>& cp = context_parallel();
    Activations<Array, T>& ar = acts_;
    const int64_t rows = B * seq.rows(), D = s.dim;
    for (size_t i = s.blocks.size(); i-- > 0;) {
      const BlockOffsets& w = s.blocks[i];
      const BlockActivations<T>& a = acts.blocks[i];
      const GroupSpan<T> p = store_->acquire_params(s.groups[i]);
      const GroupSpan<float> g = store_->acquire_grads(s.groups[i]);
      // The recomputed blocks' shared internals hold the last of them to run forward, the first to
      // run backward; every earlier one recomputes its own.
      if (int64_t(i) + 1 < acts.recomputed) block_internals(s, w, a, p, B, seq);
      linear_backward(be, ar.d_hidden, g.at(w.fc2_w), g.at(w.fc2_b), ar.d_res, a.gelu, p.at(w.fc2_w), rows, s.hidden, D);
      gelu_backward(be, ar.d_hidden, ar.d_hidden, a.fc1, rows * s.hidden);
      linear_backward(be, ar.d_small, g.at(w.fc1_w), g.at(w.fc1_b), ar.d_hidden, a.ln2, p.at(w.fc1_w), rows, D, s.hidden);
      layernorm_backward(be, ar.d_res, g.at(w.norm2_w), g.at(w.norm2_b), ar.d_small, a.x_mid, a.ln2_mean, a.ln2_rstd,
                         p.at(w.norm2_w), rows, D);
      linear_backward(be, ar.d_small, g.at(w.proj_w), g.at(w.proj_b), ar.d_res, a.attn, p.at(w.proj_w), rows, D, D);
      const AttentionViews v = attention_views(a.qkv, a.attn, B, seq, D, s.heads);
      const AttentionViews dv = attention_views(ar.d_qkv, ar.d_small, B, seq, D, s.heads);
      cp.backward(AttentionGrads<T>{dv.q, dv.k, dv.v}, dv.out, SavedAttention<T>{v.out, a.lse}, attention_inputs(v, s));
      linear_backward(be, ar.d_small, g.at(w.qkv_w), g.at(w.qkv_b), ar.d_qkv, a.ln1, p.at(w.qkv_w), rows, D, 3 * D);
      layernorm_backward(be, ar.d_res, g.at(w.norm1_w), g.at(w.norm1_b), ar.d_small, a.x_in, a.ln1_mean, a.ln1_rstd,
                         p.at(w.norm1_w), rows, D);
      finish_group(s.groups[i]);
    }
  }

  ModelConfig config_;
  ParamTable table_;
  std::unique_ptr<ResidentParams<Backend, T>> resident_;
  ParamStore<T>* store_ = nullptr;
  std::vector<float> pos_embed_, decoder_pos_embed_;              // host copies
  Array<T> pos_embed_table_, decoder_pos_embed_table_;             // what the kernels read
  Activations<Array, T> acts_;
  SingleRank<Backend, T> single_rank_;
  ContextParallel<T>* context_ = nullptr;  // null: single_rank_
  SequenceShard shard_;                 // of the last forward()
  Recompute recompute_;
  // shard_'s index arrays in backend memory.
  Array<int64_t> visible_ids_, bridge_gathered_, bridge_decoder_;
  Array<uint8_t> token_hidden_;

  StackLayout encoder_, decoder_;
  int stem_group_ = 0, bridge_group_ = 0, head_group_ = 0;
  int64_t cls_token_ = 0, patch_w_ = 0, patch_b_ = 0;
  int64_t encoder_norm_w_ = 0, encoder_norm_b_ = 0, mask_token_ = 0, decoder_embed_w_ = 0, decoder_embed_b_ = 0;
  int64_t decoder_norm_w_ = 0, decoder_norm_b_ = 0, decoder_pred_w_ = 0, decoder_pred_b_ = 0;
};

}  // namespace sfm
