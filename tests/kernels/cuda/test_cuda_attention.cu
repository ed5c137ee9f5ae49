// CUDA flash attention (kernels/cuda/attention.cuh) against the CPU kernel, forward (out, lse) and
// backward (dQ, dK, dV), called with the argument structs of kernels/attention_args.hpp, on the packed qkv layout [B, L, 3, H, d] the model uses, at N = 129, 513,
// 2049, 8193 with head dims 32 and 64 (8, 16 and 128 at small N), uneven q/k lengths, fp32 and bf16;
// determinism (two runs bitwise equal). Outputs start as NaN so unwritten elements fail.
//
// Tolerances (max|gpu − cpu| / max|cpu| per tensor): fp32 5e-5 (long fp32 sums in different
// orders; a wrong index gives errors of order 1); bf16 2e-2 (the CPU runs in fp32 on the same
// bf16-rounded inputs; the GPU rounds its outputs to bf16); lse is fp32 on both sides: 1e-5.
//
// [.bench] (hidden; run with `test_cuda_kernels "[.bench]"`): attention fwd / bwd TFLOP/s at the
// issue's shapes, one JSON line per shape and type.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_util.hpp"
#include "sfm/kernels/cuda/attention.cuh"
// The whole backend, as test_cuda_kernels.cu includes it: two translation units of one binary that
// include the header-only CUDA backend must link (every non-template kernel is inline).
#include "sfm/kernels/cuda/kernels.cuh"

using sfm::AttentionGrads;
using sfm::AttentionInputs;
using sfm::AttentionOutputs;
using sfm::AttentionShape;
using sfm::Cuda;
using sfm::DeviceArray;
using sfm::HeadsView;
using namespace sfm::test;

namespace {


// Where Q, K, V, O live: packed ([B, L, 3, H, d] for qkv, [B, L, H, d] for o), or contiguous
// [B, H, L, d] buffers (needed when q_len != k_len).
struct Layout {
  AttentionShape s;
  bool packed;

  size_t q_size() const { return size_t(s.batch * s.heads * s.q_len * s.head_dim); }
  size_t kv_size() const { return size_t(s.batch * s.heads * s.k_len * s.head_dim); }
  // Elements of the one buffer holding q, k, v: packed [B, L, 3, H, d], else [q | k | v].
  size_t qkv_size() const { return packed ? 3 * q_size() : q_size() + 2 * kv_size(); }
  // which: 0 = q, 1 = k, 2 = v.
  template <class T>
  HeadsView<T> part(T* qkv, int which) const {
    const int64_t H = s.heads, d = s.head_dim;
    if (packed) return {qkv + which * H * d, s.q_len * 3 * H * d, d, 3 * H * d};
    const int64_t len = which == 0 ? s.q_len : s.k_len;
    T* base = qkv + (which == 0 ? 0 : int64_t(q_size()) + (which - 1) * int64_t(kv_size()));
    return {base, H * len * d, len * d, d};
  }
  // The inputs of an attention call on this buffer.
  template <class T>
  AttentionInputs<T> inputs(const T* qkv, float scale) const {
    return {part(qkv, 0), part(qkv, 1), part(qkv, 2), s, scale};
  }
  template <class T>
  AttentionGrads<T> grads(T* d_qkv) const {
    return {part(d_qkv, 0), part(d_qkv, 1), part(d_qkv, 2)};
  }
  template <class T>
  HeadsView<T> out(T* o) const {
    const int64_t H = s.heads, d = s.head_dim;
    if (packed) return {o, s.q_len * H * d, d, H * d};
    return {o, H * s.q_len * d, s.q_len * d, d};
  }
};

// The elements of one part (q, k or v) of a qkv buffer, in (b, h, t, c) order.
std::vector<float> extract(const std::vector<float>& qkv, const Layout& layout, int which) {
  const AttentionShape& s = layout.s;
  const int64_t len = which == 0 ? s.q_len : s.k_len;
  const HeadsView<const float> view = layout.part(qkv.data(), which);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(s.batch * s.heads * len * s.head_dim));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < len; ++t)
        for (int64_t c = 0; c < s.head_dim; ++c) out.push_back(view.at(b, h)[t * view.token_stride + c]);
  return out;
}

