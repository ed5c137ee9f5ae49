// Thin fp32 wrappers over the Cpu backend's kernels for the CUDA tests (see cpu_reference.hpp).
#include "cpu_reference.hpp"

#include "sfm/kernels/cpu/kernels.hpp"

namespace sfm::test::ref {

void linear_forward(float* out, const float* in, const float* weight, const float* bias, int64_t rows, int64_t in_dim,
                    int64_t out_dim) {
  sfm::linear_forward(Cpu{}, out, in, weight, bias, rows, in_dim, out_dim);
}

void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out, const float* in,
                     const float* weight, int64_t rows, int64_t in_dim, int64_t out_dim) {
  sfm::linear_backward(Cpu{}, d_in, d_weight, d_bias, d_out, in, weight, rows, in_dim, out_dim);
}

void attention_forward(AttentionOutputs<float> o, const AttentionInputs<float>& in) {
  sfm::attention_forward(Cpu{}, o, in);
}

void attention_backward(AttentionGrads<float> g, InHeads<float> d_out, SavedAttention<float> fwd,
                        const AttentionInputs<float>& in) {
  sfm::attention_backward(Cpu{}, g, d_out, fwd, in);
}

void attention_forward_block(AttentionOutputs<float> o, const AttentionInputs<float>& in, ValidRows valid) {
  sfm::attention_forward_block(Cpu{}, o, in, valid);
}

void attention_merge(AttentionOutputs<float> into, SavedAttention<float> part, AttentionShape s) {
  sfm::attention_merge(Cpu{}, into, part, s);
}

void attention_backward_delta(float* delta, InHeads<float> d_out, InHeads<float> out, AttentionShape s,
                              int64_t queries) {
  sfm::attention_backward_delta(Cpu{}, delta, d_out, out, s, queries);
}

void attention_backward_block(AttentionGrads<float> g, InHeads<float> d_out, const float* lse, const float* delta,
                              const AttentionInputs<float>& in, ValidRows valid) {
  sfm::attention_backward_block(Cpu{}, g, d_out, lse, delta, in, valid);
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h) {
  sfm::adamw_update(Cpu{}, param, grad, m, v, n, h);
}

}  // namespace sfm::test::ref
