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

void attention_forward(HeadsView<float> out, float* lse, HeadsView<const float> q, HeadsView<const float> k,
                       HeadsView<const float> v, AttentionShape s, float scale) {
  sfm::attention_forward(Cpu{}, out, lse, q, k, v, s, scale);
}

void attention_backward(HeadsView<float> d_q, HeadsView<float> d_k, HeadsView<float> d_v,
                        HeadsView<const float> d_out, HeadsView<const float> out, const float* lse,
                        HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v, AttentionShape s,
                        float scale) {
  sfm::attention_backward(Cpu{}, d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h) {
  sfm::adamw_update(Cpu{}, param, grad, m, v, n, h);
}

}  // namespace sfm::test::ref
