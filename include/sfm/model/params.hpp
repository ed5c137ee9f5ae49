// ParamTable: the model's trainable tensors laid out in one flat fp32 buffer.
//
// Each tensor has its public MAE name, shape and offset; parameters and gradients share the layout.
// One flat buffer makes the optimizer a single loop and lets ZeRO shard, reduce and gather
// contiguous ranges. The order is the order of registration (the model registers in PyTorch's
// state_dict order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/tensor.hpp"

namespace sfm {

struct ParamInfo {
  std::string name;
  Shape shape;
  int64_t offset = 0;
  int64_t numel = 0;
  bool weight_decay = false;  // AdamW decays tensors with two or more dimensions
};

class ParamTable {
 public:
  // Registers a tensor and returns its offset in the flat buffer.
  int64_t add(std::string name, Shape shape) {
    ParamInfo info{std::move(name), std::move(shape), size_, 0, false};
    info.numel = numel(info.shape);
    info.weight_decay = info.shape.size() >= 2;
    size_ += info.numel;
    entries_.push_back(std::move(info));
    return entries_.back().offset;
  }

  int64_t size() const { return size_; }
  const std::vector<ParamInfo>& entries() const { return entries_; }

  const ParamInfo* find(const std::string& name) const {
    for (const ParamInfo& p : entries_)
      if (p.name == name) return &p;
    return nullptr;
  }

 private:
  std::vector<ParamInfo> entries_;
  int64_t size_ = 0;
};

}  // namespace sfm
