// bf16 storage on the CPU backend (kernels/cpu/bf16_storage.hpp, kernels/cpu/element.hpp): every
// kernel on bf16 operands equals the fp32 kernel on the same (bf16-representable) values with each
// bf16 output rounded once to nearest even — bit for bit — while parameter gradients and statistics
// stay fp32 and equal the fp32 kernel's exactly. That is the mixed-precision rule the CUDA kernels
// follow (fp32 arithmetic, one rounding on store); a kernel that rounded an intermediate, rounded a
// gradient to bf16 or accumulated in bf16 fails here.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernel_test_util.hpp"
#include "sfm/core/bf16.hpp"
#include "sfm/core/rng.hpp"
#include "sfm/kernels/cpu/kernels.hpp"
#include "sfm_test.hpp"

using sfm::AttentionGrads;
using sfm::AttentionInputs;
using sfm::AttentionOutputs;
using sfm::AttentionShape;
using sfm::bf16;
using sfm::Cpu;
using sfm::HeadsView;
using sfm::SavedAttention;
using sfm::TokenRows;
using sfm::ValidRows;

namespace {

// n values of normal(0, scale) that bf16 represents exactly, as fp32 and as bf16.
struct Values {
  std::vector<float> f;
  std::vector<bf16> b;

  Values(size_t n, uint64_t stream, float scale = 1.0f) : f(n) {
    sfm::Rng(77, stream).fill_normal(f, 0.0f, scale);
    for (float& x : f) x = sfm::to_float(sfm::to_bf16(x));
    for (float x : f) b.push_back(sfm::to_bf16(x));
  }
};

// Counts the elements where `got` is not the fp32 result rounded once.
size_t rounding_mismatches(const std::vector<bf16>& got, const std::vector<float>& fp32) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += got[i].bits != sfm::to_bf16(fp32[i]).bits;
  return bad;
}

// Contiguous [B, H, L, d] views.
template <class T>
HeadsView<T> bhld(std::vector<T>& x, const AttentionShape& s, int64_t rows) {
  return {x.data(), s.heads * rows * s.head_dim, rows * s.head_dim, s.head_dim};
}
template <class T>
HeadsView<const T> bhld(const std::vector<T>& x, const AttentionShape& s, int64_t rows) {
  return {x.data(), s.heads * rows * s.head_dim, rows * s.head_dim, s.head_dim};
}

}  // namespace

TEST_CASE("bf16 linear and LayerNorm: fp32 arithmetic, one rounding, fp32 parameter gradients") {
  const int64_t rows = 37, in_dim = 48, out_dim = 40;
  const Values x(static_cast<size_t>(rows * in_dim), 1), w(static_cast<size_t>(out_dim * in_dim), 2, 0.2f), b(static_cast<size_t>(out_dim), 3),
      dy(static_cast<size_t>(rows * out_dim), 4);
  std::vector<float> y32(static_cast<size_t>(rows * out_dim)), dx32(x.f.size()), dw32(w.f.size(), 0.5f), db32(b.f.size(), 0.25f);
  std::vector<bf16> y16(y32.size()), dx16(dx32.size());
  std::vector<float> dw16(dw32), db16(db32);
  sfm::linear_forward(Cpu{}, y32.data(), x.f.data(), w.f.data(), b.f.data(), rows, in_dim, out_dim);
  sfm::linear_forward(Cpu{}, y16.data(), x.b.data(), w.b.data(), b.b.data(), rows, in_dim, out_dim);
  CHECK(rounding_mismatches(y16, y32) == 0);
  sfm::linear_backward(Cpu{}, dx32.data(), dw32.data(), db32.data(), dy.f.data(), x.f.data(), w.f.data(), rows, in_dim,
                       out_dim);
  sfm::linear_backward(Cpu{}, dx16.data(), dw16.data(), db16.data(), dy.b.data(), x.b.data(), w.b.data(), rows, in_dim,
                       out_dim);
  CHECK(rounding_mismatches(dx16, dx32) == 0);
  CHECK(dw16 == dw32);  // accumulated onto 0.5 in fp32, not rounded
  CHECK(db16 == db32);

  const int64_t dim = in_dim;
  const Values gamma(static_cast<size_t>(dim), 5), beta(static_cast<size_t>(dim), 6), d_ln(x.f.size(), 7), residual(x.f.size(), 8);
  std::vector<float> ln32(x.f.size()), mean32(static_cast<size_t>(rows)), rstd32(static_cast<size_t>(rows)), mean16(mean32), rstd16(rstd32);
  std::vector<bf16> ln16(x.f.size());
  sfm::layernorm_forward(Cpu{}, ln32.data(), mean32.data(), rstd32.data(), x.f.data(), gamma.f.data(), beta.f.data(),
                         rows, dim, 1e-6);
  sfm::layernorm_forward(Cpu{}, ln16.data(), mean16.data(), rstd16.data(), x.b.data(), gamma.b.data(), beta.b.data(),
                         rows, dim, 1e-6);
  CHECK(rounding_mismatches(ln16, ln32) == 0);
  CHECK(mean16 == mean32);
  CHECK(rstd16 == rstd32);
  std::vector<float> dres32 = residual.f, dg32(static_cast<size_t>(dim)), dbeta32(static_cast<size_t>(dim)), dg16(dg32), dbeta16(dbeta32);
  std::vector<bf16> dres16 = residual.b;
  sfm::layernorm_backward(Cpu{}, dres32.data(), dg32.data(), dbeta32.data(), d_ln.f.data(), x.f.data(), mean32.data(),
                          rstd32.data(), gamma.f.data(), rows, dim);
  sfm::layernorm_backward(Cpu{}, dres16.data(), dg16.data(), dbeta16.data(), d_ln.b.data(), x.b.data(), mean16.data(),
                          rstd16.data(), gamma.b.data(), rows, dim);
  CHECK(rounding_mismatches(dres16, dres32) == 0);  // the residual gradient accumulates: one rounding of the sum
  CHECK(dg16 == dg32);
  CHECK(dbeta16 == dbeta32);
}

