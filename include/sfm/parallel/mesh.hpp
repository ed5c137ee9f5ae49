// Mesh: a world of dp × cp ranks for data parallelism (dp) combined with context parallelism (cp).
//
// World rank = dp_index·cp + cp_index: the cp ranks of one data-parallel replica are neighbours
// (on one node, where the attention's K/V ring runs). Two sub-communicators, split from the world:
//   context_parallel()  the cp ranks with this rank's dp_index: they run the same samples (same
//                       volumes, same mask noise) and split each sample's tokens (VitMae with a
//                       ContextParallelGroup on this communicator);
//   data_parallel()     the dp ranks with this rank's cp_index: each replica trains its own slice of
//                       the global batch (samples [first_sample, first_sample + local_batch)).
//
// Reductions, with sfm's loss convention (every forward divides by the hidden-token count of the
// whole global batch, so each rank's loss and gradients are its share of the global mean):
//   - the loss and the hidden count: VitMae::forward already sums the loss over cp, and the mask plan
//     each rank holds is the whole sample's, so the count needs no reduction; global_loss() sums the
//     cp groups' losses over dp;
//   - gradients: "summed over cp, averaged over dp" is, with that normalizer, a plain sum over all
//     dp × cp ranks; a ZeroOptimizer on world() does it in one reduce-scatter (or all-reduce) per
//     bucket, and shards parameters, gradients and AdamW state over the whole mesh. No separate cp
//     and dp steps: the sum over world ranks is the sum over cp followed by the sum over dp.
#pragma once

#include <cstdint>
#include <span>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/error.hpp"

namespace sfm {

template <Communicator Comm>
class Mesh {
 public:
  // Splits `world` (which outlives the mesh) into dp = world.size() / cp replicas of cp ranks.
  // Collective: every world rank constructs its mesh with the same cp.
  Mesh(Comm& world, int cp)
      : world_(&world), cp_(check_cp(world, cp)), dp_(world.size() / cp),
        dp_comm_(world.split(world.rank() % cp, world.rank() / cp)),
        cp_comm_(world.split(world.rank() / cp, world.rank() % cp)) {}

  int dp() const { return dp_; }
  int cp() const { return cp_; }
  int dp_index() const { return world_->rank() / cp_; }
  int cp_index() const { return world_->rank() % cp_; }

  Comm& world() { return *world_; }
  Comm& data_parallel() { return dp_comm_; }
  Comm& context_parallel() { return cp_comm_; }

  // The samples of a global batch that this rank's replica trains.
  int64_t local_batch(int64_t global_batch) const {
    SFM_CHECK(global_batch % dp_ == 0, "Mesh: global batch ", global_batch, " does not split over dp = ", dp_);
    return global_batch / dp_;
  }
  int64_t first_sample(int64_t global_batch) const { return dp_index() * local_batch(global_batch); }

  // The loss of the global batch from the loss VitMae::forward returned on this rank (its replica's
  // share, already summed over cp): the sum over dp. Collective over data_parallel().
  double global_loss(double replica_loss) {
    dp_comm_.all_reduce(std::span<double>(&replica_loss, 1));
    return replica_loss;
  }

 private:
  static int check_cp(const Comm& world, int cp) {
    SFM_CHECK(cp >= 1 && world.size() % cp == 0, "Mesh: cp = ", cp, " does not divide the world of ", world.size(),
              " ranks");
    return cp;
  }

  Comm* world_;
  int cp_, dp_;
  Comm dp_comm_, cp_comm_;
};

}  // namespace sfm
