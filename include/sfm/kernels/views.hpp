// Backend-neutral views that kernels take instead of plain pointers where layout matters:
// HeadsView (attention heads inside packed projections) and TokenRows (token rows of a batch,
// optionally skipping the leading cls row). Non-owning; the memory belongs to the backend.
#pragma once

#include <cstdint>
#include <type_traits>

namespace sfm {

// Element (b, h, t, c) lives at data[b·batch_stride + h·head_stride + t·token_stride + c].
template <class T>
struct HeadsView {
  T* data;
  int64_t batch_stride;
  int64_t head_stride;
  int64_t token_stride;

  T* at(int64_t b, int64_t h) const { return data + b * batch_stride + h * head_stride; }
  operator HeadsView<const T>() const
    requires(!std::is_const_v<T>)
  {
    return {data, batch_stride, head_stride, token_stride};
  }
};

// Read-only heads whose element type follows the other arguments (no deduction from it).
template <class T>
using InHeads = HeadsView<const std::type_identity_t<T>>;

struct AttentionShape {
  int64_t batch;
  int64_t heads;
  int64_t q_len;
  int64_t k_len;
  int64_t head_dim;
};

// Rows of width `dim` in a [batch, rows_per_sample, dim] buffer, starting at row `first` of each sample.
template <class T>
struct TokenRows {
  T* data;
  int64_t rows_per_sample;
  int64_t first = 0;

  T* row(int64_t b, int64_t r, int64_t dim) const { return data + (b * rows_per_sample + first + r) * dim; }
  operator TokenRows<const T>() const
    requires(!std::is_const_v<T>)
  {
    return {data, rows_per_sample, first};
  }
};

// Read-only rows whose element type follows the other arguments (no deduction from it).
template <class T>
using InRows = TokenRows<const std::type_identity_t<T>>;

}  // namespace sfm
