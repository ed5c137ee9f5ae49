// ZeroOptimizer<ZeroStage<k>, Comm, Backend, Precision>: sharded data-parallel AdamW (ZeRO stages
// 0–3) as a ParamStore.
//
// The model asks this store for each parameter group's parameters and gradient buffer; the store
// decides where they live and reduces gradients as soon as a group's backward is done, overlapping
// communication with the rest of the backward (async collectives). Buckets are the parameter
// groups, padded to a multiple of P (parallel/shard_layout.hpp); rank r owns chunk r of each.
//
//   stage 0  parameters, gradients and AdamW state replicated; gradients all-reduced per bucket.
//   stage 1  AdamW state sharded; gradients reduce-scattered per bucket from a full-size
//            gradient buffer; updated chunks all-gathered after the step.
//   stage 2  as 1, but the full-size gradient buffer is replaced by two bucket-sized slots: only
//            the owned gradient shard persists.
//   stage 3  as 2, and parameters sharded too: each group is all-gathered into a slot just before
//            its forward and again before its backward, and dropped after.
//
// Every stage reduces each micro-batch's gradients and adds them to an accumulator in the same
// order, and the global gradient norm is summed from per-chunk partial sums in rank order. With a
// communicator whose reductions sum in rank order (ThreadComm), all stages therefore produce the
// same bits, which the tests check.
//
// Precision (kernels/precision.hpp): Fp32 hands the model the fp32 parameters themselves. Bf16Mixed
// keeps fp32 master weights and moments where the stage puts them (stage 0 whole, stages 1–3 only
// this rank's chunk) and a bf16 compute copy the model reads (stages 0–2 whole, stage 3 the chunk);
// AdamW writes the compute copy as it updates the master, and every parameter gather (stages 1–2
// after the step, stage 3 per group) moves bf16: half the fp32 bytes. Gradients accumulate,
// reduce and clip in fp32 at every precision, so the stages still agree bit for bit.
//
// Backend (kernels/backend.hpp): where the buffers live and which kernels touch them. Cpu with a
// host-memory communicator (Serial, Thread, MPI); Cuda with NcclComm, whose collectives run on their own stream:
// order_after_compute() makes each collective start after the kernels that wrote its input, and
// finish_collective() makes the kernels that read its output wait for it (kernels/cuda/
// collective_order.cuh). The bookkeeping (slots, pending reductions, the layout) stays on the host.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/error.hpp"
#include "sfm/kernels/backend.hpp"
#include "sfm/kernels/precision.hpp"
#include "sfm/model/init.hpp"
#include "sfm/model/param_store.hpp"
#include "sfm/optim/adamw.hpp"
#include "sfm/optim/clip.hpp"
#include "sfm/parallel/shard_layout.hpp"
#include "sfm/parallel/zero_stage.hpp"

namespace sfm {

// Bytes one rank holds (on either backend).
struct ZeroMemory {
  int64_t parameters = 0;    // fp32 parameters (master weights under Bf16Mixed): full, or the shard
  int64_t compute_copy = 0;  // Bf16Mixed: the bf16 copy the model reads (0 under Fp32)
  int64_t gradients = 0;     // the fp32 gradient accumulator (full in stage 0, the shard otherwise)
  int64_t optimizer = 0;     // AdamW moments
  int64_t buffers = 0;       // per-micro-batch gradient buffer or slots, parameter gather slots

  int64_t total() const { return parameters + compute_copy + gradients + optimizer + buffers; }
};

// The unsharded training state, in the flat (unpadded) layout: independent of the world size.
struct FullOptimizerState {
  std::vector<float> params, exp_avg, exp_avg_sq;
  int64_t steps = 0;
};

struct ZeroOptions {
  AdamWConfig adamw{};
  bool overlap = true;  // false: wait for each bucket's reduction right after launching it
};

template <class Stage, Communicator Comm, KernelBackend Backend, Precision Prec = Fp32>
  requires BackendOrders<Backend, Comm> && ComputesIn<Backend, typename Prec::Compute>
class ZeroOptimizer final : public ParamStore<typename Prec::Compute> {
  static constexpr int stage = Stage::value;
  using T = typename Prec::Compute;  // what the model reads: float, or bf16 under Bf16Mixed
  // Bf16Mixed: the compute copy is an array of its own beside the fp32 master.
  static constexpr bool separate_copy = !std::is_same_v<T, float>;
  // The master weights cover whole buckets (stage 0; and stages 1–2 in fp32, where they are also
  // what is gathered), or only this rank's chunk of each.
  static constexpr bool full_master = stage == 0 || (stage < 3 && !separate_copy);
  using Clock = std::chrono::steady_clock;
  template <class E>
  using Array = typename Backend::template Array<E>;

