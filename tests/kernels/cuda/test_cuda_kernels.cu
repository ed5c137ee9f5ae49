// The sfm::Cuda kernels (kernels/cuda/*.cuh) against the Cpu backend on the same inputs, fp32 and
// bf16, with odd sizes; plus DeviceArray, determinism (two runs bitwise equal) and error checks.
// Attention has its own file (test_cuda_attention.cu).
//
// Tolerances, as max|gpu − cpu| / max|cpu| over each tensor:
//   fp32: 1e-5 (different summation orders, correctly rounded math on both sides; copies exact);
//   bf16: 1e-2 for bf16 outputs (the CPU runs in fp32 on the same bf16-rounded inputs, so the error
//         is the output rounding, 2^-9 relative, plus fp32 accumulation order); 1e-3 for fp32
//         gradients accumulated by cuBLASLt from bf16 inputs (tensor-core accumulation).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_util.hpp"
#include "sfm/kernels/cpu/elementwise.hpp"
#include "sfm/kernels/cpu/gelu.hpp"
#include "sfm/kernels/cpu/layernorm.hpp"
#include "sfm/kernels/cpu/mae_loss.hpp"
#include "sfm/kernels/cpu/patchify.hpp"
#include "sfm/kernels/cpu/tokens.hpp"
#include "sfm/kernels/cuda/kernels.cuh"

using sfm::Cpu;
using sfm::Cuda;
using sfm::DeviceArray;
using sfm::TokenRows;
using namespace sfm::test;

