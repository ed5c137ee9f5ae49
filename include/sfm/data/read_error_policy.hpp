// What training does when a crop cannot be read (data.on_error): a chunk that does not decode, an
// HTTP or S3 error that outlasts the store's retries.
//
//   fail  the run stops with the read's error (it names the store and the chunk key)
//   skip  the crop is redrawn (data/sampler.hpp), the skip counted; the trainer stops the run past
//         data.max_skip_fraction of the samples (train/trainer.hpp)
#pragma once

#include <string_view>

#include "sfm/core/error.hpp"

namespace sfm {

enum class ReadErrorPolicy { fail, skip };

inline std::string_view read_error_policy_name(ReadErrorPolicy policy) {
  return policy == ReadErrorPolicy::fail ? "fail" : "skip";
}

// `name` as a policy; `what` names the setting in the error.
inline ReadErrorPolicy parse_read_error_policy(std::string_view name, std::string_view what) {
  for (ReadErrorPolicy policy : {ReadErrorPolicy::fail, ReadErrorPolicy::skip})
    if (name == read_error_policy_name(policy)) return policy;
  fail(what, ": '", name, "' (known: fail, skip)");
}

}  // namespace sfm
