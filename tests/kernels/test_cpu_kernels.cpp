// The CPU kernels other than attention, each against an independent reference: finite differences
// in double for every backward, explicit index formulas for the layout kernels, and a scalar
// re-derivation of PyTorch's AdamW update; the parameter gradients' column sums bit for bit against
// the documented summation order; the vectorised fp32 GELU against a double reference.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <string>

#include "kernel_test_util.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"

using sfm::Cpu;
using sfm::test::dot;
using sfm::test::numeric_derivative;
using sfm::test::random_values;

TEST_CASE("linear_backward matches finite differences; gradients accumulate") {
  const int64_t rows = 5, in = 7, out = 3;
  auto x = random_values(size_t(rows * in), 1), w = random_values(size_t(out * in), 2), b = random_values(size_t(out), 3);
  const auto weight = random_values(size_t(rows * out), 4);
  std::vector<double> y(size_t(rows * out));
  auto loss = [&] {
    sfm::linear_forward(Cpu{}, y.data(), x.data(), w.data(), b.data(), rows, in, out);
    return dot(y, weight);
  };
  loss();
  std::vector<double> dx(x.size()), dw(w.size(), 1.0), db(b.size(), 1.0);  // start at 1: accumulation
  sfm::linear_backward(Cpu{}, dx.data(), dw.data(), db.data(), weight.data(), x.data(), w.data(), rows, in, out);
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::abs(dx[i] - numeric_derivative(x, i, loss)) <= 1e-8);
  for (size_t i = 0; i < w.size(); ++i) CHECK(std::abs(dw[i] - 1.0 - numeric_derivative(w, i, loss)) <= 1e-8);
  for (size_t i = 0; i < b.size(); ++i) CHECK(std::abs(db[i] - 1.0 - numeric_derivative(b, i, loss)) <= 1e-8);
}

TEST_CASE("layernorm forward normalises rows; backward matches finite differences") {
  const int64_t rows = 4, dim = 33;
  auto x = random_values(size_t(rows * dim), 5, 3.0), gamma = random_values(size_t(dim), 6), beta = random_values(size_t(dim), 7);
  const auto weight = random_values(x.size(), 8);
  std::vector<double> y(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  auto loss = [&] {
    sfm::layernorm_forward(Cpu{}, y.data(), mean.data(), rstd.data(), x.data(), gamma.data(), beta.data(), rows, dim, 1e-6);
    return dot(y, weight);
  };
  loss();
  for (int64_t r = 0; r < rows; ++r) {  // statistics against a direct two-pass computation
    double m = 0, v = 0;
    for (int64_t i = 0; i < dim; ++i) m += x[size_t(r * dim + i)] / double(dim);
    for (int64_t i = 0; i < dim; ++i) v += std::pow(x[size_t(r * dim + i)] - m, 2) / double(dim);
    CHECK(std::abs(mean[size_t(r)] - m) <= 1e-12);
    CHECK(std::abs(rstd[size_t(r)] - 1 / std::sqrt(v + 1e-6)) <= 1e-10);
  }
  std::vector<double> dx(x.size(), 0.5), dgamma(static_cast<size_t>(dim)), dbeta(static_cast<size_t>(dim));  // dx accumulates onto 0.5
  sfm::layernorm_backward(Cpu{}, dx.data(), dgamma.data(), dbeta.data(), weight.data(), x.data(), mean.data(), rstd.data(),
                          gamma.data(), rows, dim);
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::abs(dx[i] - 0.5 - numeric_derivative(x, i, loss)) <= 1e-7);
  for (size_t i = 0; i < size_t(dim); ++i) {
    CHECK(std::abs(dgamma[i] - numeric_derivative(gamma, i, loss)) <= 1e-7);
    CHECK(std::abs(dbeta[i] - numeric_derivative(beta, i, loss)) <= 1e-7);
  }
}

