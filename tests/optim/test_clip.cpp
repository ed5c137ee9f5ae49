// optim/clip.hpp against torch.nn.utils.clip_grad_norm_'s rule, worked out by hand:
// coefficient = min(1, max_norm / (‖g‖₂ + 1e-6)), 1 when clipping is off; the squared norm is
// accumulated in double.
#include <vector>

#include "sfm/optim/clip.hpp"
#include "sfm_test.hpp"

TEST_CASE("squared_norm sums squares in double") {
  const std::vector<float> pythagoras{3.0f, -4.0f};
  CHECK(sfm::squared_norm(pythagoras) == 25.0);
  CHECK(sfm::squared_norm(std::vector<float>{}) == 0.0);
  // 4096² = 2²⁴: a float accumulator cannot add the 1 (its spacing there is 2), double keeps it.
  const std::vector<float> wide{4096.0f, 1.0f};
  CHECK(sfm::squared_norm(wide) == 16777217.0);
}

TEST_CASE("clip_coefficient: min(1, max_norm / (norm + 1e-6)), 1 when clipping is off") {
  CHECK(sfm::clip_coefficient(10.0, 1.0) == Approx(1.0 / (10.0 + 1e-6)).epsilon(1e-15));
  CHECK(sfm::clip_coefficient(4.0, 2.0) == Approx(2.0 / (4.0 + 1e-6)).epsilon(1e-15));
  // A norm below max_norm is left alone (the ratio would exceed 1), also a zero norm.
  CHECK(sfm::clip_coefficient(0.5, 1.0) == 1.0);
  CHECK(sfm::clip_coefficient(0.0, 1.0) == 1.0);
  // Exactly at max_norm the 1e-6 makes it just under 1, as in torch.
  CHECK(sfm::clip_coefficient(1.0, 1.0) < 1.0);
  CHECK(sfm::clip_coefficient(1.0, 1.0) == Approx(1.0 / (1.0 + 1e-6)).epsilon(1e-15));
  // max_norm <= 0 turns clipping off.
  CHECK(sfm::clip_coefficient(1e6, 0.0) == 1.0);
  CHECK(sfm::clip_coefficient(1e6, -1.0) == 1.0);
}
