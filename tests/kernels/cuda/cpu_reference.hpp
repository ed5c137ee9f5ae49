// The CPU kernels the CUDA tests compare against whose headers need Eigen (linear, attention), and
// AdamW, compiled by the host compiler in cpu_reference.cpp (Eigen stays out of nvcc), fp32.
#pragma once

#include <cstdint>

#include "sfm/kernels/cpu/adamw.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm::test::ref {

void linear_forward(float* out, const float* in, const float* weight, const float* bias, int64_t rows, int64_t in_dim,
                    int64_t out_dim);
void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out, const float* in,
                     const float* weight, int64_t rows, int64_t in_dim, int64_t out_dim);
void attention_forward(HeadsView<float> out, float* lse, HeadsView<const float> q, HeadsView<const float> k,
                       HeadsView<const float> v, AttentionShape s, float scale);
void attention_backward(HeadsView<float> d_q, HeadsView<float> d_k, HeadsView<float> d_v,
                        HeadsView<const float> d_out, HeadsView<const float> out, const float* lse,
                        HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v, AttentionShape s,
                        float scale);
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h);

}  // namespace sfm::test::ref