namespace {

double as_double(double x) { return x; }
double as_double(float x) { return x; }
double as_double(sfm::bf16 x) { return sfm::to_float(x); }

// The bias gradient of linear_backward and dγ, dβ of layernorm_backward for activations T and
// gradients G, with every buffer starting `offset` elements past its allocation, against the
// documented order (kernels/cpu/column_sums.hpp): per column, the rows' terms rounded to double and
// summed for r = 0, 1, …, rows − 1, converted to G once and added to the gradient (which starts at
// 0.5 here: the kernels accumulate). The terms are stored before they are summed so that the
// compiler cannot contract the reference's products into FMAs (the kernel may not either).
template <class T, class G>
void check_column_sums(int64_t rows, int64_t cols, size_t offset) {
  INFO(std::string(sizeof(T) == 2 ? "bf16" : sizeof(T) == 4 ? "fp32" : "double")
       << " rows " << rows << " cols " << cols << " offset " << offset << " threads " << omp_get_max_threads());
  // Values (+ shift) times 2^e, e spread over `binades`.
  auto values = [&](size_t n, uint64_t stream, double shift, int binades = 1) {
    const auto v = random_values(n, stream);
    std::vector<T> out(offset + n);
    for (size_t i = 0; i < n; ++i)
      out[offset + i] = sfm::cpu_detail::narrow<T>(std::ldexp(v[i] + shift, int(i * 7919 % size_t(binades))));
    return out;
  };
  const int64_t n = rows * cols, in_dim = 2;
  std::vector<T> dy = values(size_t(n), 21, 0.0, 20), x = values(size_t(n), 22, 3.0);
  const std::vector<T> gamma = values(size_t(cols), 23, 1.0), beta = values(size_t(cols), 24, 0.0),
                       lin_in = values(size_t(rows * in_dim), 25, 0.0), lin_w = values(size_t(cols * in_dim), 26, 0.0);
  // Rows 0 and 1 cancel exactly (equal x, opposite d_out 2^60 times the others), but only when they
  // are summed first: in any other order the other rows' terms are partly absorbed into 2^60, so a
  // changed order shows even after the rounding to fp32 or bf16.
  if (rows >= 2)
    for (int64_t j = 0; j < cols; ++j) {
      T* row0 = dy.data() + offset;
      row0[j] = sfm::cpu_detail::narrow<T>(std::ldexp(as_double(row0[j]), 60));
      row0[cols + j] = sfm::cpu_detail::narrow<T>(-as_double(row0[j]));
      x[offset + size_t(cols + j)] = x[offset + size_t(j)];
    }
  auto at = [&](const std::vector<T>& v) { return v.data() + offset; };

  std::vector<G> d_w(offset + size_t(cols * in_dim)), d_bias(offset + size_t(cols), G(0.5));
  sfm::linear_backward(Cpu{}, static_cast<T*>(nullptr), d_w.data() + offset, d_bias.data() + offset, at(dy), at(lin_in),
                       at(lin_w), rows, in_dim, cols);

  std::vector<T> y(offset + size_t(n)), d_x(offset + size_t(n));
  std::vector<sfm::Accum<T>> mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  std::vector<G> d_gamma(offset + size_t(cols), G(0.5)), d_beta(offset + size_t(cols), G(0.5));
  sfm::layernorm_forward(Cpu{}, y.data() + offset, mean.data(), rstd.data(), at(x), at(gamma), at(beta), rows, cols,
                         1e-6);
  sfm::layernorm_backward(Cpu{}, d_x.data() + offset, d_gamma.data() + offset, d_beta.data() + offset, at(dy), at(x),
                          mean.data(), rstd.data(), at(gamma), rows, cols);

  std::vector<double> dy_xhat(static_cast<size_t>(n));  // dy·xhat in double, as layernorm_backward forms it
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      dy_xhat[size_t(r * cols + j)] =
          as_double(at(dy)[r * cols + j]) * (as_double(at(x)[r * cols + j]) - mean[size_t(r)]) * rstd[size_t(r)];
  std::vector<G> want_bias(static_cast<size_t>(cols)), want_gamma(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    double sum = 0, sum_xhat = 0;
    for (int64_t r = 0; r < rows; ++r) sum += as_double(at(dy)[r * cols + j]);
    for (int64_t r = 0; r < rows; ++r) sum_xhat += dy_xhat[size_t(r * cols + j)];
    want_bias[size_t(j)] = G(0.5) + G(sum);
    want_gamma[size_t(j)] = G(0.5) + G(sum_xhat);
  }
  CHECK(std::vector<G>(d_bias.begin() + long(offset), d_bias.end()) == want_bias);
  CHECK(std::vector<G>(d_beta.begin() + long(offset), d_beta.end()) == want_bias);  // dβ = Σ dy as well
  CHECK(std::vector<G>(d_gamma.begin() + long(offset), d_gamma.end()) == want_gamma);
}

}  // namespace

