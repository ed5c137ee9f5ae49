// attention_forward/backward (CPU) against a naive softmax attention in double, on the packed qkv
// layout the model uses, with uneven lengths, several query tiles, and finite differences; and the
// same bits on any number of threads.
#include <omp.h>

#include <cmath>

#include "kernel_test_util.hpp"
#include "sfm/kernels/cpu/attention.hpp"
#include "sfm_test.hpp"

namespace {

using sfm::AttentionShape;
using sfm::HeadsView;
using sfm::AttentionGrads;
using sfm::AttentionInputs;
using sfm::AttentionOutputs;
using sfm::SavedAttention;

// Naive reference: for each (b, h, i): s_j = scale·q_i·k_j, p = softmax(s), out_i = Σ p_j v_j.
void naive_attention(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& q,
                     const std::vector<double>& k, const std::vector<double>& v, AttentionShape s, double scale) {
  const int64_t d = s.head_dim;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.q_len; ++i) {
        const double* qi = &q[size_t(((b * s.heads + h) * s.q_len + i) * d)];
        std::vector<double> scores(size_t(s.k_len));
        double max = -INFINITY;
        for (int64_t j = 0; j < s.k_len; ++j) {
          const double* kj = &k[size_t(((b * s.heads + h) * s.k_len + j) * d)];
          double dotp = 0;
          for (int64_t c = 0; c < d; ++c) dotp += qi[c] * kj[c];
          scores[size_t(j)] = scale * dotp;
          max = std::max(max, scores[size_t(j)]);
        }
        double sum = 0;
        for (double& x : scores) sum += (x = std::exp(x - max));
        lse[size_t((b * s.heads + h) * s.q_len + i)] = max + std::log(sum);
        double* oi = &out[size_t(((b * s.heads + h) * s.q_len + i) * d)];
        for (int64_t c = 0; c < d; ++c) oi[c] = 0;
        for (int64_t j = 0; j < s.k_len; ++j)
          for (int64_t c = 0; c < d; ++c) oi[c] += scores[size_t(j)] / sum * v[size_t(((b * s.heads + h) * s.k_len + j) * d + c)];
      }
}

// Contiguous [B, H, L, d] views.
HeadsView<double> bhld(std::vector<double>& x, int64_t heads, int64_t len, int64_t d) {
  return {x.data(), heads * len * d, len * d, d};
}

}  // namespace

TEST_CASE("attention_forward equals naive softmax attention, with the log-sum-exp") {
  for (const AttentionShape s : {AttentionShape{2, 3, 7, 7, 32}, AttentionShape{1, 2, 300, 129, 64},
                                 AttentionShape{2, 1, 5, 260, 16}}) {
    const size_t nq = size_t(s.batch * s.heads * s.q_len * s.head_dim), nk = size_t(s.batch * s.heads * s.k_len * s.head_dim);
    auto q = sfm::test::random_values(nq, 1), k = sfm::test::random_values(nk, 2), v = sfm::test::random_values(nk, 3);
    const double scale = 1.0 / std::sqrt(double(s.head_dim));
    std::vector<double> out(nq), lse(size_t(s.batch * s.heads * s.q_len)), ref_out(nq), ref_lse(lse.size());
    sfm::attention_forward(sfm::Cpu{}, AttentionOutputs<double>{bhld(out, s.heads, s.q_len, s.head_dim), lse.data()},
                           AttentionInputs<double>{bhld(q, s.heads, s.q_len, s.head_dim),
                                                   bhld(k, s.heads, s.k_len, s.head_dim),
                                                   bhld(v, s.heads, s.k_len, s.head_dim), s, scale});
    naive_attention(ref_out, ref_lse, q, k, v, s, scale);
    CHECK(sfm::test::max_abs_diff<double, double>(out, ref_out) <= 1e-12);
    CHECK(sfm::test::max_abs_diff<double, double>(lse, ref_lse) <= 1e-12);
  }
}

TEST_CASE("attention on the packed qkv layout [B, L, 3, H, d] equals the contiguous layout") {
  const int64_t B = 2, H = 4, L = 131, d = 8, D = H * d;
  auto qkv = sfm::test::random_values(size_t(B * L * 3 * D), 4);
  std::vector<double> q(size_t(B * H * L * d)), k(q.size()), v(q.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t c = 0; c < d; ++c) {
          const size_t packed = size_t((b * L + t) * 3 * D + h * d + c), plain = size_t(((b * H + h) * L + t) * d + c);
          q[plain] = qkv[packed], k[plain] = qkv[packed + size_t(D)], v[plain] = qkv[packed + size_t(2 * D)];
        }
  const AttentionShape s{B, H, L, L, d};
  std::vector<double> out_packed(size_t(B * L * D)), lse1(size_t(B * H * L)), out_plain(q.size()), lse2(lse1.size());
  auto part = [&](int64_t which) { return HeadsView<double>{qkv.data() + which * D, L * 3 * D, d, 3 * D}; };
  sfm::attention_forward(sfm::Cpu{}, AttentionOutputs<double>{HeadsView<double>{out_packed.data(), L * D, d, D}, lse1.data()},
                         AttentionInputs<double>{part(0), part(1), part(2), s, 0.3});
  sfm::attention_forward(sfm::Cpu{}, AttentionOutputs<double>{bhld(out_plain, H, L, d), lse2.data()},
                         AttentionInputs<double>{bhld(q, H, L, d), bhld(k, H, L, d), bhld(v, H, L, d), s, 0.3});
  CHECK(lse1 == lse2);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t c = 0; c < d; ++c)
          CHECK(out_packed[size_t((b * L + t) * D + h * d + c)] == out_plain[size_t(((b * H + h) * L + t) * d + c)]);
}

