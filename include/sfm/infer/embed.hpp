// The engine of `sfm embed`: a trained encoder slid over a whole survey, its token features
// stitched into one grid at patch resolution and handed out slab by slab (infer/windows.hpp has
// the geometry; infer/embed_output.hpp writes the slabs as Zarr).
//
// Work is cut into batches of at most `batch` consecutive windows of one row (a batch never spans
// two rows, so a resumed embed, which restarts at a row, forms the same batches). Batches go round
// robin over the ranks, one per rank per round; each rank reads its next round's windows on a
// background thread while it encodes the current ones (each window normalised as training
// normalises a crop), and the round's features are all-gathered. Rank 0 stitches them in window
// order — so the sums, and the output's bits, do not depend on the number of ranks — and hands each
// slab to the sink as soon as no later row reaches it. Cells whose patch footprint holds no live
// trace (MDIO trace mask) are NaN.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>
#include <future>
#include <limits>
#include <span>
#include <vector>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/error.hpp"
#include "sfm/data/normalize.hpp"
#include "sfm/data/volume.hpp"
#include "sfm/infer/windows.hpp"
#include "sfm/model/vit_mae.hpp"

namespace sfm {

struct EmbedOptions {
  int64_t batch = 4;                 // windows per encoder call (per rank)
  CropNormalization normalization;   // per window, as in training
};

// What rank 0 reports after each round.
struct EmbedProgress {
  int64_t windows_done = 0, windows_total = 0;  // of this invocation (a resume counts from its first row)
  int64_t slabs_written = 0, slabs_total = 0;   // of the whole output
  double seconds = 0;                           // since the first round started
};

// Rank 0's sink for a finished slab k: features [depth, gy, gx, D] of planes [k·depth, …).
using SlabSink = std::function<void(int64_t slab, std::vector<float>&& features)>;
using ProgressSink = std::function<void(const EmbedProgress&)>;

namespace embed_detail {

// A batch: `count` consecutive windows of one row from `first`.
struct WindowBatch {
  int64_t row = 0, first = 0, count = 0;
  bool ends_row = false;
};

// The batches of rows [first_row, rows) in order.
inline std::vector<WindowBatch> plan_batches(const WindowPlan& plan, int64_t first_row, int64_t batch) {
  std::vector<WindowBatch> batches;
  const int64_t per_row = plan.row_windows();
  for (int64_t r = first_row; r < plan.rows(); ++r)
    for (int64_t j = 0; j < per_row; j += batch) {
      const int64_t count = std::min(batch, per_row - j);
      batches.push_back({r, r * per_row + j, count, j + count == per_row});
    }
  return batches;
}

// Sets to NaN the cells of `slab` ([depth, gy, gx, D] from plane z0) whose patch footprint has no
// live trace.
inline void mark_dead_cells(std::span<float> slab, int64_t z0, const WindowPlan& plan, const LiveMap& live, int64_t dim) {
  if (live.empty()) return;
  const int64_t depth = int64_t(slab.size()) / (plan.grid[1] * plan.grid[2] * dim);
  for (int64_t z = 0; z < depth; ++z)
    for (int64_t y = 0; y < plan.grid[1]; ++y) {
      if (live.fraction((z0 + z) * plan.patch[0], y * plan.patch[1], plan.patch[0], plan.patch[1]) > 0) continue;
      float* row = slab.data() + ((z * plan.grid[1] + y) * plan.grid[2]) * dim;
      std::fill(row, row + plan.grid[2] * dim, std::numeric_limits<float>::quiet_NaN());
    }
}

}  // namespace embed_detail

// Embeds the windows of `plan` over `volume` with `model` on every rank of `world`, from slab
// `first_slab` on (slabs before it are already written); rank 0 receives the slabs in `sink` and
// reports to `progress` (either may be empty elsewhere).
template <KernelBackend Backend, Precision Prec, Communicator Comm>
void embed_survey(VitMae<Backend, Prec>& model, const VolumeSource& volume, const WindowPlan& plan, Comm& world,
                  const EmbedOptions& options, int64_t first_slab, const SlabSink& sink, const ProgressSink& progress = {}) {
  using embed_detail::WindowBatch;
  const ModelConfig& c = model.config();
  SFM_CHECK(options.batch >= 1, "embed: batch must be at least 1, got ", options.batch);
  SFM_CHECK(plan.crop == c.crop && plan.patch == c.patch, "embed: the window plan's crop ",
            "and patch are not the model's");
  SFM_CHECK(first_slab >= 0 && first_slab <= plan.slabs(), "embed: first slab ", first_slab, " of ", plan.slabs());
  const int64_t N = c.tokens(), D = c.dim, voxels = box_voxels(plan.crop), B = options.batch;
  const int64_t P = world.size(), rank = world.rank();
  const std::vector<WindowBatch> batches = embed_detail::plan_batches(plan, plan.first_row_of_slab(first_slab), B);

  // Reads and normalises batch `b` (a zero-filled block when b is past the end).
  const auto read_batch = [&](size_t b) {
    std::vector<float> crops(size_t(B * voxels), 0.0f);
    if (b >= batches.size()) return crops;
    for (int64_t i = 0; i < batches[b].count; ++i) {
      const std::span<float> crop = std::span<float>(crops).subspan(size_t(i * voxels), size_t(voxels));
      volume.read(plan.origin(batches[b].first + i), plan.crop, crop);
      normalize_crop(crop, options.normalization);
    }
    return crops;
  };

  typename Backend::template Array<float> device_crops;
  if constexpr (!Backend::host_memory) device_crops = typename Backend::template Array<float>(size_t(B * voxels));
  std::vector<float> features(size_t(B * N * D)), gathered(size_t(P * B * N * D));
  const size_t rounds = (batches.size() + size_t(P) - 1) / size_t(P);
  std::future<std::vector<float>> next = std::async(std::launch::async, read_batch, size_t(rank));

  FeatureStitcher stitcher(plan, D, first_slab * plan.slab_depth());
  EmbedProgress report{0, 0, first_slab, plan.slabs(), 0};
  for (const WindowBatch& b : batches) report.windows_total += b.count;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t round = 0; round < rounds; ++round) {
    const size_t mine = round * size_t(P) + size_t(rank);
    std::vector<float> crops = next.get();
    if (round + 1 < rounds) next = std::async(std::launch::async, read_batch, mine + size_t(P));
    if (mine < batches.size()) {
      const int64_t count = batches[mine].count;
      const float* input = crops.data();
      if constexpr (!Backend::host_memory) {
        copy_from_host(Backend{}, device_crops.data(), crops.data(), count * voxels);
        input = device_crops.data();
      }
      model.encode(input, count, std::span<float>(features).first(size_t(count * N * D)));
    }
    world.all_gather(std::span<const float>(features), std::span<float>(gathered));
    if (rank != 0) continue;
    for (int64_t p = 0; p < P; ++p) {
      const size_t index = round * size_t(P) + size_t(p);
      if (index >= batches.size()) break;
      const WindowBatch& b = batches[index];
      for (int64_t i = 0; i < b.count; ++i)
        stitcher.add(b.first + i, std::span<const float>(gathered).subspan(size_t((p * B + i) * N * D), size_t(N * D)));
      report.windows_done += b.count;
      if (!b.ends_row) continue;
      for (; report.slabs_written < plan.slabs_final_after_row(b.row); ++report.slabs_written) {
        const int64_t z0 = report.slabs_written * plan.slab_depth();
        std::vector<float> slab = stitcher.take(z0, std::min(z0 + plan.slab_depth(), plan.grid[0]));
        embed_detail::mark_dead_cells(slab, z0, plan, volume.live(), D);
        sink(report.slabs_written, std::move(slab));
      }
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(report);
  }
}

}  // namespace sfm