namespace {

constexpr double kTol32 = 1e-5;
constexpr double kTol16 = 1e-2;

template <class T>
constexpr double tol() {
  return std::is_same_v<T, float> ? kTol32 : kTol16;
}

template <class T>
std::string label(const std::string& what) {
  return std::string(type_name<T>()) + " " + what;
}

std::string dims(std::initializer_list<int64_t> values) {
  std::string s;
  for (int64_t v : values) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

// ---------------------------------------------------------------------------------------------
// linear

// bias_offset < 0: no bias; otherwise the bias starts bias_offset elements into its buffer (1:
// not 16-byte aligned, so the bias-add kernel replaces the epilogue). in_offset shifts the input.
template <class T>
void linear_forward_case(int64_t rows, int64_t in_dim, int64_t out_dim, int64_t bias_offset, int64_t in_offset) {
  const auto x = rounded<T>(randn(size_t(rows * in_dim + in_offset), 1));
  const auto w = rounded<T>(randn(size_t(out_dim * in_dim), 2, 1.0f / std::sqrt(float(in_dim))));
  const auto bias = rounded<T>(randn(size_t(out_dim + 1), 3));
  const bool has_bias = bias_offset >= 0;
  std::vector<float> want(static_cast<size_t>(rows * out_dim));
  ref::linear_forward(want.data(), x.data() + in_offset, w.data(), has_bias ? bias.data() + bias_offset : nullptr,
                      rows, in_dim, out_dim);

  auto dx = upload<T>(x), dw = upload<T>(w), db = upload<T>(bias);
  auto out = poisoned<T>(want.size());
  sfm::linear_forward(Cuda{}, out.data(), dx.data() + in_offset, dw.data(), has_bias ? db.data() + bias_offset : nullptr,
                      rows, in_dim, out_dim);
  check_close(label<T>("linear_forward " + dims({rows, in_dim, out_dim}) + " bias@" + std::to_string(bias_offset) +
                       " in@" + std::to_string(in_offset)),
              download(out), want, tol<T>());
}

// G: gradient type (T, or float master gradients for bf16).
template <class T, class G>
void linear_backward_case(int64_t rows, int64_t in_dim, int64_t out_dim, bool with_d_in, bool with_d_bias) {
  const auto x = rounded<T>(randn(size_t(rows * in_dim), 11));
  const auto w = rounded<T>(randn(size_t(out_dim * in_dim), 12, 1.0f / std::sqrt(float(in_dim))));
  const auto dy = rounded<T>(randn(size_t(rows * out_dim), 13));
  const auto dw0 = rounded<G>(randn(size_t(out_dim * in_dim), 14));
  const auto db0 = rounded<G>(randn(size_t(out_dim), 15));
  std::vector<float> d_in(static_cast<size_t>(rows * in_dim)), d_w = dw0, d_b = db0;
  ref::linear_backward(with_d_in ? d_in.data() : nullptr, d_w.data(), with_d_bias ? d_b.data() : nullptr, dy.data(),
                       x.data(), w.data(), rows, in_dim, out_dim);

  auto gx = upload<T>(x), gw = upload<T>(w), gdy = upload<T>(dy);
  auto g_din = poisoned<T>(d_in.size());
  auto g_dw = upload<G>(dw0), g_db = upload<G>(db0);
  sfm::linear_backward(Cuda{}, with_d_in ? g_din.data() : static_cast<T*>(nullptr), g_dw.data(),
                       with_d_bias ? g_db.data() : static_cast<G*>(nullptr), gdy.data(), gx.data(), gw.data(), rows,
                       in_dim, out_dim);
  const std::string shape = dims({rows, in_dim, out_dim}) + " grad " + type_name<G>();
  // fp32 gradients from bf16 inputs: tensor-core fp32 accumulation; bf16 gradients: output rounding.
  const double tol_w = std::is_same_v<T, float> ? kTol32 : (std::is_same_v<G, float> ? 1e-3 : kTol16);
  if (with_d_in) check_close(label<T>("linear_backward d_in " + shape), download(g_din), d_in, tol<T>());
  check_close(label<T>("linear_backward d_weight " + shape), download(g_dw), d_w, tol_w);
  if (with_d_bias)
    check_close(label<T>("linear_backward d_bias " + shape), download(g_db), d_b,
                std::is_same_v<G, float> ? kTol32 : kTol16);
  else
    CHECK(bitwise_equal(download(g_db), rounded<G>(db0)));  // untouched
}

// ---------------------------------------------------------------------------------------------
// layernorm

template <class T>
void layernorm_case(int64_t rows, int64_t dim) {
  auto x = randn(size_t(rows * dim), 21, 2.0f);
  for (float& v : x) v += 5.0f;  // a mean far from 0 (relative checks of mean) and the variance's cancellation
  x = rounded<T>(x);
  auto gamma = randn(size_t(dim), 22, 0.3f);
  for (float& g : gamma) g += 1.0f;
  gamma = rounded<T>(gamma);
  const auto beta = rounded<T>(randn(size_t(dim), 23, 0.3f));
  const double eps = 1e-6;
  std::vector<float> out(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  sfm::layernorm_forward(Cpu{}, out.data(), mean.data(), rstd.data(), x.data(), gamma.data(), beta.data(), rows, dim,
                         eps);

  auto gx = upload<T>(x), gg = upload<T>(gamma), gb = upload<T>(beta);
  auto g_out = poisoned<T>(out.size());
  auto g_mean = poisoned<float>(mean.size()), g_rstd = poisoned<float>(rstd.size());
  sfm::layernorm_forward(Cuda{}, g_out.data(), g_mean.data(), g_rstd.data(), gx.data(), gg.data(), gb.data(), rows, dim,
                         eps);
  const std::string shape = dims({rows, dim});
  check_close(label<T>("layernorm_forward out " + shape), download(g_out), out, tol<T>());
  check_close(label<T>("layernorm_forward mean " + shape), download(g_mean), mean, kTol32);
  check_close(label<T>("layernorm_forward rstd " + shape), download(g_rstd), rstd, kTol32);

  // Backward with the CPU's statistics on both sides; d_in, d_gamma, d_beta accumulate.
  const auto dy = rounded<T>(randn(x.size(), 24));
  const auto din0 = rounded<T>(randn(x.size(), 25));
  const auto dg0 = randn(size_t(dim), 26), db0 = randn(size_t(dim), 27);
  std::vector<float> d_in = din0, d_gamma = dg0, d_beta = db0;
  sfm::layernorm_backward(Cpu{}, d_in.data(), d_gamma.data(), d_beta.data(), dy.data(), x.data(), mean.data(),
                          rstd.data(), gamma.data(), rows, dim);
  auto g_dy = upload<T>(dy), g_din = upload<T>(din0);
  auto g_dg = upload<float>(dg0), g_db = upload<float>(db0), c_mean = upload<float>(mean), c_rstd = upload<float>(rstd);
  sfm::layernorm_backward(Cuda{}, g_din.data(), g_dg.data(), g_db.data(), g_dy.data(), gx.data(), c_mean.data(),
                          c_rstd.data(), gg.data(), rows, dim);
  check_close(label<T>("layernorm_backward d_in " + shape), download(g_din), d_in, tol<T>());
  check_close(label<T>("layernorm_backward d_gamma " + shape), download(g_dg), d_gamma, kTol32);
  check_close(label<T>("layernorm_backward d_beta " + shape), download(g_db), d_beta, kTol32);
}

// ---------------------------------------------------------------------------------------------
// gelu, elementwise, patchify

template <class T>
void gelu_case(int64_t n) {
  const auto x = rounded<T>(randn(size_t(n), 31, 3.0f));
  const auto dy = rounded<T>(randn(size_t(n), 32));
  std::vector<float> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
  sfm::gelu_forward(Cpu{}, y.data(), x.data(), n);
  sfm::gelu_backward(Cpu{}, dx.data(), dy.data(), x.data(), n);
  auto gx = upload<T>(x), g_y = poisoned<T>(static_cast<size_t>(n)), g_d = upload<T>(dy);
  sfm::gelu_forward(Cuda{}, g_y.data(), gx.data(), n);
  sfm::gelu_backward(Cuda{}, g_d.data(), g_d.data(), gx.data(), n);  // in place, as the model calls it
  check_close(label<T>("gelu_forward n=" + std::to_string(n)), download(g_y), y, tol<T>(), 1.0);
  check_close(label<T>("gelu_backward (in place) n=" + std::to_string(n)), download(g_d), dx, tol<T>(), 1.0);
}

template <class T>
void elementwise_case(int64_t n) {
  const auto a = rounded<T>(randn(size_t(n), 41)), b = rounded<T>(randn(size_t(n), 42));
  std::vector<float> sum = a;
  sfm::add_inplace(Cpu{}, sum.data(), b.data(), n);
  auto ga = upload<T>(a), gb = upload<T>(b);
  sfm::add_inplace(Cuda{}, ga.data(), gb.data(), n);
  CHECK(bitwise_equal(download(ga), rounded<T>(sum)));  // one rounded add on both sides
  sfm::fill_zero(Cuda{}, ga.data(), n);
  CHECK(bitwise_equal(download(ga), std::vector<float>(size_t(n), 0.0f)));
}

template <class T>
void patchify_case(int64_t batch, const sfm::PatchGrid& g) {
  const auto volume = rounded<T>(randn(size_t(batch * g.voxels()), 51));
  std::vector<float> patches(size_t(batch * g.tokens() * g.patch_size()));
  sfm::patchify(Cpu{}, patches.data(), volume.data(), batch, g);
  auto gv = upload<T>(volume), gp = poisoned<T>(patches.size());
  sfm::patchify(Cuda{}, gp.data(), gv.data(), batch, g);
  CHECK(bitwise_equal(download(gp), patches));
  auto back = poisoned<T>(volume.size());
  sfm::unpatchify(Cuda{}, back.data(), gp.data(), batch, g);
  CHECK(bitwise_equal(download(back), volume));
}

// ---------------------------------------------------------------------------------------------
// tokens

// Distinct per-sample indices: the first `count` of a random permutation of [0, tokens).
std::vector<int64_t> keep_indices(int64_t batch, int64_t tokens, int64_t count) {
  std::vector<int64_t> index;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> perm(static_cast<size_t>(tokens));
    std::iota(perm.begin(), perm.end(), 0);
    const auto noise = randn(size_t(tokens), 60 + uint64_t(b));
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t x, int64_t y) { return noise[size_t(x)] < noise[size_t(y)]; });
    index.insert(index.end(), perm.begin(), perm.begin() + count);
  }
  return index;
}

