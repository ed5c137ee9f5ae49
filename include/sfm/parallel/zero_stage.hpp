// ZeRO stages as types: ZeroStage<k> picks a ZeroOptimizer's stage at compile time; ZeroLevel is
// the stage a config names (parallel.zero), checked once where it enters and turned into its
// ZeroStage<k> by visit().
#pragma once

#include <cstdint>
#include <string_view>

#include "sfm/core/error.hpp"

namespace sfm {

template <int Stage>
struct ZeroStage {
  static_assert(Stage >= 0 && Stage <= 3, "ZeRO stages are 0, 1, 2 and 3");
  static constexpr int value = Stage;
};

class ZeroLevel {
 public:
  template <int Stage>
  constexpr ZeroLevel(ZeroStage<Stage>) : value_(Stage) {}

  // `what` names the setting in the error ("config: parallel.zero").
  static ZeroLevel parse(int64_t stage, std::string_view what) {
    switch (stage) {
      case 0: return ZeroStage<0>{};
      case 1: return ZeroStage<1>{};
      case 2: return ZeroStage<2>{};
      case 3: return ZeroStage<3>{};
    }
    fail(what, ": ZeRO stages are 0, 1, 2 and 3, got ", stage);
  }

  constexpr int value() const { return value_; }

  // f(ZeroStage<value()>{}).
  template <class F>
  decltype(auto) visit(F&& f) const {
    switch (value_) {
      case 0: return f(ZeroStage<0>{});
      case 1: return f(ZeroStage<1>{});
      case 2: return f(ZeroStage<2>{});
      default: return f(ZeroStage<3>{});
    }
  }

  friend constexpr bool operator==(ZeroLevel, ZeroLevel) = default;

 private:
  int value_;
};

}  // namespace sfm