TEST_CASE("bf16 GELU, elementwise, patchify, tokens and the MAE loss round once") {
  const Values x(1000, 10, 2.0f), d(1000, 11), y(1000, 12);
  std::vector<float> g32(1000), dg32(1000);
  std::vector<bf16> g16(1000), dg16(1000);
  sfm::gelu_forward(Cpu{}, g32.data(), x.f.data(), 1000);
  sfm::gelu_forward(Cpu{}, g16.data(), x.b.data(), 1000);
  CHECK(rounding_mismatches(g16, g32) == 0);
  sfm::gelu_backward(Cpu{}, dg32.data(), d.f.data(), x.f.data(), 1000);
  sfm::gelu_backward(Cpu{}, dg16.data(), d.b.data(), x.b.data(), 1000);
  CHECK(rounding_mismatches(dg16, dg32) == 0);
  std::vector<float> sum32 = y.f;
  std::vector<bf16> sum16 = y.b;
  sfm::add_inplace(Cpu{}, sum32.data(), x.f.data(), 1000);
  sfm::add_inplace(Cpu{}, sum16.data(), x.b.data(), 1000);
  CHECK(rounding_mismatches(sum16, sum32) == 0);
  sfm::fill_zero(Cpu{}, sum16.data(), 1000);
  CHECK(std::all_of(sum16.begin(), sum16.end(), [](bf16 v) { return v.bits == 0; }));

  // An fp32 volume (not bf16-representable) into bf16 patches: each voxel rounded once.
  const sfm::PatchGrid grid{{8, 8, 16}, {4, 4, 8}};
  std::vector<float> volume(static_cast<size_t>(2 * grid.voxels()));
  sfm::Rng(3, 4).fill_normal(volume, 0.0f, 1.0f);
  std::vector<float> p32(volume.size());
  std::vector<bf16> p16(volume.size());
  sfm::patchify(Cpu{}, p32.data(), volume.data(), 2, grid);
  sfm::patchify(Cpu{}, p16.data(), volume.data(), 2, grid);
  CHECK(rounding_mismatches(p16, p32) == 0);

  // Rows: positional embedding added in fp32 and rounded; the cls/mask-token gradient summed into fp32.
  const int64_t B = 2, N = 25, D = 20;
  const Values rows(static_cast<size_t>(B * N * D), 13), table(static_cast<size_t>(N * D), 14);
  std::vector<float> r32 = rows.f, s32(static_cast<size_t>(D), 1.0f), s16(s32);
  std::vector<bf16> r16 = rows.b;
  sfm::add_rows_broadcast(Cpu{}, TokenRows<float>{r32.data(), N}, table.f.data(), B, N, D);
  sfm::add_rows_broadcast(Cpu{}, TokenRows<bf16>{r16.data(), N}, table.b.data(), B, N, D);
  CHECK(rounding_mismatches(r16, r32) == 0);
  std::vector<uint8_t> select(static_cast<size_t>(B * N));
  for (size_t i = 0; i < select.size(); ++i) select[i] = uint8_t(i % 3 != 0);
  sfm::sum_rows(Cpu{}, s32.data(), TokenRows<const float>{rows.f.data(), N}, select.data(), B, N, D);
  sfm::sum_rows(Cpu{}, s16.data(), TokenRows<const bf16>{rows.b.data(), N}, select.data(), B, N, D);
  CHECK(s16 == s32);

  // The loss: the same double, and its gradient rounded once.
  const int64_t P = 16;
  const Values pred(static_cast<size_t>(B * N * P), 15), target(static_cast<size_t>(B * N * P), 16);
  std::vector<float> dp32(pred.f.size());
  std::vector<bf16> dp16(pred.f.size());
  for (bool norm_pix : {false, true}) {
    const double l32 = sfm::mae_loss(Cpu{}, TokenRows<float>{dp32.data(), N}, TokenRows<const float>{pred.f.data(), N},
                                     target.f.data(), select.data(), B, N, P, norm_pix, 40.0);
    const double l16 = sfm::mae_loss(Cpu{}, TokenRows<bf16>{dp16.data(), N}, TokenRows<const bf16>{pred.b.data(), N},
                                     target.b.data(), select.data(), B, N, P, norm_pix, 40.0);
    CHECK(l16 == l32);
    // d_pred is rounded from double: once to fp32 there, once more (fp32 → bf16) here; compare with
    // the bf16 of the fp32 gradient.
    CHECK(rounding_mismatches(dp16, dp32) == 0);
  }
}