std::vector<uint8_t> random_select(size_t n, uint64_t stream) {
  const auto noise = randn(n, stream);
  std::vector<uint8_t> s(n);
  for (size_t i = 0; i < n; ++i) s[i] = noise[i] > 0 ? 1 : 0;
  return s;
}

template <class T>
void tokens_case(int64_t B, int64_t N, int64_t K, int64_t D) {
  const auto index = keep_indices(B, N, K);
  const auto hidden = random_select(size_t(B * N), 61);
  DeviceArray<int64_t> g_index;
  g_index.assign(index.begin(), index.end());
  DeviceArray<uint8_t> g_hidden;
  g_hidden.assign(hidden.begin(), hidden.end());
  const std::string shape = dims({B, N, K, D});

  // gather: enc [B, K+1, D] rows 1.. ← tokens [B, N, D]
  {
    const auto tokens = rounded<T>(randn(size_t(B * N * D), 62));
    std::vector<float> enc = rounded<T>(randn(size_t(B * (K + 1) * D), 63));
    auto g_tokens = upload<T>(tokens), g_enc = upload<T>(enc);
    sfm::gather_tokens(Cpu{}, TokenRows<float>{enc.data(), K + 1, 1}, TokenRows<const float>{tokens.data(), N},
                       index.data(), B, K, D);
    sfm::gather_tokens(Cuda{}, TokenRows<T>{g_enc.data(), K + 1, 1}, TokenRows<const T>{g_tokens.data(), N},
                       g_index.data(), B, K, D);
    INFO(label<T>("gather_tokens " + shape));
    CHECK(bitwise_equal(download(g_enc), enc));
  }
  // scatter: dec [B, N+1, D] rows 1.. ← enc rows 1..; copy_rows: the cls row
  {
    const auto enc = rounded<T>(randn(size_t(B * (K + 1) * D), 64));
    std::vector<float> dec = rounded<T>(randn(size_t(B * (N + 1) * D), 65));
    auto g_enc = upload<T>(enc), g_dec = upload<T>(dec);
    sfm::scatter_tokens(Cpu{}, TokenRows<float>{dec.data(), N + 1, 1}, TokenRows<const float>{enc.data(), K + 1, 1},
                        index.data(), B, K, D);
    sfm::copy_rows(Cpu{}, TokenRows<float>{dec.data(), N + 1}, TokenRows<const float>{enc.data(), K + 1}, B, 1, D);
    sfm::scatter_tokens(Cuda{}, TokenRows<T>{g_dec.data(), N + 1, 1}, TokenRows<const T>{g_enc.data(), K + 1, 1},
                        g_index.data(), B, K, D);
    sfm::copy_rows(Cuda{}, TokenRows<T>{g_dec.data(), N + 1}, TokenRows<const T>{g_enc.data(), K + 1}, B, 1, D);
    INFO(label<T>("scatter_tokens + copy_rows " + shape));
    CHECK(bitwise_equal(download(g_dec), dec));
  }
  // fill_rows (selected, and all rows) and add_rows_broadcast
  {
    std::vector<float> dec = rounded<T>(randn(size_t(B * (N + 1) * D), 66));
    const auto value = rounded<T>(randn(size_t(D), 67)), value2 = rounded<T>(randn(size_t(D), 68));
    const auto table = rounded<T>(randn(size_t((N + 1) * D), 69));
    auto g_dec = upload<T>(dec), g_value = upload<T>(value), g_value2 = upload<T>(value2), g_table = upload<T>(table);
    sfm::fill_rows(Cpu{}, TokenRows<float>{dec.data(), N + 1, 1}, value.data(), hidden.data(), B, N, D);
    sfm::fill_rows(Cpu{}, TokenRows<float>{dec.data(), N + 1}, value2.data(), nullptr, B, 1, D);
    sfm::add_rows_broadcast(Cpu{}, TokenRows<float>{dec.data(), N + 1}, table.data(), B, N + 1, D);
    sfm::fill_rows(Cuda{}, TokenRows<T>{g_dec.data(), N + 1, 1}, g_value.data(), g_hidden.data(), B, N, D);
    sfm::fill_rows(Cuda{}, TokenRows<T>{g_dec.data(), N + 1}, g_value2.data(), nullptr, B, 1, D);
    sfm::add_rows_broadcast(Cuda{}, TokenRows<T>{g_dec.data(), N + 1}, g_table.data(), B, N + 1, D);
    INFO(label<T>("fill_rows + add_rows_broadcast " + shape));
    CHECK(bitwise_equal(download(g_dec), rounded<T>(dec)));  // one rounded add per element on both sides
  }
  // sum_rows (selected rows 1.., and all rows of a count-1 view)
  {
    const auto dec = rounded<T>(randn(size_t(B * (N + 1) * D), 70));
    const auto sum0 = rounded<T>(randn(size_t(D), 71)), sum1 = rounded<T>(randn(size_t(D), 72));
    std::vector<float> s0 = sum0, s1 = sum1;
    sfm::sum_rows(Cpu{}, s0.data(), TokenRows<const float>{dec.data(), N + 1, 1}, hidden.data(), B, N, D);
    sfm::sum_rows(Cpu{}, s1.data(), TokenRows<const float>{dec.data(), N + 1}, nullptr, B, 1, D);
    auto g_dec = upload<T>(dec), g_s0 = upload<T>(sum0), g_s1 = upload<T>(sum1);
    sfm::sum_rows(Cuda{}, g_s0.data(), TokenRows<const T>{g_dec.data(), N + 1, 1}, g_hidden.data(), B, N, D);
    sfm::sum_rows(Cuda{}, g_s1.data(), TokenRows<const T>{g_dec.data(), N + 1}, nullptr, B, 1, D);
    check_close(label<T>("sum_rows selected " + shape), download(g_s0), s0, tol<T>());
    check_close(label<T>("sum_rows all " + shape), download(g_s1), s1, tol<T>());
  }
}