 public:
  ZeroOptimizer(const ParamTable& table, Comm& comm, ZeroOptions options = {})
      : table_(&table), comm_(&comm), options_(options), layout_(table, comm.size(), comm.rank()) {
    const int64_t full = layout_.padded_size(), shard = layout_.shard_size();
    master_.assign(size_t(full_master ? full : shard), 0.0f);
    if constexpr (separate_copy) compute_.assign(size_t(stage < 3 ? full : shard), element_from_float<T>(0.0f));
    accumulated_.assign(size_t(stage == 0 ? full : shard), 0.0f);
    int64_t largest = 0;
    for (const ShardBucket& b : layout_.buckets()) largest = std::max(largest, b.padded_size);
    if (stage <= 1)
      full_grads_.assign(size_t(full), 0.0f);
    else
      grad_slots_ = make_slots<float>(largest);
    if (stage == 3) param_slots_ = make_slots<T>(largest);
    for (const ShardBucket& b : layout_.buckets())
      if (stage == 0)
        adamw_.emplace_back(table, options_.adamw, b.begin, b.end);
      else
        adamw_.emplace_back(table, options_.adamw, b.chunk_begin(rank()), b.chunk_end(rank()));
    group_slot_.assign(layout_.buckets().size(), -1);
  }

  int rank() const { return comm_->rank(); }
  const ShardLayout& layout() const { return layout_; }

  // DESIGN.md initialisation of the parameters this rank stores (equal to the single-rank init).
  void init_params(uint64_t seed) {
    std::vector<float> host;
    for_each_stored_range([&](int64_t begin, int64_t end) {
      host.resize(size_t(end - begin));
      init_param_range(*table_, seed, begin, end, host.data());
      return host.data();
    });
  }

  // ParamStore --------------------------------------------------------------------------------
  GroupSpan<T> acquire_params(int group) override {
    const ShardBucket& b = bucket(group);
    if constexpr (stage < 3) {
      return {full_compute(b), b.begin};
    } else {
      const int s = take_slot(param_slots_, group, /*complete_pending=*/false);
      T* full = param_slots_[size_t(s)].values.data();
      copy_elements(Backend{}, full + rank() * b.chunk, owned_compute(b), b.chunk);
      order_after_compute(Backend{}, *comm_);
      auto gathered = comm_->all_gather_async(std::span<const T>(full + rank() * b.chunk, size_t(b.chunk)),
                                              std::span<T>(full, size_t(b.padded_size)));
      finish_collective(Backend{}, gathered);
      return {full, b.begin};
    }
  }

  void release_params(int group) override {
    if constexpr (stage == 3) release_slot(param_slots_, group);
  }

  GroupSpan<float> acquire_grads(int group) override {
    const ShardBucket& b = bucket(group);
    float* buffer;
    if constexpr (stage <= 1) {
      complete_pending(group);  // the previous micro-batch's reduction of this bucket reads the buffer
      buffer = full_grads_.data() + b.padded_offset;
    } else {
      const int s = take_slot(grad_slots_, group, /*complete_pending=*/true);
      group_slot_[size_t(group)] = s;
      buffer = grad_slots_[size_t(s)].values.data();
    }
    fill_zero(Backend{}, buffer, b.padded_size);
    return {buffer, b.begin};
  }

  void grads_ready(int group) override {
    const ShardBucket& b = bucket(group);
    const int slot = stage <= 1 ? -1 : group_slot_[size_t(group)];
    const std::span<float> full(gradient_buffer(b, slot), size_t(b.padded_size));
    launch_times_.push_back(seconds_since_start());
    order_after_compute(Backend{}, *comm_);  // the backward's kernels wrote `full`
    if constexpr (stage == 0)
      pending_.push_back({group, slot, comm_->all_reduce_async(full, ReduceOp::sum)});
    else
      pending_.push_back({group, slot, comm_->reduce_scatter_async(std::span<const float>(full),
                                                                   full.subspan(size_t(rank() * b.chunk), size_t(b.chunk)))});
    if (!options_.overlap) complete_pending(group);
  }