TEST_CASE("bias, LayerNorm γ and β gradients: the documented column sums bit for bit, any threads or alignment") {
  const int threads = omp_get_max_threads();
  for (const int t : {1, 2, 3}) {  // 3: column ranges that split unevenly
    omp_set_num_threads(t);
    for (const int64_t rows : {1, 7, 1031})
      for (const int64_t cols : {1, 3, 130, 769})
        for (const size_t offset : {0, 1}) {
          check_column_sums<float, float>(rows, cols, offset);
          check_column_sums<sfm::bf16, float>(rows, cols, offset);
          check_column_sums<double, double>(rows, cols, offset);  // double sums: an FMA would show
        }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("exact GELU forward and backward") {
  auto x = random_values(64, 9, 2.0);
  std::vector<double> y(x.size());
  sfm::gelu_forward(Cpu{}, y.data(), x.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::abs(y[i] - x[i] * 0.5 * std::erfc(-x[i] / std::sqrt(2.0))) <= 1e-14);
  const auto weight = random_values(x.size(), 10);
  auto loss = [&] {
    sfm::gelu_forward(Cpu{}, y.data(), x.data(), int64_t(x.size()));
    return dot(y, weight);
  };
  std::vector<double> dx(x.size());
  sfm::gelu_backward(Cpu{}, dx.data(), weight.data(), x.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::abs(dx[i] - numeric_derivative(x, i, loss)) <= 1e-8);
}

TEST_CASE("fp32 GELU (vectorised erf) against a double reference; special values exact") {
  // Reference in double from erfc (no cancellation in the negative tail): Φ(x) = erfc(−x/√2)/2.
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  auto slope = [&](double x) { return cdf(x) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); };
  const int64_t n = 1'000'001;  // dense grid on [−12, 12], odd length: a partial block at the end
  std::vector<float> x(static_cast<size_t>(n)), y(x.size()), dx(x.size()), ones(x.size(), 1.0f);
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(-12.0 + 24.0 * double(i) / double(n - 1));
  sfm::gelu_forward(Cpu{}, y.data(), x.data(), n);
  sfm::gelu_backward(Cpu{}, dx.data(), ones.data(), x.data(), n);
  double forward_error = 0, backward_error = 0;  // max |error| / max(1, |reference|)
  for (size_t i = 0; i < x.size(); ++i) {
    const double xi = x[i];
    forward_error = std::max(forward_error, std::abs(y[i] - xi * cdf(xi)) / std::max(1.0, std::abs(xi * cdf(xi))));
    backward_error = std::max(backward_error, std::abs(dx[i] - slope(xi)) / std::max(1.0, std::abs(slope(xi))));
  }
  WARN("max error: forward " << forward_error << ", backward " << backward_error);
  CHECK(forward_error <= 1e-6);  // Eigen erf: ≈ 5 ulp of 1 near its clamp (x/√2 ≈ −3.94)
  CHECK(backward_error <= 3e-7);
  // Per-element results: the same bits from a buffer shifted by one element (other alignment, other
  // block boundaries).
  std::vector<float> y_shifted(x.size() - 1), dx_shifted(x.size() - 1);
  sfm::gelu_forward(Cpu{}, y_shifted.data(), x.data() + 1, n - 1);
  sfm::gelu_backward(Cpu{}, dx_shifted.data(), ones.data(), x.data() + 1, n - 1);
  CHECK(std::equal(y_shifted.begin(), y_shifted.end(), y.begin() + 1));
  CHECK(std::equal(dx_shifted.begin(), dx_shifted.end(), dx.begin() + 1));

  // Special values: gelu and gelu' exactly (the fp32 rounding of the double reference; 0 at −inf,
  // x at +inf and at huge x, NaN through).
  const float inf = std::numeric_limits<float>::infinity(), denorm = std::numeric_limits<float>::denorm_min();
  const std::vector<float> special{0.0f, -0.0f, denorm, -denorm, 1e-30f, -1e-30f, inf, -inf, 3e38f, -3e38f};
  const std::vector<float> gelu{0.0f, 0.0f, 0.0f, 0.0f, 5e-31f, -5e-31f, inf, 0.0f, 3e38f, 0.0f};
  const std::vector<float> grad{0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 1.0f, 0.0f, 1.0f, 0.0f};
  std::vector<float> sy(special.size()), sdx(special.size(), 1.0f);
  sfm::gelu_forward(Cpu{}, sy.data(), special.data(), int64_t(special.size()));
  sfm::gelu_backward(Cpu{}, sdx.data(), sdx.data(), special.data(), int64_t(special.size()));  // in place, as the model calls it
  for (size_t i = 0; i < special.size(); ++i) {
    CAPTURE(special[i]);
    CHECK(sy[i] == gelu[i]);
    CHECK(sdx[i] == grad[i]);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float nan_y = 0, nan_dx = 1;
  sfm::gelu_forward(Cpu{}, &nan_y, &nan, 1);
  sfm::gelu_backward(Cpu{}, &nan_dx, &nan_dx, &nan, 1);
  CHECK(std::isnan(nan_y));
  CHECK(std::isnan(nan_dx));
}

TEST_CASE("patchify follows the pinned token and voxel order; unpatchify inverts it") {
  const sfm::PatchGrid g{{6, 4, 10}, {3, 2, 5}};  // grid 2 × 2 × 2, patches of 30 voxels
  const int64_t B = 2;
  std::vector<float> volume(size_t(B * g.voxels()));
  std::iota(volume.begin(), volume.end(), 0.0f);
  std::vector<float> patches(volume.size()), back(volume.size());
  sfm::patchify(Cpu{}, patches.data(), volume.data(), B, g);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t iz = 0; iz < 2; ++iz)
      for (int64_t iy = 0; iy < 2; ++iy)
        for (int64_t ix = 0; ix < 2; ++ix) {
          const int64_t t = (iz * 2 + iy) * 2 + ix;
          int64_t p = 0;
          for (int64_t dz = 0; dz < 3; ++dz)
            for (int64_t dy = 0; dy < 2; ++dy)
              for (int64_t dx = 0; dx < 5; ++dx, ++p) {
                const int64_t voxel = ((b * 6 + iz * 3 + dz) * 4 + iy * 2 + dy) * 10 + ix * 5 + dx;
                CHECK(patches[size_t((b * 8 + t) * 30 + p)] == volume[size_t(voxel)]);
              }
        }
  sfm::unpatchify(Cpu{}, back.data(), patches.data(), B, g);
  CHECK(back == volume);
}

TEST_CASE("gather_tokens and scatter_tokens are inverse on distinct indices, cls row skipped") {
  const int64_t B = 2, N = 6, K = 3, D = 4;
  std::vector<float> tokens(size_t(B * N * D));
  std::iota(tokens.begin(), tokens.end(), 1.0f);
  const std::vector<int64_t> index{4, 0, 2, 5, 1, 3};
  std::vector<float> picked(size_t(B * (K + 1) * D), -1.0f), back(tokens.size(), 0.0f);
  sfm::gather_tokens(Cpu{}, sfm::TokenRows<float>{picked.data(), K + 1, 1}, sfm::TokenRows<const float>{tokens.data(), N},
                     index.data(), B, K, D);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < D; ++c) CHECK(picked[size_t(b * (K + 1) * D + c)] == -1.0f);  // cls row untouched
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < D; ++c)
        CHECK(picked[size_t((b * (K + 1) + 1 + k) * D + c)] == tokens[size_t((b * N + index[size_t(b * K + k)]) * D + c)]);
  }
  sfm::scatter_tokens(Cpu{}, sfm::TokenRows<float>{back.data(), N}, sfm::TokenRows<const float>{picked.data(), K + 1, 1},
                      index.data(), B, K, D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < D; ++c) {
        const size_t at = size_t((b * N + index[size_t(b * K + k)]) * D + c);
        CHECK(back[at] == tokens[at]);
      }
}

