// bf16 storage on the CPU backend: the GEMM-based kernels (linear, attention) for bf16 activations
// and weights, with fp32 arithmetic, so that everything written against the backend contract runs
// in bf16 mixed precision on the CPU as on the GPU, and CI tests it without one.
//
// Each kernel widens its bf16 operands to fp32 (exact), runs the fp32 kernel and rounds each output
// element once to bf16 (nearest even); parameter gradients, LayerNorm and softmax statistics stay
// fp32 and accumulate in place. That is the rounding the CUDA kernels make (fp32 accumulation,
// one rounding on store); the CPU pays for it with the copies, which the fp32 path does not make.
// The scalar kernels (elementwise, GELU, LayerNorm, tokens, loss) serve bf16 through
// cpu_detail::wide / narrow (element.hpp) and need nothing here.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "sfm/core/bf16.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cpu/adamw.hpp"
#include "sfm/kernels/cpu/attention_blocks.hpp"
#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/linear.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cpu_detail {

inline std::vector<float> widen(const bf16* x, int64_t n) {
  std::vector<float> wide_values(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) wide_values[size_t(i)] = to_float(x[i]);
  return wide_values;
}

inline void store_narrow(bf16* out, const float* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = to_bf16(x[i]);
}

// An fp32 copy of the first `rows` rows of every (batch, head) of a bf16 HeadsView (or zeros: an
// output to be written), contiguous [batch, heads, rows, dim]; store() writes rows [0, count) back,
// rounded.
class WideHeads {
 public:
  WideHeads(int64_t batch, int64_t heads, int64_t rows, int64_t dim)
      : heads_(heads), rows_(rows), dim_(dim), values_(size_t(batch * heads * rows * dim)) {}
  WideHeads(HeadsView<const bf16> src, int64_t batch, int64_t heads, int64_t rows, int64_t dim)
      : heads_(heads), rows_(rows), dim_(dim), values_(size_t(batch * heads * rows * dim)) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t t = 0; t < rows; ++t) {
          const bf16* in = src.at(b, h) + t * src.token_stride;
          float* out = values_.data() + ((b * heads + h) * rows + t) * dim;
          for (int64_t c = 0; c < dim; ++c) out[c] = to_float(in[c]);
        }
  }

  HeadsView<float> view() { return {values_.data(), heads_ * rows_ * dim_, rows_ * dim_, dim_}; }

  void store(HeadsView<bf16> dst, int64_t batch, int64_t count) const {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads_; ++h)
        for (int64_t t = 0; t < count; ++t) {
          const float* in = values_.data() + ((b * heads_ + h) * rows_ + t) * dim_;
          bf16* out = dst.at(b, h) + t * dst.token_stride;
          for (int64_t c = 0; c < dim_; ++c) out[c] = to_bf16(in[c]);
        }
  }

 private:
  int64_t heads_, rows_, dim_;
  std::vector<float> values_;
};

}  // namespace cpu_detail

// out = in · weightᵀ + bias in fp32, rounded once (linear.hpp has the layout).
inline void linear_forward(Cpu, bf16* out, const bf16* in, const bf16* weight, const bf16* bias, int64_t rows,
                           int64_t in_dim, int64_t out_dim) {
  using namespace cpu_detail;
  const std::vector<float> x = widen(in, rows * in_dim), w = widen(weight, out_dim * in_dim);
  const std::vector<float> b = bias ? widen(bias, out_dim) : std::vector<float>{};
  std::vector<float> y(size_t(rows * out_dim));
  linear_forward(Cpu{}, y.data(), x.data(), w.data(), bias ? b.data() : nullptr, rows, in_dim, out_dim);
  store_narrow(out, y.data(), rows * out_dim);
}

// The backward with bf16 activations and fp32 parameter gradients (accumulated in fp32).
inline void linear_backward(Cpu, bf16* d_in, float* d_weight, float* d_bias, const bf16* d_out, const bf16* in,
                            const bf16* weight, int64_t rows, int64_t in_dim, int64_t out_dim) {
  using namespace cpu_detail;
  const std::vector<float> dy = widen(d_out, rows * out_dim), x = widen(in, rows * in_dim),
                           w = widen(weight, out_dim * in_dim);
  std::vector<float> dx(d_in ? size_t(rows * in_dim) : 0);
  linear_backward(Cpu{}, d_in ? dx.data() : nullptr, d_weight, d_bias, dy.data(), x.data(), w.data(), rows, in_dim,
                  out_dim);
  if (d_in) store_narrow(d_in, dx.data(), rows * in_dim);
}

