// AttentionKind: the attention policy a config names (parallel.attention), parsed once where the
// config enters and carried as this enum to where the policy is built (parallel/attention.hpp).
#pragma once

#include <string_view>

#include "sfm/core/error.hpp"

namespace sfm {

enum class AttentionKind {
  local,       // LocalAttention: the whole sequence on one rank (cp = 1)
  ring,        // RingAttention
  all_gather,  // AllGatherKV
};

inline std::string_view attention_kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::local: return "local";
    case AttentionKind::ring: return "ring";
    case AttentionKind::all_gather: return "all_gather";
  }
  return "?";
}

// `what` names the setting in the error ("config: parallel.attention", "--attention").
inline AttentionKind parse_attention_kind(std::string_view name, std::string_view what) {
  for (AttentionKind kind : {AttentionKind::local, AttentionKind::ring, AttentionKind::all_gather})
    if (name == attention_kind_name(kind)) return kind;
  fail(what, ": '", name, "' (known: ring, all_gather, local)");
}

}  // namespace sfm