// ---------------------------------------------------------------------------------------------
// mae_loss

template <class T>
void mae_loss_case(int64_t B, int64_t N, int64_t P, bool norm_pix) {
  const auto pred = rounded<T>(randn(size_t(B * (N + 1) * P), 81));
  auto target = randn(size_t(B * N * P), 82, 3.0f);
  for (float& t : target) t += 1.0f;
  target = rounded<T>(target);
  const auto hidden = random_select(size_t(B * N), 83);
  // The cls rows must stay as they are; small values, so they do not dominate the gradient's scale.
  const auto d_pred0 = rounded<T>(randn(pred.size(), 84, 1e-4f));
  const double normalizer = 3.0 * double(std::accumulate(hidden.begin(), hidden.end(), 0)) + 1.0;
  std::vector<float> d_pred = d_pred0;
  const double loss = sfm::mae_loss(Cpu{}, TokenRows<float>{d_pred.data(), N + 1, 1},
                                    TokenRows<const float>{pred.data(), N + 1, 1}, target.data(), hidden.data(), B, N,
                                    P, norm_pix, normalizer);
  auto g_pred = upload<T>(pred), g_target = upload<T>(target), g_dpred = upload<T>(d_pred0);
  DeviceArray<uint8_t> g_hidden;
  g_hidden.assign(hidden.begin(), hidden.end());
  const double g_loss = sfm::mae_loss(Cuda{}, TokenRows<T>{g_dpred.data(), N + 1, 1},
                                      TokenRows<const T>{g_pred.data(), N + 1, 1}, g_target.data(), g_hidden.data(), B,
                                      N, P, norm_pix, normalizer);
  const std::string what = label<T>("mae_loss " + dims({B, N, P}) + (norm_pix ? " norm_pix" : ""));
  const double rel = std::abs(g_loss - loss) / std::abs(loss);
  std::printf("  %-58s |loss err|/|loss|    = %.3e (tol 1.0e-09)  loss %.9g\n", what.c_str(), rel, loss);
  CHECK(rel <= 1e-9);  // double on both sides from the same values
  check_close(what + " d_pred", download(g_dpred), d_pred, tol<T>());
  // The loss is reproducible bitwise.
  const double again = sfm::mae_loss(Cuda{}, TokenRows<T>{g_dpred.data(), N + 1, 1},
                                     TokenRows<const T>{g_pred.data(), N + 1, 1}, g_target.data(), g_hidden.data(), B,
                                     N, P, norm_pix, normalizer);
  CHECK(std::memcmp(&again, &g_loss, sizeof(double)) == 0);
}

}  // namespace

