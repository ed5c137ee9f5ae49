// Backend-neutral views that kernels take instead of plain pointers where layout matters:
// HeadsView (attention heads inside packed projections; AttentionShape and ValidRows describe them)
// and TokenRows (token rows of a batch, optionally skipping the leading cls row). Non-owning; the
// memory belongs to the backend.
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

  HeadsView(T* data_, int64_t batch_stride_, int64_t head_stride_, int64_t token_stride_)
      : data(data_), batch_stride(batch_stride_), head_stride(head_stride_), token_stride(token_stride_) {}
  // A writable view converts to a read-only one.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  HeadsView(const HeadsView<U>& other)
      : HeadsView(other.data, other.batch_stride, other.head_stride, other.token_stride) {}

  T* at(int64_t b, int64_t h) const { return data + b * batch_stride + h * head_stride; }
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

// The rows of a padded attention block that hold tokens: queries [0, queries), keys [0, keys) of
// an AttentionShape's q_len and k_len rows. Kernels never read the padding rows.
struct ValidRows {
  int64_t queries;
  int64_t keys;
};

// Rows of width `dim` in a [batch, rows_per_sample, dim] buffer, starting at row `first` of each sample.
template <class T>
struct TokenRows {
  T* data;
  int64_t rows_per_sample;
  int64_t first;

  TokenRows(T* data_, int64_t rows_per_sample_, int64_t first_ = 0)
      : data(data_), rows_per_sample(rows_per_sample_), first(first_) {}
  // Writable rows convert to read-only ones.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  TokenRows(const TokenRows<U>& other) : TokenRows(other.data, other.rows_per_sample, other.first) {}

  T* row(int64_t b, int64_t r, int64_t dim) const { return data + (b * rows_per_sample + first + r) * dim; }
};

// Read-only rows whose element type follows the other arguments (no deduction from it).
template <class T>
using InRows = TokenRows<const std::type_identity_t<T>>;

}  // namespace sfm
