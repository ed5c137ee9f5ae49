// The MAE reconstruction loss (CPU): per-token MSE against (optionally normalised) target patches,
// averaged over hidden tokens, fused with its gradient.
//
// With norm_pix_loss each target patch becomes (t − mean) / sqrt(var + 1e-6), var unbiased.
// The function returns Σ_hidden mse_token / normalizer and writes d_pred of that quantity; the
// caller passes the normalizer (the number of hidden tokens in the whole global batch), so loss and
// gradients add up correctly over micro-batches and ranks.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "sfm/kernels/cpu/backend.hpp"
#include "sfm/kernels/cpu/element.hpp"
#include "sfm/kernels/cpu/tokens.hpp"

namespace sfm {

// pred: rows of P values (TokenRows, e.g. skipping the decoder's cls row); target [B, N, P];
// hidden [B, N] (1 = masked token, counted in the loss). d_pred rows of non-hidden tokens are zeroed.
template <class T>
double mae_loss(Cpu, TokenRows<T> d_pred, InRows<T> pred, const T* target, const uint8_t* hidden,
                int64_t batch, int64_t tokens, int64_t patch_size, bool norm_pix, double normalizer) {
  using namespace cpu_detail;
  // Per-token errors first, then one sum in token order: the result does not depend on threads.
  std::vector<double> token_error(size_t(batch * tokens), 0.0);
  const double n = double(patch_size);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      T* dp = d_pred.row(b, t, patch_size);
      if (!hidden[b * tokens + t]) {
        for (int64_t i = 0; i < patch_size; ++i) dp[i] = narrow<T>(0.0);
        continue;
      }
      const T* p = pred.row(b, t, patch_size);
      const T* y = target + (b * tokens + t) * patch_size;
      double mean = 0, scale = 1;
      if (norm_pix) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < patch_size; ++i) sum += wide(y[i]);
        mean = sum / n;
        for (int64_t i = 0; i < patch_size; ++i) sq += (wide(y[i]) - mean) * (wide(y[i]) - mean);
        scale = 1.0 / std::sqrt(sq / (n - 1) + 1e-6);
      }
      double err = 0;
      for (int64_t i = 0; i < patch_size; ++i) {
        const double diff = double(wide(p[i])) - (double(wide(y[i])) - mean) * scale;
        err += diff * diff;
        dp[i] = narrow<T>(2 * diff / (n * normalizer));
      }
      token_error[size_t(b * tokens + t)] = err / n;
    }
  double total = 0;
  for (double e : token_error) total += e;
  return total / normalizer;
}

}  // namespace sfm