TEST_CASE("mae_loss: norm-pix MSE over hidden tokens, gradient by finite differences") {
  const int64_t B = 2, N = 5, P = 8;
  auto pred = random_values(size_t(B * N * P), 11);
  const auto target = random_values(pred.size(), 12, 4.0);
  const std::vector<uint8_t> hidden{1, 0, 1, 1, 0, 0, 1, 0, 0, 1};
  for (bool norm_pix : {false, true}) {
    std::vector<double> d_pred(pred.size());
    auto loss = [&] {
      return sfm::mae_loss(Cpu{}, sfm::TokenRows<double>{d_pred.data(), N}, sfm::TokenRows<const double>{pred.data(), N},
                           target.data(), hidden.data(), B, N, P, norm_pix, 5.0);
    };
    // Direct evaluation of the definition.
    double expected = 0;
    for (int64_t t = 0; t < B * N; ++t) {
      if (!hidden[size_t(t)]) continue;
      const double* y = &target[size_t(t * P)];
      double mean = 0, var = 0;
      for (int64_t i = 0; i < P; ++i) mean += y[i] / double(P);
      for (int64_t i = 0; i < P; ++i) var += (y[i] - mean) * (y[i] - mean) / double(P - 1);
      double mse = 0;
      for (int64_t i = 0; i < P; ++i) {
        const double goal = norm_pix ? (y[i] - mean) / std::sqrt(var + 1e-6) : y[i];
        mse += std::pow(pred[size_t(t * P + i)] - goal, 2) / double(P);
      }
      expected += mse / 5.0;
    }
    CHECK(std::abs(loss() - expected) <= 1e-12);
    const std::vector<double> grad = d_pred;
    for (size_t i = 0; i < pred.size(); ++i) CHECK(std::abs(grad[i] - numeric_derivative(pred, i, loss)) <= 1e-8);
  }
}

TEST_CASE("adamw_update follows torch.optim.AdamW step by step") {
  std::vector<float> p{0.5f, -1.0f, 2.0f}, g{0.1f, -0.3f, 0.05f}, m(3), v(3);
  std::vector<double> rp(p.begin(), p.end()), rm(3), rv(3);
  for (int64_t step = 1; step <= 4; ++step) {
    const sfm::AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.05, step, 0.5};
    sfm::adamw_update(Cpu{}, p.data(), g.data(), m.data(), v.data(), 3, h);
    for (size_t i = 0; i < 3; ++i) {
      const double grad = 0.5 * g[i];
      rp[i] *= 1 - 1e-2 * 0.05;
      rm[i] = 0.9 * rm[i] + 0.1 * grad;
      rv[i] = 0.95 * rv[i] + 0.05 * grad * grad;
      const double denom = std::sqrt(rv[i]) / std::sqrt(1 - std::pow(0.95, step)) + 1e-8;
      rp[i] -= 1e-2 / (1 - std::pow(0.9, step)) * rm[i] / denom;
      CHECK(std::abs(p[i] - rp[i]) <= 1e-6);
    }
  }
}