struct CpuResult {
  std::vector<float> out, lse, d_qkv;
};

// The CPU forward on fp32 copies of the inputs.
CpuResult cpu_forward(const Layout& layout, const std::vector<float>& qkv, float scale) {
  const AttentionShape& s = layout.s;
  CpuResult r;
  r.out.assign(layout.q_size(), 0.0f);
  r.lse.assign(size_t(s.batch * s.heads * s.q_len), 0.0f);
  ref::attention_forward({layout.out(r.out.data()), r.lse.data()}, layout.inputs(qkv.data(), scale));
  return r;
}

// The CPU backward into r.d_qkv, from the given out (the forward's, rounded to T) and r.lse.
void cpu_backward(CpuResult& r, const Layout& layout, const std::vector<float>& qkv, const std::vector<float>& d_out,
                  const std::vector<float>& out_for_backward, float scale) {
  r.d_qkv.assign(qkv.size(), 0.0f);
  ref::attention_backward(layout.grads(r.d_qkv.data()), layout.out(d_out.data()),
                          {layout.out(out_for_backward.data()), r.lse.data()}, layout.inputs(qkv.data(), scale));
}

template <class T>
struct GpuResult {
  std::vector<float> out, lse, d_qkv;
};

// The GPU forward, and the backward fed with the same out and lse as the CPU's backward.
template <class T>
GpuResult<T> gpu_attention(const Layout& layout, const std::vector<float>& qkv, const std::vector<float>& d_out,
                           const std::vector<float>& out_for_backward, const std::vector<float>& lse_for_backward,
                           float scale, bool backward) {
  const AttentionShape& s = layout.s;
  auto g_qkv = upload<T>(qkv);
  auto g_out = poisoned<T>(layout.q_size());
  auto g_lse = poisoned<float>(static_cast<size_t>(s.batch * s.heads * s.q_len));
  const AttentionInputs<T> in = layout.inputs<T>(g_qkv.data(), scale);
  sfm::attention_forward(Cuda{}, AttentionOutputs<T>{layout.out(g_out.data()), g_lse.data()}, in);
  GpuResult<T> r{download(g_out), download(g_lse), {}};
  if (backward) {
    auto g_dout = upload<T>(d_out), g_o = upload<T>(out_for_backward);
    auto g_l = upload<float>(lse_for_backward);
    auto g_dqkv = poisoned<T>(qkv.size());
    sfm::attention_backward(Cuda{}, layout.grads(g_dqkv.data()), layout.out<const T>(g_dout.data()),
                            sfm::SavedAttention<T>{layout.out<const T>(g_o.data()), g_l.data()}, in);
    r.d_qkv = download(g_dqkv);
  }
  return r;
}

