// ContextParallel: the context-parallel (cp) group VitMae runs in, as the model sees it: how many
// ranks share each sample's token sequences, the self-attention over a sequence split among them,
// and the three collective steps the model needs (the bridge's all-gather and reduce-scatter, the
// loss sum).
//
//   SingleRank<Backend>                     cp = 1, every model's default: the backend's attention
//                                           kernels, and collectives that do nothing.
//   ContextParallelGroup<Attention, Comm>   cp = comm.size(): an attention policy of parallel/
//                                           (RingAttention<Comm, Backend>, AllGatherKV<Comm, Backend>)
//                                           over `comm`.
//
// A runtime interface (model.use_context_parallel(group)) rather than a template parameter of
// VitMae: VitMae<Backend> stays one type for every cp size and attention policy, so existing
// callers are untouched and a trainer picks cp from its config at run time; the model calls it a
// few times per layer, where a virtual call costs nothing next to the work. The model layer sees
// only the Communicator concept; the attention policies (parallel/, a layer above) come in as a
// template argument.
//
// T is the model's compute type (float; bf16 under Bf16Mixed): the attention operands and the
// bridge's activations and gradients are T.
//
// Contract of the attention calls (parallel/attention.hpp; arguments in kernels/attention_args.hpp):
// `args.shape` is the global one (q_len = k_len = L); the views and lse [batch, heads, rows] cover
// this rank's SequenceBlocks(L, size()) block, padded rows are never read as keys and get zero
// outputs and gradients.
#pragma once

#include <cstddef>
#include <span>

#include "sfm/comm/communicator.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

template <class T = float>
class ContextParallel {
 public:
  virtual ~ContextParallel() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;

  // out, lse of softmax(scale · Q Kᵀ) V; backward overwrites grads from d_out and the forward's result.
  virtual void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) = 0;
  virtual void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd,
                        const AttentionInputs<T>& args) = 0;
  // Scratch the attention holds for a call of `shape` (besides the model's activations).
  virtual size_t attention_workspace_bytes(AttentionShape shape) const = 0;

  // In place on size()·m elements: chunk rank() is this rank's; afterwards every chunk is its owner's.
  virtual void all_gather(std::span<T> data) = 0;
  // In place on size()·m elements: chunk rank() becomes the sum over ranks of that chunk (the other
  // chunks are left as scratch).
  virtual void reduce_scatter(std::span<T> data) = 0;
  // Σ over ranks.
  virtual double sum(double value) = 0;
};

template <KernelBackend Backend, class T = float>
class SingleRank final : public ContextParallel<T> {
 public:
  int size() const override { return 1; }
  int rank() const override { return 0; }

  void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) override {
    attention_forward(Backend{}, out, args);
  }
  void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd,
                const AttentionInputs<T>& args) override {
    attention_backward(Backend{}, grads, d_out, fwd, args);
  }
  size_t attention_workspace_bytes(AttentionShape) const override { return 0; }

  void all_gather(std::span<T>) override {}
  void reduce_scatter(std::span<T>) override {}
  double sum(double value) override { return value; }
};

template <class Attention, Communicator Comm, class T = float>
class ContextParallelGroup final : public ContextParallel<T> {
 public:
  // `comm` (the cp communicator) outlives the group.
  explicit ContextParallelGroup(Comm& comm) : comm_(&comm), attention_(comm) {}

  int size() const override { return comm_->size(); }
  int rank() const override { return comm_->rank(); }

  void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) override {
    attention_.forward(out, args);
  }
  void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd,
                const AttentionInputs<T>& args) override {
    attention_.backward(grads, d_out, fwd, args);
  }
  size_t attention_workspace_bytes(AttentionShape shape) const override {
    return attention_.template workspace_bytes<T>(shape);
  }

  void all_gather(std::span<T> data) override { comm_->all_gather(std::span<const T>(chunk(data)), data); }
  void reduce_scatter(std::span<T> data) override { comm_->reduce_scatter(std::span<const T>(data), chunk(data)); }
  double sum(double value) override {
    comm_->all_reduce(std::span<double>(&value, 1));
    return value;
  }

 private:
  std::span<T> chunk(std::span<T> data) const {
    const size_t m = data.size() / size_t(size());
    return data.subspan(size_t(rank()) * m, m);
  }

  Comm* comm_;
  Attention attention_;
};

}  // namespace sfm