// =============================================================================================

TEST_CASE("DeviceArray: fill, host range, to_host, move", "[cuda]") {
  DeviceArray<float> a;
  CHECK(a.empty());
  a.assign(1000, 2.5f);
  CHECK(a.size() == 1000);
  CHECK(bitwise_equal(a.to_host(), std::vector<float>(1000, 2.5f)));
  const std::vector<int> ints{1, -2, 3};
  a.assign(ints.begin(), ints.end());
  CHECK(a.to_host() == std::vector<float>{1.0f, -2.0f, 3.0f});
  DeviceArray<float> b = std::move(a);
  CHECK(a.empty());
  CHECK(b.size() == 3);
  a = std::move(b);
  CHECK(a.to_host() == std::vector<float>{1.0f, -2.0f, 3.0f});
  DeviceArray<uint8_t> u;
  u.assign(5, uint8_t{7});
  CHECK(u.to_host() == std::vector<uint8_t>(5, 7));
  DeviceArray<int64_t> z(4);
  CHECK(z.to_host() == std::vector<int64_t>(4, 0));
  DeviceArray<sfm::bf16> h;
  h.assign(3, sfm::to_bf16(1.5f));
  for (const sfm::bf16 v : h.to_host()) CHECK(sfm::to_float(v) == 1.5f);
  a.assign(0, 0.0f);
  CHECK(a.empty());
  CHECK(std::string(Cuda::name) == "cuda");
}

