// optim/lr_schedule.hpp against values worked out by hand from the pinned formula (linear warmup to
// base_lr, half-cycle cosine to min_lr, min_lr past the end) and MAE's batch scaling rule. That the
// trainer applies and logs this schedule is checked in train/test_trainer.cpp.
#include <cmath>

#include "sfm/optim/lr_schedule.hpp"
#include "sfm_test.hpp"

namespace {

// Relative tolerance for values whose exact form involves cos(): a few ulps of double.
constexpr double kTight = 1e-14;

}  // namespace

TEST_CASE("warmup rises linearly to base_lr, reaching it on the last warmup step") {
  // base 1, 4 warmup steps: step s gives (s + 1) / 4.
  const sfm::LrSchedule s{1.0, 0.1, 4, 12};
  CHECK(s.at(0) == Approx(0.25).epsilon(kTight));
  CHECK(s.at(1) == Approx(0.50).epsilon(kTight));
  CHECK(s.at(2) == Approx(0.75).epsilon(kTight));
  CHECK(s.at(3) == Approx(1.00).epsilon(kTight));
  // Warmup ignores min_lr: the first step is below it here (base 1, min 0.5, 4 steps → 0.25).
  CHECK(sfm::LrSchedule{1.0, 0.5, 4, 12}.at(0) == Approx(0.25).epsilon(kTight));
}

TEST_CASE("after warmup the cosine falls from base_lr to min_lr and stays there") {
  // base 1, min 0.1, warmup 4, total 12: 8 cosine steps, progress (s - 4) / 8,
  // lr = 0.1 + 0.9 · ½ · (1 + cos(π · progress)).
  const sfm::LrSchedule s{1.0, 0.1, 4, 12};
  const double half_sqrt2 = std::sqrt(2.0) / 2;
  CHECK(s.at(4) == Approx(1.0).epsilon(kTight));                             // progress 0
  CHECK(s.at(6) == Approx(0.1 + 0.45 * (1 + half_sqrt2)).epsilon(kTight));   // progress ¼
  CHECK(s.at(8) == Approx(0.55).epsilon(kTight));                            // progress ½
  CHECK(s.at(10) == Approx(0.1 + 0.45 * (1 - half_sqrt2)).epsilon(kTight));  // progress ¾
  CHECK(s.at(12) == Approx(0.1).epsilon(kTight));                            // progress 1
  // Past the end the cosine would rise again (progress 1.5: 0.55, progress 2: back to 1); the
  // schedule holds min_lr.
  CHECK(s.at(16) == Approx(0.1).epsilon(kTight));
  CHECK(s.at(20) == Approx(0.1).epsilon(kTight));
  CHECK(s.at(1000) == Approx(0.1).epsilon(kTight));
  // Between the pinned points the lr never rises after warmup.
  for (int64_t step = 4; step < 30; ++step) CHECK(s.at(step + 1) <= s.at(step));
}

TEST_CASE("edge cases: no warmup, warmup as long as the run") {
  // No warmup: step 0 is the top of the cosine.
  const sfm::LrSchedule none{2.0, 0.0, 0, 4};
  CHECK(none.at(0) == Approx(2.0).epsilon(kTight));
  CHECK(none.at(2) == Approx(1.0).epsilon(kTight));  // progress ½
  CHECK(none.at(4) == Approx(0.0).margin(1e-15));
  // total == warmup: the cosine has length max(1, 0) = 1, so the step after warmup is at base_lr
  // and the next at min_lr (no division by zero).
  const sfm::LrSchedule all{1.0, 0.2, 3, 3};
  CHECK(all.at(2) == Approx(1.0).epsilon(kTight));
  CHECK(all.at(3) == Approx(1.0).epsilon(kTight));
  CHECK(all.at(4) == Approx(0.2).epsilon(kTight));
}

TEST_CASE("scaled_lr: MAE's linear scaling rule base_lr · global_batch / 256") {
  CHECK(sfm::scaled_lr(1.5e-4, 256) == Approx(1.5e-4).epsilon(kTight));
  CHECK(sfm::scaled_lr(1.5e-4, 4096) == Approx(2.4e-3).epsilon(kTight));  // MAE's pretraining recipe
  CHECK(sfm::scaled_lr(0.05, 8) == Approx(0.0015625).epsilon(kTight));
}
