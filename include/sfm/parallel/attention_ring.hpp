// RingAttention: self-attention over a sequence split across the ranks of a context-parallel group
// (ring attention). Each rank keeps its query block; the K/V blocks travel round the ring.
//
// Forward, P = comm.size() steps: at step s rank r holds the K/V block of rank (r − s) mod P,
// attends its queries to it and merges the partial result into (out, lse) with the log-sum-exp
// (exact; empty blocks have lse = −∞ and weight 0). Meanwhile the block already travels on to
// rank r + 1 and the next one arrives from r − 1 (double-buffered send_recv_async), so the
// transfer overlaps the compute.
//
// Backward recomputes P = exp(S − lse) with the global lse saved by the forward. dQ stays local;
// the dK/dV of each block travel with it: at step s a rank computes its share for the block it
// holds, adds the accumulator that arrives from r − 1 (posted a step earlier, so that transfer
// overlaps this step's compute) and passes the sum on to r + 1. After P steps every accumulator has
// visited every rank and arrives home: each rank holds the full dK/dV of its own keys. Gradients
// accumulate in the element type (fp32 for the fp32 backends).
//
// Generic over the backend: the block kernels are the contract's (kernels/backend.hpp), and every
// transfer is ordered against them by the backend's edges — order_after_compute before a send reads
// what a kernel wrote, finish_collective before a kernel reads what arrived (a host wait on Cpu,
// stream order on Cuda).
//
// Workspace (held by the policy, grown on first use): two K/V blocks in flight and, in the
// backward, three dK/dV blocks, each 2·batch·heads·rows·head_dim elements, plus one statistic per
// query row; rows = ⌈L/cp⌉, so it shrinks as 1/cp like the activations.
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
class RingAttention {
 public:
  explicit RingAttention(Comm& comm) : comm_(&comm) {}

  // How a sequence of `length` tokens is spread over the ranks (the model shards with this).
  SequenceBlocks blocks(int64_t length) const { return SequenceBlocks(length, comm_->size()); }

  // out, lse of this rank's queries against the whole sequence. `args.shape` is the global shape
  // (q_len = k_len = L); the views hold this rank's blocks(L).rows() rows and lse is
  // [batch, heads, rows]. Padded query rows get out = 0, lse = −∞.
  template <class T>
  void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) {
    using namespace context_detail;
    const Backend be{};
    BlockPass<Backend, T> pass(comm_->size(), comm_->rank(), args.shape, workspace_, workspace_bytes<T>(args.shape));
    const int P = pass.P, r = pass.r;
    const KvBlock<T> kv[2] = {pass.carve_block(), pass.carve_block()};
    // one block's partial output
    const AttentionOutputs<T> part{contiguous_heads(pass.carve(pass.kv_size / 2), pass.local), pass.carve_stats()};

    pack_kv(be, kv[0], args.k, args.v, pass.seq.valid(r));
    for (int step = 0; step < P; ++step) {
      const KvBlock<T>& held = kv[step % 2];
      typename Comm::Handle next;
      if (step + 1 < P) {
        order_after_compute(be, *comm_);  // the kernels are done with both blocks
        next = comm_->send_recv_async(std::span<const T>(held.span()), (r + 1) % P, kv[(step + 1) % 2].span(),
                                      (r + P - 1) % P);
      }
      const int owner = (r + P - step) % P;
      forward_block(be, step == 0, out, part, args.q, held, args.scale,
                    ValidRows{pass.seq.valid(r), pass.seq.valid(owner)});
      finish_collective(be, next);
    }
  }

  // d_q, d_k, d_v (this rank's rows, padding rows 0) from d_out and the forward's out and lse.
  template <class T>
  void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd, const AttentionInputs<T>& args) {
    using namespace context_detail;
    const Backend be{};
    BlockPass<Backend, T> pass(comm_->size(), comm_->rank(), args.shape, workspace_, workspace_bytes<T>(args.shape));
    const int P = pass.P, r = pass.r;
    const SequenceBlocks& seq = pass.seq;
    const AttentionShape local = pass.local;
    const int64_t mine = seq.valid(r);
    const KvBlock<T> kv[2] = {pass.carve_block(), pass.carve_block()};
    // shares[i]: this rank's dK/dV share for the block it holds plus the accumulator that arrived
    // for it, sent on; arrived: the accumulator coming from rank r − 1.
    const KvBlock<T> shares[2] = {pass.carve_block(), pass.carve_block()};
    const KvBlock<T> arrived = pass.carve_block();
    Accum<T>* delta = pass.carve_stats();

    pack_kv(be, kv[0], args.k, args.v, mine);
    zero_heads(be, grads.d_q, local.batch, local.heads, local.q_len, local.head_dim);
    attention_backward_delta(be, delta, d_out, fwd.out, local, mine);
    typename Comm::Handle incoming;  // the accumulator travelling from r − 1 into `arrived`
    for (int step = 0; step < P; ++step) {
      const KvBlock<T>& held = kv[step % 2];
      typename Comm::Handle next;
      if (step + 1 < P) {
        order_after_compute(be, *comm_);  // the kernels are done with both blocks
        next = comm_->send_recv_async(std::span<const T>(held.span()), (r + 1) % P, kv[(step + 1) % 2].span(),
                                      (r + P - 1) % P);
      }
      const int owner = (r + P - step) % P;
      const KvBlock<T>& share = shares[step % 2];
      fill_zero(be, share.data, share.size());
      const AttentionInputs<T> block{args.q, held.k(), held.v(), local, args.scale};
      attention_backward_block(be, AttentionGrads<T>{grads.d_q, share.k(), share.v()}, d_out, fwd.lse, delta, block,
                               ValidRows{mine, seq.valid(owner)});
      if (step > 0) {
        finish_collective(be, incoming);
        add_inplace(be, share.data, static_cast<const T*>(arrived.data), share.size());
      }
      if (P > 1) {
        order_after_compute(be, *comm_);  // the share is complete
        incoming = comm_->send_recv_async(std::span<const T>(share.span()), (r + 1) % P, arrived.span(), (r + P - 1) % P);
      }
      finish_collective(be, next);
    }
    finish_collective(be, incoming);
    unpack_grads(be, grads.d_k, grads.d_v, P > 1 ? arrived : shares[0], mine);
  }

  // Bytes of workspace a call with global shape `s` uses (the backward's; the forward's fits in it):
  // two K/V blocks in flight, two dK/dV shares and the arriving accumulator, the row statistics.
  template <class T>
  size_t workspace_bytes(AttentionShape s) const {
    using namespace context_detail;
    const AttentionShape local = block_shape(s, sequence_of(s, comm_->size()));
    return 5 * aligned_bytes<T>(KvBlock<T>::size(local)) + aligned_bytes<Accum<T>>(local.batch * local.heads * local.q_len);
  }

 private:
  Comm* comm_;
  context_detail::Workspace<Backend> workspace_;
};

}  // namespace sfm
