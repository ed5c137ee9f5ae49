// The reconstruction preview MAE users look at: for one crop, the middle inline, crossline and time
// slices (rows) of the input, the masked input (hidden patches black) and the reconstruction
// (predicted hidden patches pasted between the visible ones) (columns), as one grayscale image.
//
// With norm_pix_loss the model predicts each patch normalised by its own mean and variance; for
// display the prediction is mapped back with the target patch's mean and unbiased variance. Slices
// show time downwards; gray levels span ±3 standard deviations of the input; small crops are
// enlarged.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "sfm/data/crop.hpp"
#include "sfm/kernels/patch_grid.hpp"
#include "sfm/model/config.hpp"

namespace sfm {

// What the preview needs from one training sample.
struct PreviewSample {
  std::vector<float> volume;      // [Z, Y, X], the model's input
  std::vector<uint8_t> hidden;    // [N], 1 for masked tokens
  std::vector<float> prediction;  // [N, P], the decoder's output rows (cls row dropped)
};

namespace preview_detail {

// Calls f(token, voxel index in the volume, index within the patch vector) for every voxel.
template <class F>
void for_each_patch_voxel(const ModelConfig& c, F f) {
  const auto [Z, Y, X] = c.crop;
  const auto [pz, py, px] = c.patch;
  const int64_t gy = Y / py, gx = X / px;
  for (int64_t z = 0; z < Z; ++z)
    for (int64_t y = 0; y < Y; ++y)
      for (int64_t x = 0; x < X; ++x) {
        const int64_t token = ((z / pz) * gy + y / py) * gx + x / px;
        const int64_t within = ((z % pz) * py + y % py) * px + x % px;
        f(token, (z * Y + y) * X + x, within);
      }
}

}  // namespace preview_detail

// The masked input and the reconstruction, as volumes [Z, Y, X].
inline std::pair<std::vector<float>, std::vector<float>> preview_volumes(const ModelConfig& c, const PreviewSample& s) {
  const int64_t N = c.tokens(), P = c.patch_size();
  SFM_CHECK(int64_t(s.volume.size()) == N * P && int64_t(s.hidden.size()) == N && int64_t(s.prediction.size()) == N * P,
            "preview: sample buffers do not match the model");
  // Target patch statistics (norm-pix undo).
  std::vector<double> sum(size_t(N), 0), sq(size_t(N), 0);
  preview_detail::for_each_patch_voxel(c, [&](int64_t t, int64_t v, int64_t) { sum[size_t(t)] += s.volume[size_t(v)]; });
  preview_detail::for_each_patch_voxel(c, [&](int64_t t, int64_t v, int64_t) {
    const double d = s.volume[size_t(v)] - sum[size_t(t)] / double(P);
    sq[size_t(t)] += d * d;
  });
  std::vector<float> masked(s.volume.size()), recon(s.volume.size());
  preview_detail::for_each_patch_voxel(c, [&](int64_t t, int64_t v, int64_t w) {
    const bool hide = s.hidden[size_t(t)] != 0;
    double p = s.prediction[size_t(t * P + w)];
    if (c.norm_pix_loss) p = p * std::sqrt(sq[size_t(t)] / double(P - 1) + 1e-6) + sum[size_t(t)] / double(P);
    masked[size_t(v)] = hide ? std::nanf("") : s.volume[size_t(v)];
    recon[size_t(v)] = hide ? float(p) : s.volume[size_t(v)];
  });
  return {std::move(masked), std::move(recon)};
}

// The 3 × 3 grid image (width, height, pixels); NaN (masked) voxels are black.
struct GrayImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// Nearest-neighbour enlargement by `factor`, so that small crops are visible.
inline GrayImage upscale(const GrayImage& in, int64_t factor) {
  if (factor == 1) return in;
  GrayImage out{in.width * factor, in.height * factor, {}};
  out.pixels.resize(size_t(out.width * out.height));
  for (int64_t i = 0; i < out.height; ++i)
    for (int64_t j = 0; j < out.width; ++j)
      out.pixels[size_t(i * out.width + j)] = in.pixels[size_t((i / factor) * in.width + j / factor)];
  return out;
}

inline GrayImage preview_image(const ModelConfig& c, const PreviewSample& s) {
  const auto [masked, recon] = preview_volumes(c, s);
  const auto [Z, Y, X] = c.crop;
  double sq = 0;
  for (float v : s.volume) sq += double(v) * v;
  double mean = 0;
  for (float v : s.volume) mean += v;
  mean /= double(s.volume.size());
  const double scale = 3.0 * std::sqrt(std::max(1e-12, sq / double(s.volume.size()) - mean * mean));
  // Slice r of volume `vol` as rows × cols with value(row, col): inline (z = Z/2): X × Y,
  // crossline (y = Y/2): X × Z, time (x = X/2): Z × Y.
  const int64_t rows[3] = {X, X, Z}, cols[3] = {Y, Z, Y};
  auto value = [&](const std::vector<float>& vol, int r, int64_t i, int64_t j) {
    if (r == 0) return vol[size_t((Z / 2 * Y + j) * X + i)];
    if (r == 1) return vol[size_t((j * Y + Y / 2) * X + i)];
    return vol[size_t((i * Y + j) * X + X / 2)];
  };
  const int64_t gap = 2, col_width = std::max(Y, Z);
  GrayImage img;
  img.width = 3 * col_width + 2 * gap;
  img.height = rows[0] + rows[1] + rows[2] + 2 * gap;
  img.pixels.assign(size_t(img.width * img.height), 255);
  const std::vector<float>* vols[3] = {&s.volume, &masked, &recon};
  int64_t top = 0;
  for (int r = 0; r < 3; ++r) {
    for (int k = 0; k < 3; ++k)
      for (int64_t i = 0; i < rows[r]; ++i)
        for (int64_t j = 0; j < cols[r]; ++j) {
          const float v = value(*vols[k], r, i, j);
          const double level = std::isnan(v) ? 0.0 : 127.5 + 127.5 * std::clamp((v - mean) / scale, -1.0, 1.0);
          img.pixels[size_t((top + i) * img.width + k * (col_width + gap) + j)] = uint8_t(std::lround(level));
        }
    top += rows[r] + gap;
  }
  return upscale(img, std::max<int64_t>(1, 160 / col_width));
}

}  // namespace sfm
