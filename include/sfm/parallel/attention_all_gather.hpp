// AllGatherKV: self-attention over a sequence split across a context-parallel group by gathering
// every rank's K/V block (one all_gather), then attending the local queries to each block in rank
// order and merging with the log-sum-exp. The backward gathers K/V again, computes this rank's dK/dV
// share for every block and reduce-scatters the shares, so each rank gets the full dK/dV of its own
// keys.
//
// Simpler than RingAttention and with one collective per direction, but its workspace holds all
// P blocks (the whole sequence's K/V, and its dK/dV in the backward), so it saves no attention
// memory; it is the baseline the ring is measured against. Generic over the backend as RingAttention.
#pragma once

#include <cstdint>
#include <span>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/views.hpp"
#include "sfm/parallel/kv_blocks.hpp"

namespace sfm {

template <Communicator Comm, KernelBackend Backend>
  requires BackendOrders<Backend, Comm>
class AllGatherKV {
 public:
  explicit AllGatherKV(Comm& comm) : comm_(&comm) {}

  SequenceBlocks blocks(int64_t length) const { return SequenceBlocks(length, comm_->size()); }

  // As RingAttention::forward.
  template <class T>
  void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) {
    using namespace context_detail;
    const Backend be{};
    BlockPass<Backend, T> pass(comm_->size(), comm_->rank(), args.shape, workspace_, workspace_bytes<T>(args.shape));
    const int P = pass.P, r = pass.r;
    const int64_t kv_size = pass.kv_size;
    T* all = pass.carve(P * kv_size);
    const AttentionOutputs<T> part{contiguous_heads(pass.carve(kv_size / 2), pass.local), pass.carve_stats()};

    gather_kv(be, all, args.k, args.v, pass.local, pass.seq.valid(r));
    for (int owner = 0; owner < P; ++owner)
      forward_block(be, owner == 0, out, part, args.q, KvBlock<T>{all + owner * kv_size, pass.local}, args.scale,
                    ValidRows{pass.seq.valid(r), pass.seq.valid(owner)});
  }

  // As RingAttention::backward.
  template <class T>
  void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd, const AttentionInputs<T>& args) {
    using namespace context_detail;
    const Backend be{};
    BlockPass<Backend, T> pass(comm_->size(), comm_->rank(), args.shape, workspace_, workspace_bytes<T>(args.shape));
    const int P = pass.P, r = pass.r;
    const SequenceBlocks& seq = pass.seq;
    const AttentionShape local = pass.local;
    const int64_t mine = seq.valid(r), kv_size = pass.kv_size;
    T* all = pass.carve(P * kv_size);
    T* shares = pass.carve(P * kv_size);  // this rank's dK/dV share of every block
    Accum<T>* delta = pass.carve_stats();

    gather_kv(be, all, args.k, args.v, local, mine);
    zero_heads(be, grads.d_q, local.batch, local.heads, local.q_len, local.head_dim);
    attention_backward_delta(be, delta, d_out, fwd.out, local, mine);
    fill_zero(be, shares, P * kv_size);
    for (int owner = 0; owner < P; ++owner) {
      const KvBlock<T> held{all + owner * kv_size, local}, share{shares + owner * kv_size, local};
      attention_backward_block(be, AttentionGrads<T>{grads.d_q, share.k(), share.v()}, d_out, fwd.lse, delta,
                               AttentionInputs<T>{args.q, held.k(), held.v(), local, args.scale},
                               ValidRows{mine, seq.valid(owner)});
    }
    const KvBlock<T> total{shares + r * kv_size, local};  // the sum over ranks of chunk r, in place
    order_after_compute(be, *comm_);
    auto reduced = comm_->reduce_scatter_async(std::span<const T>(shares, size_t(P * kv_size)), total.span());
    finish_collective(be, reduced);
    unpack_grads(be, grads.d_k, grads.d_v, total, mine);
  }

  // Bytes of workspace a call with global shape `s` uses (the backward's; the forward's fits in it):
  // every rank's K/V block and this rank's dK/dV share of each, and the row statistics.
  template <class T>
  size_t workspace_bytes(AttentionShape s) const {
    using namespace context_detail;
    const AttentionShape local = block_shape(s, sequence_of(s, comm_->size()));
    return 2 * aligned_bytes<T>(comm_->size() * KvBlock<T>::size(local)) +
           aligned_bytes<Accum<T>>(local.batch * local.heads * local.q_len);
  }

 private:
  // all ← every rank's packed K/V block, in rank order (this rank packs its own in place).
  template <class T>
  void gather_kv(Backend be, T* all, InHeads<T> k, InHeads<T> v, AttentionShape local, int64_t valid) {
    const int64_t kv_size = context_detail::KvBlock<T>::size(local);
    const context_detail::KvBlock<T> mine{all + comm_->rank() * kv_size, local};
    context_detail::pack_kv(be, mine, k, v, valid);
    order_after_compute(be, *comm_);
    auto gathered = comm_->all_gather_async(std::span<const T>(mine.span()), std::span<T>(all, size_t(comm_->size() * kv_size)));
    finish_collective(be, gathered);
  }

  Comm* comm_;
  context_detail::Workspace<Backend> workspace_;
};

}  // namespace sfm