TEST_CASE("attention_backward matches central finite differences of the forward") {
  const AttentionShape s{1, 2, 150, 37, 8};  // two query tiles, uneven lengths
  const size_t nq = size_t(s.heads * s.q_len * s.head_dim), nk = size_t(s.heads * s.k_len * s.head_dim);
  auto q = sfm::test::random_values(nq, 5), k = sfm::test::random_values(nk, 6), v = sfm::test::random_values(nk, 7);
  const auto weight = sfm::test::random_values(nq, 8);  // loss = Σ weight ∘ out
  const double scale = 0.35;
  std::vector<double> out(nq), lse(size_t(s.heads * s.q_len));
  auto inputs = [&] {
    return AttentionInputs<double>{bhld(q, s.heads, s.q_len, s.head_dim), bhld(k, s.heads, s.k_len, s.head_dim),
                                   bhld(v, s.heads, s.k_len, s.head_dim), s, scale};
  };
  auto forward = [&] {
    sfm::attention_forward(sfm::Cpu{}, AttentionOutputs<double>{bhld(out, s.heads, s.q_len, s.head_dim), lse.data()},
                           inputs());
    return sfm::test::dot(out, weight);
  };
  forward();
  std::vector<double> dq(nq), dk(nk), dv(nk), d_out = weight;
  sfm::attention_backward(sfm::Cpu{},
                          AttentionGrads<double>{bhld(dq, s.heads, s.q_len, s.head_dim),
                                                 bhld(dk, s.heads, s.k_len, s.head_dim),
                                                 bhld(dv, s.heads, s.k_len, s.head_dim)},
                          bhld(d_out, s.heads, s.q_len, s.head_dim),
                          SavedAttention<double>{bhld(out, s.heads, s.q_len, s.head_dim), lse.data()}, inputs());
  for (size_t i = 0; i < nq; i += 97) CHECK(std::abs(dq[i] - sfm::test::numeric_derivative(q, i, forward)) <= 1e-7);
  for (size_t i = 0; i < nk; i += 23) {
    CHECK(std::abs(dk[i] - sfm::test::numeric_derivative(k, i, forward)) <= 1e-7);
    CHECK(std::abs(dv[i] - sfm::test::numeric_derivative(v, i, forward)) <= 1e-7);
  }
}

TEST_CASE("attention forward and backward are bitwise the same on 1, 2 and 3 threads") {
  // fp32 (the model's type), three query tiles with a short last one (128 + 128 + 44 rows), and a
  // padded block, so each thread reuses its score tiles across pairs and tiles of different sizes.
  const AttentionShape s{2, 3, 300, 300, 16};
  const size_t n = size_t(s.batch * s.heads * s.q_len * s.head_dim);
  auto floats = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  auto q = floats(sfm::test::random_values(n, 11)), k = floats(sfm::test::random_values(n, 12)),
       v = floats(sfm::test::random_values(n, 13)), d_out = floats(sfm::test::random_values(n, 14));
  auto view = [&](std::vector<float>& x) {
    return HeadsView<float>{x.data(), s.heads * s.q_len * s.head_dim, s.q_len * s.head_dim, s.head_dim};
  };
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> out(n), lse(size_t(s.batch * s.heads * s.q_len)), dq(n), dk(n), dv(n), block_out(n),
        block_lse(lse.size());
    const AttentionInputs<float> in{view(q), view(k), view(v), s, 0.25f};
    sfm::attention_forward(sfm::Cpu{}, AttentionOutputs<float>{view(out), lse.data()}, in);
    sfm::attention_backward(sfm::Cpu{}, AttentionGrads<float>{view(dq), view(dk), view(dv)}, view(d_out),
                            SavedAttention<float>{view(out), lse.data()}, in);
    sfm::attention_forward_block(sfm::Cpu{}, AttentionOutputs<float>{view(block_out), block_lse.data()}, in,
                                 sfm::ValidRows{257, 190});
    return std::vector<std::vector<float>>{out, lse, dq, dk, dv, block_out, block_lse};
  };
  const int threads = omp_get_max_threads();
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
  omp_set_num_threads(threads);
}
