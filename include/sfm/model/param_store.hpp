// ParamStore: where the model's parameters and gradients live, one parameter group at a time.
//
// The model registers its tensors in groups (the stem, each transformer block, the bridge between
// encoder and decoder, the head), each a contiguous range of the flat layout (ParamTable). Forward
// and backward ask the store for a group's parameters just before using them and release them just
// after, and ask for the buffer a group's gradients accumulate into, announcing when that group's
// gradients of the current micro-batch are complete. A resident store (below) keeps everything in
// full buffers; the ZeRO stores in parallel/zero.hpp gather sharded parameters on acquire and
// reduce-scatter gradients on grads_ready, overlapping communication with the rest of the backward.
//
// ParamStore<T>: parameters are handed out in the model's compute type T (fp32, or the bf16 compute
// copy of fp32 master weights under Bf16Mixed); gradients are always fp32.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "sfm/core/bf16.hpp"

#include "sfm/kernels/backend.hpp"
#include "sfm/model/params.hpp"

namespace sfm {

// A group's tensors addressed by their flat offsets: at(offset) for offset in [begin, end).
template <class T>
struct GroupSpan {
  T* base;        // element `begin` of the group
  int64_t begin;  // flat offset of the group's first element

  T* at(int64_t offset) const { return base + (offset - begin); }
};

template <class T = float>
class ParamStore {
 public:
  virtual ~ParamStore() = default;
  // The group's parameters, valid until release_params(group).
  virtual GroupSpan<T> acquire_params(int group) = 0;
  virtual void release_params(int group) = 0;
  // Where this micro-batch's gradients of `group` accumulate (+=), valid until grads_ready(group).
  virtual GroupSpan<float> acquire_grads(int group) = 0;
  // Every gradient of `group` for the current micro-batch has been accumulated.
  virtual void grads_ready(int group) = 0;
};

// Every parameter and gradient resident in full flat buffers; gradients accumulate across
// micro-batches until the caller zeroes them. With T = bf16 the fp32 parameters are the master
// weights and each acquire hands out a bf16 copy of the group made from them then, so an optimizer
// that updates params() needs no further step.
template <KernelBackend Backend, class T = float>
class ResidentParams final : public ParamStore<T> {
 public:
  explicit ResidentParams(const ParamTable& table) : table_(&table) {
    params_.assign(size_t(table.size()), 0.0f);
    grads_.assign(size_t(table.size()), 0.0f);
    if constexpr (!std::is_same_v<T, float>) compute_.assign(size_t(table.size()), element_from_float<T>(0.0f));
  }

  GroupSpan<T> acquire_params(int group) override {
    if constexpr (std::is_same_v<T, float>) {
      return {params_.data(), 0};
    } else {
      const ParamGroup& g = table_->groups().at(size_t(group));
      convert_elements(Backend{}, compute_.data() + g.begin, params_.data() + g.begin, g.size());
      return {compute_.data(), 0};
    }
  }
  void release_params(int) override {}
  GroupSpan<float> acquire_grads(int) override { return {grads_.data(), 0}; }
  void grads_ready(int) override {}

  std::span<float> params() { return {params_.data(), params_.size()}; }
  std::span<float> grads() { return {grads_.data(), grads_.size()}; }

 private:
  const ParamTable* table_;
  typename Backend::template Array<float> params_, grads_;
  typename Backend::template Array<T> compute_;  // bf16: the compute copy (empty for fp32)
};

}  // namespace sfm
