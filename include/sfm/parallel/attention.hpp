// Attention policies: how a transformer layer's self-attention runs when the sequence may be
// spread over the ranks of a context-parallel (cp) group. The model calls one interface per layer
// (arguments in kernels/attention_args.hpp):
//
//   SequenceBlocks blocks(L)            which rows of the L-token sequence this rank holds (rank r:
//                                       tokens [start(r), start(r) + valid(r)), stored in rows() rows)
//   forward(out, args)                  out, lse of softmax(scale · Q Kᵀ) V
//   backward(grads, d_out, fwd, args)   dQ, dK, dV (overwritten)
//   workspace_bytes<T>(shape)           scratch the policy holds for such a call (besides the model's
//                                       views and the kernels' per-thread score tiles)
//
// `args.shape` is the global one (q_len = k_len = L, as for a single rank); the views and lse cover
// this rank's blocks(L).rows() rows (lse [batch, heads, rows]). Padded rows (rows past valid(r))
// are never read as keys; their out and gradients are 0.
//
//   LocalAttention<Backend>         cp = 1: the backend's attention kernels, the whole sequence on one rank
//   RingAttention<Comm, Backend>    K/V blocks travel round the ring (parallel/attention_ring.hpp)
//   AllGatherKV<Comm, Backend>      all ranks gather all K/V (parallel/attention_all_gather.hpp)
//
// Every policy is generic over the backend (kernels/backend.hpp): the kernels it calls are the
// contract's, found for the Backend it is instantiated with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/sequence_blocks.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/model/context_parallel.hpp"
#include "sfm/parallel/attention_all_gather.hpp"
#include "sfm/parallel/attention_kind.hpp"
#include "sfm/parallel/attention_ring.hpp"

namespace sfm {

template <KernelBackend Backend>
struct LocalAttention {
  SequenceBlocks blocks(int64_t length) const { return SequenceBlocks(length, 1); }

  template <class T>
  void forward(AttentionOutputs<T> out, const AttentionInputs<T>& args) const {
    attention_forward(Backend{}, out, args);
  }

  template <class T>
  void backward(AttentionGrads<T> grads, InHeads<T> d_out, SavedAttention<T> fwd, const AttentionInputs<T>& args) const {
    attention_backward(Backend{}, grads, d_out, fwd, args);
  }

  template <class T>
  size_t workspace_bytes(AttentionShape) const {
    return 0;
  }
};

// The context-parallel group of a policy that splits sequences (ring or all_gather) over `cp_comm`,
// which outlives the group.
template <KernelBackend Backend, Communicator Comm>
std::unique_ptr<ContextParallel<>> make_context_parallel(AttentionKind kind, Comm& cp_comm) {
  SFM_CHECK(kind != AttentionKind::local, "parallel.attention 'local' cannot split a sequence over cp = ",
            cp_comm.size(), " ranks (use ring or all_gather)");
  if (kind == AttentionKind::ring)
    return std::make_unique<ContextParallelGroup<RingAttention<Comm, Backend>, Comm>>(cp_comm);
  return std::make_unique<ContextParallelGroup<AllGatherKV<Comm, Backend>, Comm>>(cp_comm);
}

}  // namespace sfm
