// Precision policies: the element type a model stores its activations and GEMM operands in, the
// second template parameter beside the backend (VitMae<Backend, Precision>).
//
//   Fp32       everything fp32 (the reference; what checkpoints and the optimizer hold)
//   Bf16Mixed  activations, weights' compute copy and attention inputs in bf16; fp32 accumulation,
//              fp32 master weights, gradients, LayerNorm and softmax statistics and the loss
//
// PrecisionKind is the name a config or flag gives (train.precision, --precision), parsed once.
#pragma once

#include <concepts>
#include <string_view>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"

namespace sfm {

enum class PrecisionKind { fp32, bf16 };

struct Fp32 {
  using Compute = float;
  static constexpr PrecisionKind kind = PrecisionKind::fp32;
};

struct Bf16Mixed {
  using Compute = bf16;
  static constexpr PrecisionKind kind = PrecisionKind::bf16;
};

template <class P>
concept Precision = requires {
  typename P::Compute;
  { P::kind } -> std::convertible_to<PrecisionKind>;
};

inline std::string_view precision_name(PrecisionKind kind) { return kind == PrecisionKind::fp32 ? "fp32" : "bf16"; }

// f(Fp32{}) or f(Bf16Mixed{}): a run-time choice onto the compile-time policy.
template <class F>
decltype(auto) visit_precision(PrecisionKind kind, F&& f) {
  if (kind == PrecisionKind::bf16) return f(Bf16Mixed{});
  return f(Fp32{});
}

// `what` names the setting in the error ("config: train.precision", "--precision").
inline PrecisionKind parse_precision_kind(std::string_view name, std::string_view what) {
  for (PrecisionKind kind : {PrecisionKind::fp32, PrecisionKind::bf16})
    if (name == precision_name(kind)) return kind;
  fail(what, ": '", name, "' (known: fp32, bf16)");
}

}  // namespace sfm
