// Tests of sfm/core/tensor.hpp: numel, views, owning tensors.
#include "sfm/core/tensor.hpp"

#include <numeric>
#include <vector>

#include "core_test_util.hpp"

using sfm::test::error_message;

TEST_CASE("numel and strides", "[tensor]") {
  CHECK(sfm::numel({}) == 1);
  CHECK(sfm::numel({2, 3, 4}) == 24);
  CHECK(sfm::numel({5, 0, 7}) == 0);
  CHECK(sfm::numel({1LL << 40, 1LL << 40, 0}) == 0);
  CHECK(sfm::contiguous_strides({2, 3, 4}) == sfm::Shape{12, 4, 1});
  CHECK(sfm::contiguous_strides({}) == sfm::Shape{});
  CHECK(sfm::shape_string({2, 3}) == "[2, 3]");

  const auto negative = error_message([] { sfm::numel({2, -1}); });
  REQUIRE(negative);
  CHECK(sfm::test::contains(*negative, "[2, -1]"));
  CHECK(error_message([] { sfm::numel({1LL << 32, 1LL << 32}); }));
  CHECK(error_message([] { sfm::contiguous_strides({3, -2}); }));
}

TEST_CASE("TensorView indexes with strides and checks its indices", "[tensor]") {
  std::vector<int> values(24);
  std::iota(values.begin(), values.end(), 0);
  const sfm::TensorView<int> view(values.data(), {2, 3, 4});
  CHECK(view.rank() == 3);
  CHECK(view.numel() == 24);
  CHECK(view.is_contiguous());
  CHECK(view(1, 2, 3) == 23);
  CHECK(view(1, 0, 2) == 14);
  view(0, 1, 1) = -5;
  CHECK(values[5] == -5);
  CHECK(view.span().size() == 24);

  CHECK(error_message([&] { view(2, 0, 0); }));
  CHECK(error_message([&] { view(0, -1, 0); }));
  CHECK(error_message([&] { view(0, 0); }));

  // The transpose of the last two axes, as a strided view: not contiguous.
  const sfm::TensorView<int> transposed(values.data(), {2, 4, 3}, {12, 1, 4});
  CHECK(transposed(1, 3, 2) == values[12 + 3 + 8]);
  CHECK(!transposed.is_contiguous());
  CHECK(error_message([&] { transposed.span(); }));
  CHECK(error_message([&] { sfm::TensorView<int>(values.data(), {2, 3}, {1}); }));

  const sfm::TensorView<const int> read_only = view;
  CHECK(read_only(1, 2, 3) == 23);
}

TEST_CASE("Tensor owns zeroed storage and reshapes", "[tensor]") {
  sfm::Tensor<float> tensor({2, 3});
  CHECK(tensor.size() == 6);
  CHECK(tensor.shape() == sfm::Shape{2, 3});
  for (float v : tensor.span()) CHECK(v == 0.0f);
  tensor.span()[4] = 7.0f;
  CHECK(tensor.view()(1, 1) == 7.0f);
  tensor.reshape({3, 2});
  CHECK(tensor.view()(2, 0) == 7.0f);
  CHECK(tensor.data()[4] == 7.0f);
  CHECK(error_message([&] { tensor.reshape({4, 2}); }));
  CHECK(tensor.shape() == sfm::Shape{3, 2});

  const sfm::Tensor<int> filled({3}, {1, 2, 3});
  CHECK(filled.view()(2) == 3);
  CHECK(error_message([] { sfm::Tensor<int>({2, 2}, {1, 2, 3}); }));
  CHECK(error_message([] { sfm::Tensor<int>(sfm::Shape{-1}); }));

  const sfm::Tensor<double> scalar(sfm::Shape{});
  CHECK(scalar.size() == 1);
  CHECK(sfm::Tensor<double>(sfm::Shape{0, 5}).size() == 0);
}
