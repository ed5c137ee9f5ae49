// PrefetchLoader: one rank's micro-batches of crops, made ahead of use by reader threads.
//
// The plan fixes which global samples this rank sees: in step s, micro-batch m covers the samples
// [rank_offset + m·micro, rank_offset + (m + 1)·micro) of that step, where rank_offset is the dp
// rank's slice of the global batch (the ranks of one context-parallel group share a dp rank, hence
// the samples). Reader threads take samples in order and write them straight into a ring of
// `prefetch` micro-batch slots; a slot is refilled only after the trainer has moved past it. Since
// each sample is a pure function of (seed, step, index) (data/sampler.hpp), the batches are the same
// for any thread count. next() reports how long the trainer waited for data, and the reads the
// sampler skipped for the batch (data.on_error skip), which are as much a function of the batch's
// position as its crops.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/data/sampler.hpp"

namespace sfm {

struct LoaderPlan {
  int64_t first_step = 0, end_step = 0;  // steps [first_step, end_step)
  int64_t per_rank = 1;                  // samples of this rank per step
  int64_t micro = 1;                     // samples per micro-batch
  int64_t rank_offset = 0;               // index of this rank's first sample within a step

  int64_t micro_batches() const { return per_rank / micro; }
  int64_t total_batches() const { return (end_step - first_step) * micro_batches(); }
};

struct LoadedBatch {
  int64_t step = 0;
  int64_t first_sample = 0;  // index within the step of the batch's first sample
  std::span<const float> crops;  // [micro, Z, Y, X]
  double wait_s = 0;         // time next() waited for it
  std::vector<std::string> skipped;  // errors of the reads skipped for its samples, in sample order
};

class PrefetchLoader {
 public:
  PrefetchLoader(std::shared_ptr<const CropSampler> sampler, LoaderPlan plan, int threads, int prefetch)
      : sampler_(std::move(sampler)), plan_(plan), prefetch_(prefetch) {
    SFM_CHECK(plan_.micro >= 1 && plan_.per_rank % plan_.micro == 0, "loader: micro-batch ", plan_.micro,
              " does not divide the rank's ", plan_.per_rank, " samples per step");
    SFM_CHECK(threads >= 1, "data.threads must be at least 1, got ", threads);
    SFM_CHECK(prefetch >= 1, "data.prefetch must be at least 1, got ", prefetch);
    voxels_ = sampler_->crop_voxels();
    slots_.assign(size_t(prefetch_ * plan_.micro * voxels_), 0.0f);
    done_.assign(size_t(prefetch_), 0);
    skipped_.resize(size_t(prefetch_ * plan_.micro));
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;
  ~PrefetchLoader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    filled_.notify_all();
    freed_.notify_all();
    for (auto& w : workers_) w.join();
  }

  const LoaderPlan& plan() const { return plan_; }

  // The next micro-batch, valid until the following call (which hands its slot back).
  LoadedBatch next() {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    if (holding_) {
      done_[slot(consumed_)] = 0;
      ++consumed_;
      holding_ = false;
      freed_.notify_all();
    }
    SFM_CHECK(consumed_ < plan_.total_batches(), "loader: all ", plan_.total_batches(), " planned batches consumed");
    filled_.wait(lock, [&] { return error_ || done_[slot(consumed_)] == plan_.micro; });
    if (error_) std::rethrow_exception(error_);
    holding_ = true;
    const int64_t per_step = plan_.micro_batches();
    LoadedBatch b;
    b.step = plan_.first_step + consumed_ / per_step;
    b.first_sample = plan_.rank_offset + (consumed_ % per_step) * plan_.micro;
    b.crops = std::span<const float>(slots_).subspan(size_t(slot(consumed_)) * size_t(plan_.micro * voxels_),
                                                     size_t(plan_.micro * voxels_));
    for (int64_t i = 0; i < plan_.micro; ++i) {
      const auto& errors = skipped_[slot(consumed_) * size_t(plan_.micro) + size_t(i)];
      b.skipped.insert(b.skipped.end(), errors.begin(), errors.end());
    }
    b.wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return b;
  }

 private:
  size_t slot(int64_t batch) const { return size_t(batch % prefetch_); }

  void work() {
    const int64_t total = plan_.total_batches() * plan_.micro;
    while (true) {
      int64_t item;
      {
        std::unique_lock lock(mutex_);
        freed_.wait(lock, [&] { return stop_ || next_item_ >= total || next_item_ / plan_.micro < consumed_ + prefetch_; });
        if (stop_ || next_item_ >= total) return;
        item = next_item_++;
      }
      const int64_t batch = item / plan_.micro, within = item % plan_.micro, per_step = plan_.micro_batches();
      const int64_t step = plan_.first_step + batch / per_step;
      const int64_t sample = plan_.rank_offset + (batch % per_step) * plan_.micro + within;
      try {
        const size_t at = slot(batch) * size_t(plan_.micro) + size_t(within);
        float* out = slots_.data() + at * size_t(voxels_);
        skipped_[at] = sampler_->sample(uint64_t(step), uint64_t(sample), std::span<float>(out, size_t(voxels_)));
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
        stop_ = true;
        filled_.notify_all();
        freed_.notify_all();
        return;
      }
      std::lock_guard lock(mutex_);
      if (++done_[slot(batch)] == plan_.micro) filled_.notify_all();
    }
  }

  std::shared_ptr<const CropSampler> sampler_;
  LoaderPlan plan_;
  int64_t prefetch_;
  int64_t voxels_ = 0;
  std::vector<float> slots_;
  std::vector<int64_t> done_;  // samples finished per slot
  std::vector<std::vector<std::string>> skipped_;  // per sample of each slot: the errors its reads skipped
  std::mutex mutex_;
  std::condition_variable filled_, freed_;
  int64_t next_item_ = 0, consumed_ = 0;
  bool holding_ = false, stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace sfm