TEST_CASE("linear_forward matches the CPU (fp32 exact-precision GEMM, bf16)", "[cuda][linear]") {
  for (auto [rows, in_dim, out_dim] : {std::tuple<int64_t, int64_t, int64_t>{1, 33, 65}, {7, 65, 200}, {129, 200, 33},
                                       {129, 64, 192}, {513, 768, 96}}) {
    linear_forward_case<float>(rows, in_dim, out_dim, 0, 0);
    linear_forward_case<float>(rows, in_dim, out_dim, -1, 0);
    linear_forward_case<sfm::bf16>(rows, in_dim, out_dim, 0, 0);
    linear_forward_case<sfm::bf16>(rows, in_dim, out_dim, -1, 0);
  }
}

TEST_CASE("linear_forward with misaligned bias and input pointers", "[cuda][linear]") {
  // Parameters sit at arbitrary offsets of flat buffers: the bias-add fallback and cuBLASLt's
  // alignment preferences must handle that.
  linear_forward_case<float>(7, 65, 200, 1, 1);
  linear_forward_case<float>(129, 64, 192, 1, 3);
  linear_forward_case<sfm::bf16>(7, 65, 200, 1, 1);
  linear_forward_case<sfm::bf16>(129, 64, 192, 1, 3);
}

TEST_CASE("linear_backward matches the CPU (d_in overwritten, d_weight and d_bias accumulated)", "[cuda][linear]") {
  for (auto [rows, in_dim, out_dim] : {std::tuple<int64_t, int64_t, int64_t>{1, 33, 65}, {7, 65, 200}, {129, 200, 33},
                                       {129, 64, 192}, {513, 768, 96}}) {
    linear_backward_case<float, float>(rows, in_dim, out_dim, true, true);
    linear_backward_case<sfm::bf16, float>(rows, in_dim, out_dim, true, true);
  }
  linear_backward_case<float, float>(7, 65, 200, false, true);
  linear_backward_case<float, float>(129, 200, 33, true, false);
  linear_backward_case<sfm::bf16, sfm::bf16>(129, 64, 192, true, true);
}

TEST_CASE("layernorm forward and backward match the CPU", "[cuda][layernorm]") {
  for (int64_t rows : {1, 7, 129})
    for (int64_t dim : {33, 65, 200, 768}) {
      layernorm_case<float>(rows, dim);
      layernorm_case<sfm::bf16>(rows, dim);
    }
  layernorm_case<float>(1031, 192);  // several column-reduction chunks
}

