// AdamW over a ParamTable's flat buffers: fp32 moments, weight decay only on tensors of two or more
// dimensions (cls and mask tokens included, biases and norms excluded), per DESIGN.md.
//
// The optimizer works on a contiguous range [begin, end) of the flat buffer so that a sharded
// optimizer (ZeRO) can own a slice; the plain case owns everything. Within the range, each
// parameter tensor's overlap gets its own weight decay.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"
#include "sfm/kernels/adamw_hyper.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/model/params.hpp"

namespace sfm {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.05;
};

template <KernelBackend Backend>
class AdamW {
 public:
  AdamW(const ParamTable& table, AdamWConfig config, int64_t begin = 0, int64_t end = -1)
      : table_(&table), config_(config), begin_(begin), end_(end < 0 ? table.size() : end) {
    SFM_CHECK(0 <= begin_ && begin_ <= end_ && end_ <= table.size(), "AdamW range [", begin_, ", ", end_,
              ") outside the parameter buffer of ", table.size());
    m_.assign(size_t(end_ - begin_), 0.0f);
    v_.assign(size_t(end_ - begin_), 0.0f);
  }

  // One step on params[begin, end) with grads[begin, end) (both spans cover exactly the range),
  // gradients scaled by grad_scale (the clipping coefficient).
  void step(std::span<float> params, std::span<const float> grads, double lr, double grad_scale = 1.0) {
    update(params, grads, lr, grad_scale, nullptr);
  }

  // The same step on fp32 master weights, also writing their bf16 compute copy (Bf16Mixed), which
  // covers the same range.
  void step(std::span<float> params, std::span<const float> grads, double lr, double grad_scale,
            std::span<bf16> compute_copy) {
    SFM_CHECK(compute_copy.size() == params.size(), "AdamW::step: the compute copy does not match the parameters");
    update(params, grads, lr, grad_scale, compute_copy.data());
  }

  int64_t steps() const { return steps_; }
  // The moments in backend memory (device memory on the Cuda backend).
  std::span<float> first_moment() { return {m_.data(), m_.size()}; }
  std::span<float> second_moment() { return {v_.data(), v_.size()}; }
  void set_steps(int64_t steps) { steps_ = steps; }
  int64_t state_bytes() const { return int64_t((m_.size() + v_.size()) * sizeof(float)); }

 private:
  // compute_copy: nullptr, or the bf16 copy written beside the updated parameters.
  void update(std::span<float> params, std::span<const float> grads, double lr, double grad_scale, bf16* compute_copy) {
    SFM_CHECK(int64_t(params.size()) == end_ - begin_ && params.size() == grads.size(),
              "AdamW::step: spans do not match the optimizer's range");
    ++steps_;
    for (const ParamInfo& p : table_->entries()) {
      const int64_t lo = std::max(begin_, p.offset), hi = std::min(end_, p.offset + p.numel);
      if (lo >= hi) continue;
      AdamWHyper h{lr, config_.beta1, config_.beta2, config_.eps, p.weight_decay ? config_.weight_decay : 0.0,
                   steps_, grad_scale};
      const int64_t at = lo - begin_;
      if (compute_copy)
        adamw_update(Backend{}, params.data() + at, grads.data() + at, m_.data() + at, v_.data() + at, hi - lo, h,
                     compute_copy + at);
      else
        adamw_update(Backend{}, params.data() + at, grads.data() + at, m_.data() + at, v_.data() + at, hi - lo, h);
    }
  }

  const ParamTable* table_;
  AdamWConfig config_;
  int64_t begin_, end_;
  typename Backend::template Array<float> m_, v_;
  int64_t steps_ = 0;
};

}  // namespace sfm