template <class T>
void attention_case(const Layout& layout, bool backward = true) {
  const AttentionShape& s = layout.s;
  const float scale = float(1.0 / std::sqrt(double(s.head_dim)));
  const uint64_t seed = uint64_t(s.q_len * 7 + s.k_len * 3 + s.head_dim);
  const auto qkv = rounded<T>(randn(layout.qkv_size(), 1000 + seed));
  const auto d_out = rounded<T>(randn(layout.q_size(), 2000 + seed));
  // Forward first; the backward on both sides then takes the CPU's out (rounded to T) and lse.
  CpuResult want = cpu_forward(layout, qkv, scale);
  const auto out_for_backward = rounded<T>(want.out);
  if (backward) cpu_backward(want, layout, qkv, d_out, out_for_backward, scale);
  const GpuResult<T> got = gpu_attention<T>(layout, qkv, d_out, out_for_backward, want.lse, scale, backward);

  const std::string shape = "B" + std::to_string(s.batch) + " H" + std::to_string(s.heads) + " Lq" +
                            std::to_string(s.q_len) + " Lk" + std::to_string(s.k_len) + " d" +
                            std::to_string(s.head_dim) + (layout.packed ? " packed" : " bhld");
  const std::string prefix = std::string(type_name<T>()) + " attention ";
  check_close(prefix + "out " + shape, got.out, want.out, attn_tol<T>());
  check_close(prefix + "lse " + shape, got.lse, want.lse, kTolLse);
  if (!backward) return;
  // Gradients are measured against dV's scale too: dQ and dK vanish exactly when a query sees a
  // single key (the softmax is constant), where their own scale would be zero.
  const auto want_dv = extract(want.d_qkv, layout, 2);
  const double gradient_scale = max_abs(std::span<const float>(want_dv));
  const char* names[3] = {"dq ", "dk ", "dv "};
  for (int which = 0; which < 3; ++which)
    check_close(prefix + names[which] + shape, extract(got.d_qkv, layout, which), extract(want.d_qkv, layout, which),
                attn_tol<T>(), gradient_scale);
}

Layout packed(int64_t B, int64_t H, int64_t N, int64_t d) { return {AttentionShape{B, H, N, N, d}, true}; }
Layout bhld(int64_t B, int64_t H, int64_t q_len, int64_t k_len, int64_t d) {
  return {AttentionShape{B, H, q_len, k_len, d}, false};
}

}  // namespace

TEST_CASE("CUDA attention matches the CPU on the packed layout, small N, d = 8/16/32/64/128", "[cuda][attention]") {
  for (int64_t d : {8, 16, 32, 64, 128}) {
    attention_case<float>(packed(2, 3, 129, d));
    attention_case<sfm::bf16>(packed(2, 3, 129, d));
  }
  attention_case<float>(packed(1, 2, 64, 64));  // exactly one tile
  attention_case<float>(packed(1, 2, 257, 128));
  attention_case<sfm::bf16>(packed(1, 2, 257, 128));
}

TEST_CASE("CUDA attention matches the CPU with uneven and tiny lengths", "[cuda][attention]") {
  attention_case<float>(bhld(2, 3, 100, 300, 64));
  attention_case<float>(bhld(2, 3, 300, 100, 32));
  attention_case<float>(bhld(1, 1, 1, 1, 32));
  attention_case<float>(bhld(1, 2, 65, 63, 128));
  attention_case<float>(bhld(2, 2, 70, 130, 8));
  attention_case<float>(bhld(2, 2, 130, 70, 16));
  attention_case<sfm::bf16>(bhld(2, 3, 100, 300, 64));
  attention_case<sfm::bf16>(bhld(1, 2, 1, 70, 32));
}

TEST_CASE("CUDA attention matches the CPU at N = 513 and 2049", "[cuda][attention]") {
  for (int64_t d : {32, 64}) {
    attention_case<float>(packed(2, 2, 513, d));
    attention_case<sfm::bf16>(packed(2, 2, 513, d));
    attention_case<float>(packed(1, 2, 2049, d));
    attention_case<sfm::bf16>(packed(1, 2, 2049, d));
  }
}

TEST_CASE("CUDA attention matches the CPU at N = 8193", "[cuda][attention][slow]") {
  for (int64_t d : {32, 64}) {
    attention_case<float>(packed(1, 2, 8193, d));
    attention_case<sfm::bf16>(packed(1, 2, 8193, d));
  }
}

TEST_CASE("CUDA attention forward and backward are deterministic", "[cuda][attention][determinism]") {
  const Layout layout = packed(2, 3, 513, 64);
  const auto qkv = randn(layout.qkv_size(), 3001), d_out = randn(layout.q_size(), 3002);
  const float scale = 0.125f;
  const CpuResult fwd = cpu_forward(layout, qkv, scale);
  auto run_twice = [&](auto tag) {
    using T = decltype(tag);
    const auto o = rounded<T>(fwd.out);
    const GpuResult<T> a = gpu_attention<T>(layout, qkv, d_out, o, fwd.lse, scale, true);
    const GpuResult<T> b = gpu_attention<T>(layout, qkv, d_out, o, fwd.lse, scale, true);
    INFO(type_name<T>());
    CHECK(bitwise_equal(a.out, b.out));
    CHECK(bitwise_equal(a.lse, b.lse));
    CHECK(bitwise_equal(a.d_qkv, b.d_qkv));
  };
  run_twice(float{});
  run_twice(sfm::bf16{});
}