  // Optimizer step --------------------------------------------------------------------------
  // Completes the reductions, clips by the global gradient norm (max_norm <= 0: no clipping),
  // applies AdamW to the owned parameters (writing their compute copy under Bf16Mixed), all-gathers
  // the compute copy (stages 1–2) and clears the accumulated gradients. Returns the global norm before clipping. A non-finite norm (the same on
  // every rank) applies nothing: parameters, moments and steps() stay as they were, the gradients
  // are dropped, and the caller decides whether to go on.
  double step(double lr, double max_norm) {
    while (!pending_.empty()) complete_oldest();
    const double norm = std::sqrt(global_squared_norm());
    if (!std::isfinite(norm)) {
      discard_grads();
      return norm;
    }
    const double coef = clip_coefficient(norm, max_norm);
    const auto& buckets = layout_.buckets();
    for (size_t k = 0; k < buckets.size(); ++k) {
      const ShardBucket& b = buckets[k];
      const auto n = size_t(owned_end(b) - owned_begin(b));
      const float* grads = accumulated_.data() + (stage == 0 ? b.padded_offset : b.shard_offset);
      const std::span<float> master(owned_master(b), n);
      if constexpr (separate_copy)
        adamw_[k].step(master, std::span<const float>(grads, n), lr, coef, std::span<T>(owned_compute(b), n));
      else
        adamw_[k].step(master, std::span<const float>(grads, n), lr, coef);
    }
    if constexpr (stage == 1 || stage == 2) {
      order_after_compute(Backend{}, *comm_);  // AdamW wrote the owned chunks
      std::vector<typename Comm::Handle> gathers;
      for (const ShardBucket& b : buckets) {
        const std::span<T> full(full_compute(b), size_t(b.padded_size));
        gathers.push_back(comm_->all_gather_async(std::span<const T>(full.subspan(size_t(rank() * b.chunk), size_t(b.chunk))), full));
      }
      for (auto& handle : gathers) finish_collective(Backend{}, handle);
    }
    fill_zero(Backend{}, accumulated_.data(), int64_t(accumulated_.size()));
    ++steps_;
    return norm;
  }

  // Drops the accumulated gradients without a step (e.g. of a micro-batch whose loss was not finite).
  void discard_grads() {
    while (!pending_.empty()) complete_oldest();
    fill_zero(Backend{}, accumulated_.data(), int64_t(accumulated_.size()));
  }

  int64_t steps() const { return steps_; }

  ZeroMemory memory() const {
    auto bytes = [](const auto& array) { return int64_t(array.size() * sizeof(array.data()[0])); };
    ZeroMemory m;
    m.parameters = bytes(master_);
    if constexpr (separate_copy) m.compute_copy = bytes(compute_);
    m.gradients = bytes(accumulated_);
    for (const auto& opt : adamw_) m.optimizer += opt.state_bytes();
    m.buffers = bytes(full_grads_);
    for (const auto& s : grad_slots_) m.buffers += bytes(s.values);
    for (const auto& s : param_slots_) m.buffers += bytes(s.values);
    return m;
  }

  // Seconds (from construction) at which each bucket reduction was launched since the last
  // clear_timeline(): the evidence that reductions start while the backward is still running.
  const std::vector<double>& launch_times() const { return launch_times_; }
  double seconds_since_start() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  void clear_timeline() { launch_times_.clear(); }

  // Full state (collective for stages ≥ 1: every rank must call it; every rank gets the result).
  FullOptimizerState gather_state() {
    FullOptimizerState state;
    state.steps = steps_;
    state.params = gather_flat([&](const ShardBucket& b, size_t) { return owned_master(b); }, full_master);
    state.exp_avg = gather_flat([&](const ShardBucket&, size_t k) { return adamw_[k].first_moment().data(); }, false);
    state.exp_avg_sq = gather_flat([&](const ShardBucket&, size_t k) { return adamw_[k].second_moment().data(); }, false);
    return state;
  }

  // Loads a full state saved at any world size; this rank keeps what it owns.
  void load_state(const FullOptimizerState& state) {
    const auto n = size_t(table_->size());
    SFM_CHECK(state.params.size() == n && state.exp_avg.size() == n && state.exp_avg_sq.size() == n,
              "optimizer state holds ", state.params.size(), " parameters, the model has ", n);
    for_each_stored_range([&](int64_t begin, int64_t) { return state.params.data() + begin; });
    const auto& buckets = layout_.buckets();
    for (size_t k = 0; k < buckets.size(); ++k) {
      const int64_t begin = owned_begin(buckets[k]);
      const auto m = adamw_[k].first_moment(), v = adamw_[k].second_moment();
      copy_from_host(Backend{}, m.data(), state.exp_avg.data() + begin, int64_t(m.size()));
      copy_from_host(Backend{}, v.data(), state.exp_avg_sq.data() + begin, int64_t(v.size()));
      adamw_[k].set_steps(state.steps);
    }
    steps_ = state.steps;
  }