TEST_CASE("gelu forward and backward match the CPU", "[cuda][gelu]") {
  for (int64_t n : {1, 7, 129 * 65, 100003}) {
    gelu_case<float>(n);
    gelu_case<sfm::bf16>(n);
  }
}

TEST_CASE("add_inplace and fill_zero", "[cuda][elementwise]") {
  for (int64_t n : {1, 7, 100003}) {
    elementwise_case<float>(n);
    elementwise_case<sfm::bf16>(n);
  }
}

TEST_CASE("patchify and unpatchify match the CPU exactly", "[cuda][patchify]") {
  patchify_case<float>(2, sfm::PatchGrid{{8, 12, 16}, {4, 4, 8}});
  patchify_case<float>(1, sfm::PatchGrid{{16, 16, 16}, {8, 8, 8}});
  patchify_case<sfm::bf16>(3, sfm::PatchGrid{{6, 9, 10}, {3, 3, 5}});
}

TEST_CASE("token gather/scatter/fill/add/sum match the CPU", "[cuda][tokens]") {
  tokens_case<float>(3, 11, 5, 65);
  tokens_case<float>(2, 600, 150, 33);  // sum_rows over several chunks
  tokens_case<sfm::bf16>(3, 11, 5, 65);
  tokens_case<sfm::bf16>(1, 7, 1, 200);
}

TEST_CASE("mae_loss matches the CPU (loss in double, d_pred)", "[cuda][mae_loss]") {
  for (int64_t P : {33, 64, 512})
    for (bool norm_pix : {true, false}) {
      mae_loss_case<float>(2, 13, P, norm_pix);
      mae_loss_case<sfm::bf16>(2, 13, P, norm_pix);
    }
  mae_loss_case<float>(3, 700, 64, true);  // more tokens than the summing block's threads
}

TEST_CASE("adamw_update matches the CPU", "[cuda][adamw]") {
  const int64_t n = 100003;
  std::vector<float> p = randn(size_t(n), 91), m(size_t(n), 0.0f), v(size_t(n), 0.0f);
  auto gp = upload<float>(p), gm = upload<float>(m), gv = upload<float>(v);
  DeviceArray<sfm::bf16> copy(static_cast<size_t>(n));
  for (int64_t step = 1; step <= 3; ++step) {
    const auto g = randn(size_t(n), 92 + uint64_t(step), 0.1f);
    const sfm::AdamWHyper h{1e-3, 0.9, 0.95, 1e-8, step == 2 ? 0.0 : 0.05, step, 0.7};
    ref::adamw_update(p.data(), g.data(), m.data(), v.data(), n, h);
    auto gg = upload<float>(g);
    if (step == 3)
      sfm::adamw_update(Cuda{}, gp.data(), gg.data(), gm.data(), gv.data(), n, h, copy.data());
    else
      sfm::adamw_update(Cuda{}, gp.data(), gg.data(), gm.data(), gv.data(), n, h);
    const auto got = download(gp);
    std::printf("  adamw step %lld: parameters bitwise equal to the CPU: %s\n", (long long)step,
                bitwise_equal(got, p) ? "yes" : "no");
    check_close("fp32 adamw param step " + std::to_string(step), got, p, 1e-6);
    check_close("fp32 adamw m step " + std::to_string(step), download(gm), m, 1e-6);
    check_close("fp32 adamw v step " + std::to_string(step), download(gv), v, 1e-6);
  }
  const auto params = download(gp);
  const auto bf = copy.to_host();
  size_t mismatches = 0;
  for (size_t i = 0; i < params.size(); ++i) mismatches += bf[i].bits != sfm::to_bf16(params[i]).bits;
  CHECK(mismatches == 0);
}

