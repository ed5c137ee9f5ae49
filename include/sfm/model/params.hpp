// ParamTable: the model's trainable tensors laid out in one flat fp32 buffer.
//
// Each tensor has its public MAE name, shape and offset; parameters and gradients share the layout.
// One flat buffer makes the optimizer a single loop and lets ZeRO shard, reduce and gather
// contiguous ranges. The order is the order of registration (the model registers in PyTorch's
// state_dict order), and tensors used together form groups.
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
  int group = 0;              // the ParamGroup it belongs to
};

// A run of tensors used together (a transformer block, the stem, ...): [begin, end) of the flat
// buffer. Groups are the unit of ZeRO's gathers and gradient buckets.
struct ParamGroup {
  std::string name;
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
};

class ParamTable {
 public:
  // Starts a new group; tensors added from now on belong to it. Returns its index.
  int begin_group(std::string name) {
    groups_.push_back({std::move(name), size_, size_});
    return int(groups_.size()) - 1;
  }

  // Registers a tensor in the current group and returns its offset in the flat buffer.
  int64_t add(std::string name, Shape shape) {
    SFM_CHECK(!groups_.empty(), "ParamTable::add('", name, "') before any begin_group()");
    ParamInfo info{std::move(name), std::move(shape), size_, 0, false, int(groups_.size()) - 1};
    info.numel = numel(info.shape);
    info.weight_decay = info.shape.size() >= 2;
    size_ += info.numel;
    groups_.back().end = size_;
    entries_.push_back(std::move(info));
    return entries_.back().offset;
  }

  int64_t size() const { return size_; }
  const std::vector<ParamInfo>& entries() const { return entries_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  const ParamInfo* find(const std::string& name) const {
    for (const ParamInfo& p : entries_)
      if (p.name == name) return &p;
    return nullptr;
  }

 private:
  std::vector<ParamInfo> entries_;
  std::vector<ParamGroup> groups_;
  int64_t size_ = 0;
};

}  // namespace sfm