// Attention throughput at the issue's shapes: encoder (B=64, H=12, N=129, d=64) and decoder
// (B=64, H=16, N=513, d=32). FLOPs as FlashAttention counts them: forward 4·B·H·N²·d, backward 2.5×.
TEST_CASE("attention throughput", "[.bench]") {
  struct Shape {
    const char* name;
    int64_t B, H, N, d;
  };
  for (const Shape shape : {Shape{"base_encoder", 64, 12, 129, 64}, Shape{"base_decoder", 64, 16, 513, 32}}) {
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const Layout layout = packed(shape.B, shape.H, shape.N, shape.d);
      const AttentionShape& s = layout.s;
      const float scale = float(1.0 / std::sqrt(double(s.head_dim)));
      auto qkv = upload<T>(randn(layout.qkv_size(), 4001));
      auto d_out = upload<T>(randn(layout.q_size(), 4002));
      DeviceArray<T> out(layout.q_size()), d_qkv(layout.qkv_size());
      DeviceArray<float> lse(static_cast<size_t>(s.batch * s.heads * s.q_len));
      const AttentionInputs<T> in = layout.inputs<T>(qkv.data(), scale);
      const AttentionOutputs<T> o{layout.out(out.data()), lse.data()};
      auto forward = [&] { sfm::attention_forward(Cuda{}, o, in); };
      auto backward = [&] {
        sfm::attention_backward(Cuda{}, layout.grads(d_qkv.data()), layout.out<const T>(d_out.data()), o.saved(), in);
      };
      cudaStream_t stream = sfm::cuda_context().stream;
      auto time_ms = [&](auto&& f, int iterations) {
        for (int i = 0; i < 3; ++i) f();  // warm-up
        cudaEvent_t start, stop;
        SFM_CUDA_CHECK(cudaEventCreate(&start));
        SFM_CUDA_CHECK(cudaEventCreate(&stop));
        SFM_CUDA_CHECK(cudaEventRecord(start, stream));
        for (int i = 0; i < iterations; ++i) f();
        SFM_CUDA_CHECK(cudaEventRecord(stop, stream));
        SFM_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SFM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        SFM_CUDA_CHECK(cudaEventDestroy(start));
        SFM_CUDA_CHECK(cudaEventDestroy(stop));
        return double(ms) / iterations;
      };
      const double fwd_ms = time_ms(forward, 20);
      const double bwd_ms = time_ms(backward, 20);
      const double fwd_flops = 4.0 * double(s.batch * s.heads) * double(s.q_len) * double(s.k_len) * double(s.head_dim);
      const double bwd_flops = 2.5 * fwd_flops;
      std::printf("{\"bench\": \"attention\", \"shape\": \"%s\", \"impl\": \"sfm_simt\", \"dtype\": \"%s\", \"B\": %lld, "
                  "\"H\": %lld, \"N\": %lld, \"d\": %lld, \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_tflops\": %.2f, "
                  "\"bwd_tflops\": %.2f, \"fwd_bwd_tflops\": %.2f}\n",
                  shape.name, type_name<T>(), (long long)shape.B, (long long)shape.H, (long long)shape.N,
                  (long long)shape.d, fwd_ms, bwd_ms, fwd_flops / fwd_ms * 1e-9, bwd_flops / bwd_ms * 1e-9,
                  (fwd_flops + bwd_flops) / (fwd_ms + bwd_ms) * 1e-9);
    };
    run(sfm::bf16{});
    run(float{});
  }
}