// Attention blocks (attention_blocks.hpp has the semantics). The whole-sequence forms of
// attention.hpp compose these for bf16 as they compose the fp32 ones.
inline void attention_forward_block(Cpu, AttentionOutputs<bf16> o, const AttentionInputs<bf16>& in, ValidRows valid) {
  using namespace cpu_detail;
  const AttentionShape& s = in.shape;
  WideHeads q(in.q, s.batch, s.heads, s.q_len, s.head_dim), k(in.k, s.batch, s.heads, valid.keys, s.head_dim),
      v(in.v, s.batch, s.heads, valid.keys, s.head_dim);
  WideHeads out(s.batch, s.heads, s.q_len, s.head_dim);  // the kernel writes every row
  attention_forward_block(Cpu{}, AttentionOutputs<float>{out.view(), o.lse},
                          AttentionInputs<float>{q.view(), k.view(), v.view(), s, in.scale}, valid);
  out.store(o.out, s.batch, s.q_len);
}

inline void attention_merge(Cpu, AttentionOutputs<bf16> into, SavedAttention<bf16> part, AttentionShape s) {
  using namespace cpu_detail;
  WideHeads out(into.out, s.batch, s.heads, s.q_len, s.head_dim), other(part.out, s.batch, s.heads, s.q_len, s.head_dim);
  attention_merge(Cpu{}, AttentionOutputs<float>{out.view(), into.lse}, SavedAttention<float>{other.view(), part.lse},
                  s);
  out.store(into.out, s.batch, s.q_len);
}

inline void attention_backward_delta(Cpu, float* delta, HeadsView<const bf16> d_out, HeadsView<const bf16> out,
                                     AttentionShape s, int64_t queries) {
  using namespace cpu_detail;
  WideHeads dy(d_out, s.batch, s.heads, queries, s.head_dim), y(out, s.batch, s.heads, queries, s.head_dim);
  // The fp32 copies hold `queries` rows per head; delta keeps its q_len row stride.
  attention_backward_delta(Cpu{}, delta, HeadsView<const float>(dy.view()), HeadsView<const float>(y.view()), s,
                           queries);
}

inline void attention_backward_block(Cpu, AttentionGrads<bf16> g, InHeads<bf16> d_out, const float* lse,
                                     const float* delta, const AttentionInputs<bf16>& in, ValidRows valid) {
  using namespace cpu_detail;
  if (valid.queries == 0 || valid.keys == 0) return;
  const AttentionShape& s = in.shape;
  const int64_t B = s.batch, H = s.heads, d = s.head_dim;
  WideHeads q(in.q, B, H, valid.queries, d), k(in.k, B, H, valid.keys, d), v(in.v, B, H, valid.keys, d),
      dy(d_out, B, H, valid.queries, d);
  WideHeads dq(g.d_q, B, H, valid.queries, d), dk(g.d_k, B, H, valid.keys, d), dv(g.d_v, B, H, valid.keys, d);
  attention_backward_block(Cpu{}, AttentionGrads<float>{dq.view(), dk.view(), dv.view()}, dy.view(), lse, delta,
                           AttentionInputs<float>{q.view(), k.view(), v.view(), s, in.scale}, valid);
  dq.store(g.d_q, B, valid.queries);
  dk.store(g.d_k, B, valid.keys);
  dv.store(g.d_v, B, valid.keys);
}

inline void copy_heads(Cpu, HeadsView<bf16> dst, InHeads<bf16> src, int64_t batch, int64_t heads, int64_t rows,
                       int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < rows; ++t)
        std::memcpy(dst.at(b, h) + t * dst.token_stride, src.at(b, h) + t * src.token_stride, sizeof(bf16) * dim);
}

inline void zero_heads(Cpu, HeadsView<bf16> dst, int64_t batch, int64_t heads, int64_t rows, int64_t dim) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < rows; ++t) std::memset(dst.at(b, h) + t * dst.token_stride, 0, sizeof(bf16) * dim);
}

// One AdamW step on fp32 master weights that also writes their bf16 compute copy (the Cuda twin's
// overload): param_bf16[i] = bf16(param[i]) after the update.
inline void adamw_update(Cpu, float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h,
                         bf16* param_bf16) {
  adamw_update(Cpu{}, param, grad, m, v, n, h);
  cpu_detail::store_narrow(param_bf16, param, n);
}

}  // namespace sfm