 private:
  template <class E>
  struct Slot {
    Array<E> values;
    int group;  // -1: free
  };
  struct Pending {
    int group;
    int slot;  // the gradient slot (stages 2–3), -1 for the full buffer
    typename Comm::Handle handle;
  };

  // Two free slots of n elements (Array is move-only on the Cuda backend: no copies of one slot).
  template <class E>
  static std::vector<Slot<E>> make_slots(int64_t n) {
    std::vector<Slot<E>> slots;
    for (int i = 0; i < 2; ++i) slots.push_back(Slot<E>{Array<E>(size_t(n)), -1});
    return slots;
  }

  // Where a bucket's gradients of the current micro-batch live: the full buffer or a slot.
  float* gradient_buffer(const ShardBucket& b, int slot) {
    return slot < 0 ? full_grads_.data() + b.padded_offset : grad_slots_[size_t(slot)].values.data();
  }

  const ShardBucket& bucket(int group) const {
    SFM_CHECK(group >= 0 && size_t(group) < layout_.buckets().size(), "ZeroOptimizer: no parameter group ", group);
    return layout_.buckets()[size_t(group)];
  }

  // The flat range [owned_begin, owned_end) of a bucket whose master weights and moments this rank
  // updates: the whole bucket in stage 0, this rank's chunk (without padding) otherwise.
  int64_t owned_begin(const ShardBucket& b) const { return stage == 0 ? b.begin : b.chunk_begin(rank()); }
  int64_t owned_end(const ShardBucket& b) const { return stage == 0 ? b.end : b.chunk_end(rank()); }

  // Where the master weights of that range start.
  float* owned_master(const ShardBucket& b) {
    if constexpr (stage == 0)
      return master_.data() + b.padded_offset;
    else if constexpr (full_master)
      return master_.data() + b.padded_offset + rank() * b.chunk;
    else
      return master_.data() + b.shard_offset;
  }

  // The compute copy of a whole bucket (stages 0–2) and of the owned range: under Fp32 the master.
  T* full_compute(const ShardBucket& b) {
    if constexpr (separate_copy)
      return compute_.data() + b.padded_offset;
    else
      return master_.data() + b.padded_offset;
  }
  T* owned_compute(const ShardBucket& b) {
    if constexpr (stage == 0)
      return full_compute(b);
    else if constexpr (stage < 3)
      return full_compute(b) + rank() * b.chunk;
    else if constexpr (separate_copy)
      return compute_.data() + b.shard_offset;
    else
      return master_.data() + b.shard_offset;
  }

  // Sets the parameters this rank stores from fp32 values: for each bucket, the range the compute
  // copy holds (whole bucket in stages 0–2, the chunk in stage 3), whose values source(begin, end)
  // returns on the host. Under Fp32 the compute copy is the master; under Bf16Mixed the master
  // takes its part of them and the compute copy all of them, rounded. No collective.
  template <class Source>
  void for_each_stored_range(Source source) {
    std::vector<T> narrow;
    for (const ShardBucket& b : layout_.buckets()) {
      const int64_t begin = stage < 3 ? b.begin : b.chunk_begin(rank()), end = stage < 3 ? b.end : b.chunk_end(rank());
      const float* values = source(begin, end);
      T* compute = stage < 3 ? full_compute(b) : owned_compute(b);
      if constexpr (separate_copy) {
        copy_from_host(Backend{}, owned_master(b), values + (owned_begin(b) - begin), owned_end(b) - owned_begin(b));
        narrow.resize(size_t(end - begin));
        for (size_t i = 0; i < narrow.size(); ++i) narrow[i] = element_from_float<T>(values[i]);
        copy_from_host(Backend{}, compute, narrow.data(), end - begin);
      } else {
        copy_from_host(Backend{}, compute, values, end - begin);
      }
    }
  }

  // A free slot for `group`, completing the oldest pending reductions until one frees up.
  template <class E>
  int take_slot(std::vector<Slot<E>>& slots, int group, bool complete_pending) {
    for (;;) {
      for (size_t s = 0; s < slots.size(); ++s)
        if (slots[s].group < 0) {
          slots[s].group = group;
          return int(s);
        }
      SFM_CHECK(complete_pending && !pending_.empty(), "ZeroOptimizer: more than ", slots.size(),
                " parameter groups held at once");
      complete_oldest();
    }
  }
  template <class E>
  static void release_slot(std::vector<Slot<E>>& slots, int group) {
    for (auto& s : slots)
      if (s.group == group) s.group = -1;
  }

