// ContextParallel: the context-parallel (cp) group VitMae runs in, as the model sees it: how many
// ranks share each sample's token sequences, the self-attention over a sequence split among them,
// and the three collective steps the model needs (the bridge's all-gather and reduce-scatter, the
// loss sum).
//
//   SingleRank<Backend>                     cp = 1, every model's default: the backend's attention
//                                           kernels, and collectives that do nothing.
//   ContextParallelGroup<Attention, Comm>   cp = comm.size(): an attention policy of parallel/
//                                           (RingAttention<Comm>, AllGatherKV<Comm>) over `comm`.
//
// A runtime interface (model.use_context_parallel(group)) rather than a template parameter of
// VitMae: VitMae<Backend> stays one type for every cp size and attention policy, so existing
// callers are untouched and a trainer picks cp from its config at run time; the model calls it a
// few times per layer, where a virtual call costs nothing next to the work. The model layer sees
// only the Communicator concept; the attention policies (parallel/, a layer above) come in as a
// template argument.
//
// Contract of the attention calls (parallel/attention.hpp): `shape` is the global one
// (q_len = k_len = L); the views and lse [batch, heads, rows] cover this rank's SequenceBlocks(L,
// size()) block, padded rows are never read as keys and get zero outputs and gradients.
#pragma once

#include <cstddef>
#include <span>

#include "sfm/comm/communicator.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

class ContextParallel {
 public:
  virtual ~ContextParallel() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;

  virtual void forward(HeadsView<float> out, float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
                       AttentionShape shape, float scale) = 0;
  virtual void backward(HeadsView<float> d_q, HeadsView<float> d_k, HeadsView<float> d_v, InHeads<float> d_out,
                        InHeads<float> out, const float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
                        AttentionShape shape, float scale) = 0;
  // Scratch the attention holds for a call of `shape` (besides the model's activations).
  virtual size_t attention_workspace_bytes(AttentionShape shape) const = 0;

  // In place on size()·m floats: chunk rank() is this rank's; afterwards every chunk is its owner's.
  virtual void all_gather(std::span<float> data) = 0;
  // In place on size()·m floats: chunk rank() becomes the sum over ranks of that chunk (the other
  // chunks are left as scratch).
  virtual void reduce_scatter(std::span<float> data) = 0;
  // Σ over ranks.
  virtual double sum(double value) = 0;
};

template <class Backend>
class SingleRank final : public ContextParallel {
 public:
  int size() const override { return 1; }
  int rank() const override { return 0; }

  void forward(HeadsView<float> out, float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
               AttentionShape shape, float scale) override {
    attention_forward(Backend{}, out, lse, q, k, v, shape, scale);
  }
  void backward(HeadsView<float> d_q, HeadsView<float> d_k, HeadsView<float> d_v, InHeads<float> d_out,
                InHeads<float> out, const float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
                AttentionShape shape, float scale) override {
    attention_backward(Backend{}, d_q, d_k, d_v, d_out, out, lse, q, k, v, shape, scale);
  }
  size_t attention_workspace_bytes(AttentionShape) const override { return 0; }

  void all_gather(std::span<float>) override {}
  void reduce_scatter(std::span<float>) override {}
  double sum(double value) override { return value; }
};

template <class Attention, Communicator Comm>
class ContextParallelGroup final : public ContextParallel {
 public:
  // `comm` (the cp communicator) outlives the group.
  explicit ContextParallelGroup(Comm& comm) : comm_(&comm), attention_(comm) {}

  int size() const override { return comm_->size(); }
  int rank() const override { return comm_->rank(); }

  void forward(HeadsView<float> out, float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
               AttentionShape shape, float scale) override {
    attention_.forward(out, lse, q, k, v, shape, scale);
  }
  void backward(HeadsView<float> d_q, HeadsView<float> d_k, HeadsView<float> d_v, InHeads<float> d_out,
                InHeads<float> out, const float* lse, InHeads<float> q, InHeads<float> k, InHeads<float> v,
                AttentionShape shape, float scale) override {
    attention_.backward(d_q, d_k, d_v, d_out, out, lse, q, k, v, shape, scale);
  }
  size_t attention_workspace_bytes(AttentionShape shape) const override {
    return attention_.template workspace_bytes<float>(shape);
  }

  void all_gather(std::span<float> data) override {
    comm_->all_gather(std::span<const float>(chunk(data)), data);
  }
  void reduce_scatter(std::span<float> data) override {
    comm_->reduce_scatter(std::span<const float>(data), chunk(data));
  }
  double sum(double value) override {
    comm_->all_reduce(std::span<double>(&value, 1));
    return value;
  }

 private:
  std::span<float> chunk(std::span<float> data) const {
    const size_t m = data.size() / size_t(size());
    return data.subspan(size_t(rank()) * m, m);
  }

  Comm* comm_;
  Attention attention_;
};

}  // namespace sfm
