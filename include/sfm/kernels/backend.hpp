// The backend contract: what a backend must provide for the model (model/), the MAE loss, the
// attention policies (parallel/), ZeRO and the optimizer (optim/) to run on it, as one concept.
//
// A backend is an empty tag type (sfm::Cpu in kernels/cpu/backend.hpp, sfm::Cuda in
// kernels/cuda/backend.cuh) with
//   Array<T>       an owning buffer in the backend's memory (std::vector's interface subset:
//                  data(), size(), assign(n, v), assign(first, last) from host values)
//   name, kind     its name in configs ("cpu", "cuda") and the BackendKind it is parsed to
//   host_memory    whether Array memory is host memory (a host pointer may be handed to kernels)
// and its kernels as free functions overloaded on the tag, found by argument-dependent lookup where
// generic code calls them. Everything above the kernels is a template on a KernelBackend and
// includes no backend header; a program includes the backends it runs (kernels/cpu/kernels.hpp,
// kernels/cuda/kernels.cuh from a file nvcc compiles) before instantiating those templates.
//
// ComputesIn<B, T> lists the kernels for one element type (fp32 everywhere; bf16 storage for mixed
// precision), KernelBackend<B> adds identity, memory and the optimizer to ComputesIn<B, float>;
// BackendOrders<B, Comm> adds the two ordering edges between the backend's kernels and a
// communicator's collectives (kernels/cpu/backend.hpp, kernels/cuda/collective_order.cuh).
// docs/parallel.md ("Adding a backend") walks through the list.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"
#include "sfm/kernels/adamw_hyper.hpp"
#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/element.hpp"
#include "sfm/kernels/patch_grid.hpp"
#include "sfm/kernels/views.hpp"

namespace sfm {

// The backends a config can name; parsed once where a config or flag enters (parse_backend_kind).
enum class BackendKind { cpu, cuda };

inline std::string_view backend_name(BackendKind kind) { return kind == BackendKind::cpu ? "cpu" : "cuda"; }

// `what` names the setting in the error ("config: backend", "--backend").
inline BackendKind parse_backend_kind(std::string_view name, std::string_view what) {
  if (name == "cpu") return BackendKind::cpu;
  if (name == "cuda") return BackendKind::cuda;
  fail(what, ": '", name, "' (known: cpu, cuda)");
}

// The kernels of one element type T: activations and weights in T, parameter gradients fp32 (float
// when T is float), statistics Accum<T>. Every backend provides T = float; ComputesIn<B, bf16> is
// bf16 mixed precision (bf16 storage, fp32 arithmetic and master weights).
template <class B, class T>
concept ComputesIn = requires(B be, T* x, const T* cx, float* grad, const float* volume, Accum<T>* stat,
                              const Accum<T>* cstat, int64_t n, const int64_t* index, const uint8_t* select,
                              const PatchGrid& grid, HeadsView<T> heads, HeadsView<const T> in_heads,
                              TokenRows<T> rows, TokenRows<const T> in_rows, const AttentionInputs<T>& args,
                              AttentionOutputs<T> outputs, SavedAttention<T> saved, AttentionGrads<T> grads,
                              AttentionShape shape, ValidRows valid) {
  copy_elements(be, x, cx, n);
  convert_elements(be, x, volume, n);  // fp32 master weights → the compute copy
  fill_zero(be, x, n);
  add_inplace(be, x, cx, n);
  // Layers: linear (weights [out, in], PyTorch's), LayerNorm, GELU (erf).
  linear_forward(be, x, cx, cx, cx, n, n, n);
  linear_backward(be, x, grad, grad, cx, cx, cx, n, n, n);
  layernorm_forward(be, x, stat, stat, cx, cx, cx, n, n, 1e-6);
  layernorm_backward(be, x, grad, grad, cx, cx, cstat, cstat, cx, n, n);
  gelu_forward(be, x, cx, n);
  gelu_backward(be, x, cx, cx, n);
  // Patches (from an fp32 volume) and tokens.
  patchify(be, x, volume, n, grid);
  unpatchify(be, x, cx, n, grid);
  gather_tokens(be, rows, in_rows, index, n, n, n);
  scatter_tokens(be, rows, in_rows, index, n, n, n);
  copy_rows(be, rows, in_rows, n, n, n);
  add_rows_broadcast(be, rows, cx, n, n, n);
  fill_rows(be, rows, cx, select, n, n, n);
  sum_rows(be, grad, in_rows, select, n, n, n);
  // The MAE loss over hidden tokens (returns the loss, writes its gradient).
  { mae_loss(be, rows, in_rows, cx, select, n, n, n, true, 1.0) } -> std::convertible_to<double>;
  // Attention over a whole sequence, and the block forms the context-parallel policies assemble.
  attention_forward(be, outputs, args);
  attention_backward(be, grads, in_heads, saved, args);
  attention_forward_block(be, outputs, args, valid);
  attention_merge(be, outputs, saved, shape);
  attention_backward_delta(be, stat, in_heads, in_heads, shape, n);
  attention_backward_block(be, grads, in_heads, cstat, cstat, args, valid);
  copy_heads(be, heads, in_heads, n, n, n, n);
  zero_heads(be, heads, n, n, n, n);
};

// A backend: its identity and memory, the fp32 kernels, and the optimizer (fp32 master weights, and
// the form that also writes their bf16 compute copy).
template <class B>
concept KernelBackend = std::default_initializable<B> && ComputesIn<B, float> &&
    requires(B be, float* x, const float* cx, double* xd, bf16* compute_copy, int64_t n, const AdamWHyper& hyper) {
  { B::name } -> std::convertible_to<std::string_view>;
  { B::kind } -> std::convertible_to<BackendKind>;
  { B::host_memory } -> std::convertible_to<bool>;
  requires std::movable<typename B::template Array<float>>;
  { typename B::template Array<float>(size_t(n)).data() } -> std::same_as<float*>;
  synchronize(be);
  copy_from_host(be, x, cx, n);
  copy_to_host(be, x, cx, n);
  copy_from_host(be, xd, static_cast<const double*>(xd), n);
  copy_to_host(be, xd, static_cast<const double*>(xd), n);
  { squared_norm(be, cx, n, 0.0) } -> std::same_as<double>;
  adamw_update(be, x, cx, x, x, n, hyper);
  adamw_update(be, x, cx, x, x, n, hyper, compute_copy);
};

// The ordering edges between B's kernels and Comm's collectives (ZeroOptimizer, the trainer):
// order_after_compute(be, comm) before a collective reads what kernels wrote, finish_collective(be,
// handle) before kernels read what a collective wrote.
template <class B, class Comm>
concept BackendOrders = KernelBackend<B> && requires(B be, Comm& comm, typename Comm::Handle& handle) {
  order_after_compute(be, comm);
  finish_collective(be, handle);
};

}  // namespace sfm