  // Waits for the oldest reduction and adds its result to the accumulator.
  void complete_oldest() {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    finish_collective(Backend{}, p.handle);
    const ShardBucket& b = bucket(p.group);
    const float* full = gradient_buffer(b, p.slot);
    if constexpr (stage == 0)
      add_inplace(Backend{}, accumulated_.data() + b.padded_offset, full, b.padded_size);
    else
      add_inplace(Backend{}, accumulated_.data() + b.shard_offset, full + rank() * b.chunk, b.chunk);
    if (p.slot >= 0) grad_slots_[size_t(p.slot)].group = -1;
  }

  void complete_pending(int group) {
    while (std::any_of(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.group == group; }))
      complete_oldest();
  }

  // Σ g² over all gradients, as Σ_r (partial of chunk r, buckets in order) in rank order, so every
  // stage and world layout sums the same numbers in the same order.
  double global_squared_norm() {
    const auto& buckets = layout_.buckets();
    std::vector<double> partials(size_t(layout_.ranks()), 0.0);
    for (int r = 0; r < layout_.ranks(); ++r) {
      if (stage > 0 && r != rank()) continue;
      double sum = 0;
      for (const ShardBucket& b : buckets) {
        const float* chunk = stage == 0 ? accumulated_.data() + b.padded_offset + r * b.chunk
                                        : accumulated_.data() + b.shard_offset;
        sum = squared_norm(Backend{}, chunk, b.chunk, sum);
      }
      partials[size_t(r)] = sum;
    }
    if constexpr (stage > 0) {  // through backend memory: a device communicator takes device pointers
      Array<double> mine(size_t(1)), all(partials.size());
      copy_from_host(Backend{}, mine.data(), &partials[size_t(rank())], 1);
      order_after_compute(Backend{}, *comm_);
      comm_->all_gather(std::span<const double>(mine.data(), 1), std::span<double>(all.data(), all.size()));
      copy_to_host(Backend{}, partials.data(), all.data(), int64_t(all.size()));
    }
    double total = 0;
    for (double p : partials) total += p;
    return total;
  }

  // The full flat vector of a per-rank quantity (master weights, moments); owned(bucket, k) points
  // at this rank's values of the bucket's owned range. `replicated`: every rank holds the whole
  // buckets of it in master_ (full_master), so nothing needs gathering.
  template <class Owned>
  std::vector<float> gather_flat(Owned owned, bool replicated) {
    std::vector<float> flat(size_t(table_->size()));
    const auto& buckets = layout_.buckets();
    Array<float> mine, full;
    for (size_t k = 0; k < buckets.size(); ++k) {
      const ShardBucket& b = buckets[k];
      if (stage == 0 || replicated) {  // this rank holds the whole bucket
        copy_to_host(Backend{}, flat.data() + b.begin, replicated ? master_.data() + b.padded_offset : owned(b, k),
                     b.end - b.begin);
        continue;
      }
      mine.assign(size_t(b.chunk), 0.0f);
      full.assign(size_t(b.padded_size), 0.0f);
      copy_elements(Backend{}, mine.data(), owned(b, k), b.chunk_end(rank()) - b.chunk_begin(rank()));
      order_after_compute(Backend{}, *comm_);
      comm_->all_gather(std::span<const float>(mine.data(), mine.size()), std::span<float>(full.data(), full.size()));
      copy_to_host(Backend{}, flat.data() + b.begin, full.data(), b.end - b.begin);
    }
    return flat;
  }

  const ParamTable* table_;
  Comm* comm_;
  ZeroOptions options_;
  ShardLayout layout_;
  // Backend memory (host vectors on Cpu, DeviceArray on Cuda):
  Array<float> master_;             // fp32 parameters: padded full (full_master) or this rank's shard
  Array<T> compute_;                // Bf16Mixed: the compute copy, padded full (stages 0–2) or the shard
  Array<float> accumulated_;        // reduced gradients: padded full (stage 0) or the shard
  Array<float> full_grads_;         // stages 0–1: this micro-batch's gradients, padded full
  std::vector<Slot<float>> grad_slots_;  // stages 2–3: bucket-sized gradient buffers
  std::vector<Slot<T>> param_slots_;     // stage 3: gathered parameter groups
  std::vector<int> group_slot_;     // stages 2–3: the gradient slot of each group in flight
  std::vector<AdamW<Backend>> adamw_;  // one per bucket: the whole bucket (stage 0) or this rank's chunk
  std::deque<Pending> pending_;
  std::vector<double> launch_times_;
  Clock::time_point start_ = Clock::now();
  int64_t steps_ = 0;
};

}  // namespace sfm