TEST_CASE("bf16 attention, whole and blockwise, is the fp32 attention rounded once") {
  const AttentionShape s{2, 3, 129, 129, 32};
  const int64_t n = s.batch * s.heads * s.q_len * s.head_dim, stats = s.batch * s.heads * s.q_len;
  const Values q(static_cast<size_t>(n), 20), k(static_cast<size_t>(n), 21), v(static_cast<size_t>(n), 22), d_out(static_cast<size_t>(n), 23);
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  const AttentionInputs<float> in32{bhld(q.f, s, s.q_len), bhld(k.f, s, s.k_len), bhld(v.f, s, s.k_len), s, scale};
  const AttentionInputs<bf16> in16{bhld(q.b, s, s.q_len), bhld(k.b, s, s.k_len), bhld(v.b, s, s.k_len), s, scale};

  std::vector<float> o32(static_cast<size_t>(n)), lse32(static_cast<size_t>(stats)), lse16(static_cast<size_t>(stats));
  std::vector<bf16> o16(static_cast<size_t>(n));
  sfm::attention_forward(Cpu{}, AttentionOutputs<float>{bhld(o32, s, s.q_len), lse32.data()}, in32);
  sfm::attention_forward(Cpu{}, AttentionOutputs<bf16>{bhld(o16, s, s.q_len), lse16.data()}, in16);
  CHECK(rounding_mismatches(o16, o32) == 0);
  CHECK(lse16 == lse32);

  // The backward reads the bf16 output, so the fp32 reference is run on that rounded output.
  std::vector<float> o_rounded(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) o_rounded[size_t(i)] = sfm::to_float(o16[size_t(i)]);
  std::vector<float> dq32(static_cast<size_t>(n)), dk32(static_cast<size_t>(n)), dv32(static_cast<size_t>(n));
  std::vector<bf16> dq16(static_cast<size_t>(n)), dk16(static_cast<size_t>(n)), dv16(static_cast<size_t>(n));
  sfm::attention_backward(Cpu{}, AttentionGrads<float>{bhld(dq32, s, s.q_len), bhld(dk32, s, s.k_len), bhld(dv32, s, s.k_len)},
                          bhld(d_out.f, s, s.q_len), SavedAttention<float>{bhld(o_rounded, s, s.q_len), lse32.data()},
                          in32);
  sfm::attention_backward(Cpu{}, AttentionGrads<bf16>{bhld(dq16, s, s.q_len), bhld(dk16, s, s.k_len), bhld(dv16, s, s.k_len)},
                          bhld(d_out.b, s, s.q_len), SavedAttention<bf16>{bhld(o16, s, s.q_len), lse16.data()}, in16);
  CHECK(rounding_mismatches(dq16, dq32) == 0);
  CHECK(rounding_mismatches(dk16, dk32) == 0);
  CHECK(rounding_mismatches(dv16, dv32) == 0);

  // A padded block (100 queries, 70 keys valid) accumulating onto existing gradients: the valid rows
  // are the fp32 sums rounded once, the padded rows keep their bits.
  const ValidRows valid{100, 70};
  std::vector<float> pl32(static_cast<size_t>(stats)), pl16(static_cast<size_t>(stats)), po32(static_cast<size_t>(n));
  std::vector<bf16> po16(static_cast<size_t>(n));
  sfm::attention_forward_block(Cpu{}, AttentionOutputs<float>{bhld(po32, s, s.q_len), pl32.data()}, in32, valid);
  sfm::attention_forward_block(Cpu{}, AttentionOutputs<bf16>{bhld(po16, s, s.q_len), pl16.data()}, in16, valid);
  CHECK(rounding_mismatches(po16, po32) == 0);
  CHECK(pl16 == pl32);
  std::vector<float> delta(static_cast<size_t>(stats), 0.0f), delta16(static_cast<size_t>(stats), 0.0f);
  sfm::attention_backward_delta(Cpu{}, delta.data(), bhld(d_out.f, s, s.q_len), bhld(q.f, s, s.q_len), s,
                                valid.queries);
  sfm::attention_backward_delta(Cpu{}, delta16.data(), bhld(d_out.b, s, s.q_len), bhld(q.b, s, s.q_len), s,
                                valid.queries);
  CHECK(delta16 == delta);
  std::vector<float> ga32 = d_out.f, gb32 = v.f, gc32 = k.f;
  std::vector<bf16> ga16 = d_out.b, gb16 = v.b, gc16 = k.b;
  sfm::attention_backward_block(Cpu{}, AttentionGrads<float>{bhld(ga32, s, s.q_len), bhld(gb32, s, s.k_len), bhld(gc32, s, s.k_len)},
                                bhld(d_out.f, s, s.q_len), pl32.data(), delta.data(), in32, valid);
  sfm::attention_backward_block(Cpu{}, AttentionGrads<bf16>{bhld(ga16, s, s.q_len), bhld(gb16, s, s.k_len), bhld(gc16, s, s.k_len)},
                                bhld(d_out.b, s, s.q_len), pl16.data(), delta16.data(), in16, valid);
  CHECK(rounding_mismatches(ga16, ga32) == 0);
  CHECK(rounding_mismatches(gb16, gb32) == 0);
  CHECK(rounding_mismatches(gc16, gc32) == 0);
  size_t padding_changed = 0;
  for (int64_t bh = 0; bh < s.batch * s.heads; ++bh)
    for (int64_t t = valid.keys; t < s.k_len; ++t)
      for (int64_t c = 0; c < s.head_dim; ++c) {
        const size_t i = size_t((bh * s.k_len + t) * s.head_dim + c);
        padding_changed += gb16[i].bits != v.b[i].bits;
      }
  CHECK(padding_changed == 0);

  // Merge of two partial results (the whole attention and the padded block): the fp32 merge of the
  // same bf16 values, rounded once.
  auto wide = [](const std::vector<bf16>& x) {
    std::vector<float> w(x.size());
    for (size_t i = 0; i < x.size(); ++i) w[i] = sfm::to_float(x[i]);
    return w;
  };
  std::vector<float> m_ref = wide(o16), part_ref = wide(po16), ml_ref = lse16, ml16 = lse16;
  std::vector<bf16> m16 = o16;
  sfm::attention_merge(Cpu{}, AttentionOutputs<float>{bhld(m_ref, s, s.q_len), ml_ref.data()},
                       SavedAttention<float>{bhld(part_ref, s, s.q_len), pl16.data()}, s);
  sfm::attention_merge(Cpu{}, AttentionOutputs<bf16>{bhld(m16, s, s.q_len), ml16.data()},
                       SavedAttention<bf16>{bhld(po16, s, s.q_len), pl16.data()}, s);
  CHECK(rounding_mismatches(m16, m_ref) == 0);
  CHECK(ml16 == ml_ref);
  std::vector<bf16> copy(static_cast<size_t>(n));
  sfm::copy_heads(Cpu{}, bhld(copy, s, s.q_len), bhld(q.b, s, s.q_len), s.batch, s.heads, s.q_len, s.head_dim);
  CHECK(rounding_mismatches(copy, q.f) == 0);
  sfm::zero_heads(Cpu{}, bhld(copy, s, s.q_len), s.batch, s.heads, s.q_len, s.head_dim);
  CHECK(std::all_of(copy.begin(), copy.end(), [](bf16 x) { return x.bits == 0; }));
}

TEST_CASE("AdamW on fp32 master weights writes their bf16 compute copy") {
  const Values g(500, 30);
  std::vector<float> p(500, 0.3f), m(500, 0.0f), v(500, 0.0f), p_ref = p, m_ref = m, v_ref = v;
  std::vector<bf16> copy(500);
  const sfm::AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.05, 1, 1.0};
  sfm::adamw_update(Cpu{}, p.data(), g.f.data(), m.data(), v.data(), 500, h, copy.data());
  sfm::adamw_update(Cpu{}, p_ref.data(), g.f.data(), m_ref.data(), v_ref.data(), 500, h);
  CHECK(p == p_ref);
  CHECK(m == m_ref);
  CHECK(rounding_mismatches(copy, p) == 0);
}
