// The CPU kernels the CUDA tests compare against whose headers need Eigen (linear, attention and
// its block forms), and AdamW, compiled by the host compiler in cpu_reference.cpp (Eigen stays out
// of nvcc), fp32. The attention wrappers take the argument structs of kernels/attention_args.hpp,
// as the kernels do.
#pragma once

#include <cstdint>

#include "sfm/kernels/adamw_hyper.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm::test::ref {

void linear_forward(float* out, const float* in, const float* weight, const float* bias, int64_t rows, int64_t in_dim,
                    int64_t out_dim);
void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out, const float* in,
                     const float* weight, int64_t rows, int64_t in_dim, int64_t out_dim);
void attention_forward(AttentionOutputs<float> o, const AttentionInputs<float>& in);
void attention_backward(AttentionGrads<float> g, InHeads<float> d_out, SavedAttention<float> fwd,
                        const AttentionInputs<float>& in);
// The block forms (kernels/cpu/attention_blocks.hpp).
void attention_forward_block(AttentionOutputs<float> o, const AttentionInputs<float>& in, ValidRows valid);
void attention_merge(AttentionOutputs<float> into, SavedAttention<float> part, AttentionShape s);
void attention_backward_delta(float* delta, InHeads<float> d_out, InHeads<float> out, AttentionShape s,
                              int64_t queries);
void attention_backward_block(AttentionGrads<float> g, InHeads<float> d_out, const float* lse, const float* delta,
                              const AttentionInputs<float>& in, ValidRows valid);
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h);

}  // namespace sfm::test::ref