TEST_CASE("gradient kernels are deterministic (two runs bitwise equal)", "[cuda][determinism]") {
  const int64_t rows = 1031, in_dim = 192, out_dim = 576;
  const auto x = randn(size_t(rows * in_dim), 101), w = randn(size_t(out_dim * in_dim), 102, 0.1f);
  const auto dy = randn(size_t(rows * out_dim), 103);
  auto gx = upload<float>(x), gw = upload<float>(w), gdy = upload<float>(dy);
  auto gx16 = upload<sfm::bf16>(x), gw16 = upload<sfm::bf16>(w), gdy16 = upload<sfm::bf16>(dy);
  auto run_linear = [&](bool bf16) {
    DeviceArray<float> dw(static_cast<size_t>(out_dim * in_dim)), db(static_cast<size_t>(out_dim));
    if (bf16) {
      DeviceArray<sfm::bf16> din(static_cast<size_t>(rows * in_dim));
      sfm::linear_backward(Cuda{}, din.data(), dw.data(), db.data(), gdy16.data(), gx16.data(), gw16.data(), rows, in_dim,
                           out_dim);
      return std::vector<std::vector<float>>{download(din), download(dw), download(db)};
    }
    DeviceArray<float> din(static_cast<size_t>(rows * in_dim));
    sfm::linear_backward(Cuda{}, din.data(), dw.data(), db.data(), gdy.data(), gx.data(), gw.data(), rows, in_dim,
                         out_dim);
    return std::vector<std::vector<float>>{download(din), download(dw), download(db)};
  };
  for (bool bf16 : {false, true}) {
    const auto first = run_linear(bf16), second = run_linear(bf16);
    for (size_t i = 0; i < first.size(); ++i) CHECK(bitwise_equal(first[i], second[i]));
  }
  auto run_layernorm = [&]() {
    DeviceArray<float> out(static_cast<size_t>(rows * in_dim)), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
    auto gamma = upload<float>(randn(size_t(in_dim), 104)), beta = upload<float>(randn(size_t(in_dim), 105));
    sfm::layernorm_forward(Cuda{}, out.data(), mean.data(), rstd.data(), gx.data(), gamma.data(), beta.data(), rows,
                           in_dim, 1e-6);
    DeviceArray<float> din(static_cast<size_t>(rows * in_dim)), dg(static_cast<size_t>(in_dim)), db(static_cast<size_t>(in_dim));
    sfm::layernorm_backward(Cuda{}, din.data(), dg.data(), db.data(), gdy.data(), gx.data(), mean.data(), rstd.data(),
                            gamma.data(), rows, in_dim);
    return std::vector<std::vector<float>>{download(out), download(din), download(dg), download(db)};
  };
  const auto first = run_layernorm(), second = run_layernorm();
  for (size_t i = 0; i < first.size(); ++i) CHECK(bitwise_equal(first[i], second[i]));
}

TEST_CASE("CUDA kernels reject unsupported shapes with sfm::Error", "[cuda][errors]") {
  DeviceArray<float> buffer(static_cast<size_t>(2 * 3 * 48));
  DeviceArray<float> lse(6);
  const sfm::HeadsView<float> view{buffer.data(), 3 * 48, 48, 48};
  const sfm::AttentionInputs<float> in{view, view, view, sfm::AttentionShape{2, 1, 3, 3, 48}, 0.1f};
  const sfm::AttentionOutputs<float> out{view, lse.data()};
  CHECK_THROWS_AS(sfm::attention_forward(Cuda{}, out, in), sfm::Error);
  CHECK_THROWS_WITH(sfm::attention_forward(Cuda{}, out, in), contains("head_dim 48"));
  CHECK_THROWS_WITH(sfm::attention_forward_block(Cuda{}, out, in, sfm::ValidRows{3, 3}), contains("head_dim 48"));
  // Valid rows outside the block.
  const sfm::AttentionInputs<float> in16{view, view, view, sfm::AttentionShape{2, 1, 3, 3, 16}, 0.1f};
  CHECK_THROWS_WITH(sfm::attention_forward_block(Cuda{}, out, in16, sfm::ValidRows{4, 3}), contains("valid rows"));
  CHECK_THROWS_WITH(sfm::attention_backward_block(Cuda{}, sfm::AttentionGrads<float>{view, view, view}, view,
                                                  lse.data(), lse.data(), in16, sfm::ValidRows{3, -1}),
                    contains("valid rows"));
}
