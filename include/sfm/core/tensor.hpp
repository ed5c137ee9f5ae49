// Shapes, non-owning strided views and owning contiguous tensors.
//
// The model works on flat spans; these types carry a shape alongside the data where one is needed
// (file I/O, tests, reshaping inputs). TensorView<T> points at memory owned elsewhere; Tensor<T>
// owns a zero-initialised std::vector<T> in C (row-major) order. Shape errors raise sfm::Error.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sfm/core/error.hpp"

namespace sfm {

using Shape = std::vector<int64_t>;

// "[2, 3, 4]", for messages.
inline std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

// The number of elements; raises Error for a negative dimension or a count past int64.
inline int64_t numel(const Shape& shape) {
  bool empty = false;
  for (int64_t dim : shape) {
    SFM_CHECK(dim >= 0, "negative dimension in shape ", shape_string(shape));
    empty = empty || dim == 0;
  }
  if (empty) return 0;
  int64_t count = 1;
  for (int64_t dim : shape) {
    SFM_CHECK(count <= std::numeric_limits<int64_t>::max() / dim, "shape ", shape_string(shape),
              " has more elements than int64 can count");
    count *= dim;
  }
  return count;
}

// Element strides of a C-order (row-major) array of `shape`.
inline Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    SFM_CHECK(shape[i] >= 0, "negative dimension in shape ", shape_string(shape));
    strides[i] = stride;
    const int64_t extent = shape[i] > 0 ? shape[i] : 1;
    SFM_CHECK(stride <= std::numeric_limits<int64_t>::max() / extent, "strides of shape ", shape_string(shape),
              " overflow int64");
    stride *= extent;
  }
  return strides;
}

// A view of memory owned elsewhere: element (i0, i1, ...) is data[i0*strides[0] + i1*strides[1] ...].
template <class T>
struct TensorView {
  T* data = nullptr;
  Shape shape;
  Shape strides;

  TensorView() = default;
  TensorView(T* data_, Shape shape_) : data(data_), shape(std::move(shape_)), strides(contiguous_strides(shape)) {}
  TensorView(T* data_, Shape shape_, Shape strides_)
      : data(data_), shape(std::move(shape_)), strides(std::move(strides_)) {
    SFM_CHECK(strides.size() == shape.size(), "view of shape ", shape_string(shape), " given ",
              strides.size(), " strides");
    sfm::numel(shape);
  }
  // A view of const elements from a view of mutable ones.
  template <class U>
    requires std::is_same_v<const U, T> && (!std::is_same_v<U, T>)
  TensorView(const TensorView<U>& other) : data(other.data), shape(other.shape), strides(other.strides) {}

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const { return sfm::numel(shape); }
  bool is_contiguous() const { return strides == contiguous_strides(shape); }

  // The element at the given indices; raises Error for a wrong index count or an index out of range.
  template <class... Index>
    requires(std::is_integral_v<Index> && ...)
  T& operator()(Index... indices) const {
    SFM_CHECK(sizeof...(Index) == shape.size(), "indexing a rank-", shape.size(), " view with ",
              sizeof...(Index), " indices");
    const int64_t index[] = {static_cast<int64_t>(indices)..., 0};
    int64_t offset = 0;
    for (size_t axis = 0; axis < sizeof...(Index); ++axis) {
      SFM_CHECK(index[axis] >= 0 && index[axis] < shape[axis], "index ", index[axis], " out of range on axis ",
                axis, " of shape ", shape_string(shape));
      offset += index[axis] * strides[axis];
    }
    return data[offset];
  }

  // All elements as one span; raises Error unless the view is contiguous in C order.
  std::span<T> span() const {
    SFM_CHECK(is_contiguous(), "span() of a non-contiguous view of shape ", shape_string(shape));
    return {data, static_cast<size_t>(numel())};
  }
};

// An owning, contiguous, C-order tensor. (bool is excluded: std::vector<bool> has no data(); use uint8_t.)
template <class T>
class Tensor {
  static_assert(!std::is_same_v<T, bool>, "Tensor<bool> is not supported; use uint8_t");

 public:
  Tensor() = default;
  explicit Tensor(Shape shape) : shape_(std::move(shape)), values_(static_cast<size_t>(sfm::numel(shape_))) {}
  Tensor(Shape shape, std::vector<T> values) : shape_(std::move(shape)), values_(std::move(values)) {
    SFM_CHECK(static_cast<int64_t>(values_.size()) == sfm::numel(shape_), "tensor of shape ",
              shape_string(shape_), " given ", values_.size(), " values");
  }

  T* data() { return values_.data(); }
  const T* data() const { return values_.data(); }
  size_t size() const { return values_.size(); }
  const Shape& shape() const { return shape_; }
  std::span<T> span() { return values_; }
  std::span<const T> span() const { return values_; }
  TensorView<T> view() { return {values_.data(), shape_}; }
  TensorView<const T> view() const { return {values_.data(), shape_}; }

  // Gives the same elements a new shape with the same element count.
  void reshape(Shape shape) {
    SFM_CHECK(sfm::numel(shape) == static_cast<int64_t>(values_.size()), "cannot reshape ",
              shape_string(shape_), " to ", shape_string(shape));
    shape_ = std::move(shape);
  }

 private:
  Shape shape_;
  std::vector<T> values_;
};

}  // namespace sfm
