// CUDA blockwise attention (kernels/cuda/attention_blocks.cuh) against the CPU block kernels
// (kernels/cpu/attention_blocks.hpp, through cpu_reference.cpp), on padded blocks in [B, H, rows, d]
// buffers, head dims 32 and 64, fp32 and bf16, odd lengths (129, 513) split into key blocks:
//   - forward_block: valid rows out/lse against the CPU; padded query rows (and every row of a block
//     without valid keys) exactly out = +0, lse = −∞;
//   - merge: the merged key blocks equal the full attention_forward; isolated merges with empty
//     rows on either side and on both (those stay exactly (0, −∞), no NaN);
//   - backward_delta: valid rows against the CPU, padded rows bitwise unchanged;
//   - backward_block: accumulates into non-zero gradients (against the CPU's accumulation), padded
//     rows bitwise unchanged; summed over key blocks it equals the full attention_backward;
//   - copy_heads / zero_heads on strided views, exactly;
//   - run twice bitwise equal; the block forms with every row valid equal the full forms bitwise.
// Padding rows of every input are NaN, so a kernel reading one shows up as non-finite output;
// outputs start as NaN (poisoned) so unwritten elements fail. Tolerances as test_cuda_attention.cu.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_util.hpp"
#include "sfm/kernels/cuda/kernels.cuh"

using sfm::AttentionGrads;
using sfm::AttentionInputs;
using sfm::AttentionOutputs;
using sfm::AttentionShape;
using sfm::Cuda;
using sfm::DeviceArray;
using sfm::HeadsView;
using sfm::SavedAttention;
using sfm::ValidRows;
using namespace sfm::test;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Batch, heads and head dim of a case; buffers are contiguous [B, H, rows, d] (lse, delta [B, H, rows]).
struct Dims {
  int64_t B, H, d;

  size_t size(int64_t rows) const { return size_t(B * H * rows * d); }
  size_t rows_size(int64_t rows) const { return size_t(B * H * rows); }
  template <class T>
  HeadsView<T> view(T* p, int64_t rows) const {
    return {p, H * rows * d, rows * d, d};
  }
  // Rows [first, ...) of a [B, H, rows, d] buffer as a view.
  template <class T>
  HeadsView<T> view_from(T* p, int64_t rows, int64_t first) const {
    return {p + first * d, H * rows * d, rows * d, d};
  }
  AttentionShape shape(int64_t q_len, int64_t k_len) const { return {B, H, q_len, k_len, d}; }
};

// normal values in rows < valid of each (b, h), `pad` in the others.
std::vector<float> padded_randn(const Dims& dims, int64_t rows, int64_t valid, uint64_t stream, float pad = kNaN,
                                float scale = 1.0f) {
  std::vector<float> v = randn(dims.size(rows), stream, scale);
  for (int64_t bh = 0; bh < dims.B * dims.H; ++bh)
    for (int64_t t = valid; t < rows; ++t)
      for (int64_t c = 0; c < dims.d; ++c) v[size_t((bh * rows + t) * dims.d + c)] = pad;
  return v;
}

// The elements of rows [first, last) of every (b, h) of a [B, H, rows, width] buffer, in order
// (width = d for heads, 1 for lse and delta).
std::vector<float> slice_rows(const std::vector<float>& v, int64_t bh_count, int64_t rows, int64_t width,
                              int64_t first, int64_t last) {
  std::vector<float> out;
  for (int64_t bh = 0; bh < bh_count; ++bh)
    for (int64_t t = first; t < last; ++t)
      for (int64_t c = 0; c < width; ++c) out.push_back(v[size_t((bh * rows + t) * width + c)]);
  return out;
}
std::vector<float> head_rows(const Dims& dims, const std::vector<float>& v, int64_t rows, int64_t first,
                             int64_t last) {
  return slice_rows(v, dims.B * dims.H, rows, dims.d, first, last);
}
std::vector<float> stat_rows(const Dims& dims, const std::vector<float>& v, int64_t rows, int64_t first,
                             int64_t last) {
  return slice_rows(v, dims.B * dims.H, rows, 1, first, last);
}

// got and want hold the same bits (padding rows, exact zeros and −∞).
void check_bitwise(const std::string& what, const std::vector<float>& got, const std::vector<float>& want) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
  INFO(differ << " of " << got.size() << " differ; first at " << first << " (got "
              << (got.empty() ? 0.0f : got[first]) << ", want " << (want.empty() ? 0.0f : want[first]) << ")");
  CHECK(differ == 0);
}

// n copies of value.
std::vector<float> filled(size_t n, float value) { return std::vector<float>(n, value); }

std::string shape_name(const Dims& dims, int64_t q_len, int64_t k_len, ValidRows valid) {
  return "B" + std::to_string(dims.B) + " H" + std::to_string(dims.H) + " Lq" + std::to_string(q_len) + " Lk" +
         std::to_string(k_len) + " valid{" + std::to_string(valid.queries) + "," + std::to_string(valid.keys) +
         "} d" + std::to_string(dims.d);
}

// --- forward_block -------------------------------------------------------------------------------

template <class T>
void forward_block_case(const Dims& dims, int64_t q_len, int64_t k_len, ValidRows valid) {
  const float scale = float(1.0 / std::sqrt(double(dims.d)));
  const uint64_t seed = uint64_t(q_len * 7 + k_len * 3 + valid.queries * 5 + valid.keys + dims.d);
  const auto q = rounded<T>(padded_randn(dims, q_len, valid.queries, 100 + seed));
  const auto k = rounded<T>(padded_randn(dims, k_len, valid.keys, 200 + seed));
  const auto v = rounded<T>(padded_randn(dims, k_len, valid.keys, 300 + seed));
  const AttentionShape s = dims.shape(q_len, k_len);

  std::vector<float> want_out = filled(dims.size(q_len), 1.0f), want_lse = filled(dims.rows_size(q_len), 1.0f);
  ref::attention_forward_block({dims.view(want_out.data(), q_len), want_lse.data()},
                               {dims.view(q.data(), q_len), dims.view(k.data(), k_len), dims.view(v.data(), k_len), s,
                                scale},
                               valid);

  auto gq = upload<T>(q), gk = upload<T>(k), gv = upload<T>(v);
  auto g_out = poisoned<T>(dims.size(q_len));
  auto g_lse = poisoned<float>(dims.rows_size(q_len));
  const AttentionInputs<T> in{dims.view<const T>(gq.data(), q_len), dims.view<const T>(gk.data(), k_len),
                              dims.view<const T>(gv.data(), k_len), s, scale};
  sfm::attention_forward_block(Cuda{}, AttentionOutputs<T>{dims.view(g_out.data(), q_len), g_lse.data()}, in, valid);
  const auto got_out = download(g_out), got_lse = download(g_lse);

  const std::string prefix = std::string(type_name<T>()) + " forward_block ";
  const std::string name = shape_name(dims, q_len, k_len, valid);
  const int64_t computed = valid.keys > 0 ? valid.queries : 0;
  if (computed > 0) {
    check_close(prefix + "out " + name, head_rows(dims, got_out, q_len, 0, computed),
                head_rows(dims, want_out, q_len, 0, computed), attn_tol<T>());
    check_close(prefix + "lse " + name, stat_rows(dims, got_lse, q_len, 0, computed),
                stat_rows(dims, want_lse, q_len, 0, computed), kTolLse);
  }
  // Padded rows: exactly +0 and −∞, as the CPU writes them (compared with its bits, and with the
  // literal values so that the check does not hang on the reference alone).
  const size_t pad_rows = size_t(dims.B * dims.H * (q_len - computed));
  check_bitwise(prefix + "padded out " + name, head_rows(dims, got_out, q_len, computed, q_len),
                filled(pad_rows * size_t(dims.d), 0.0f));
  check_bitwise(prefix + "padded lse " + name, stat_rows(dims, got_lse, q_len, computed, q_len),
                filled(pad_rows, -kInf));
  check_bitwise(prefix + "padded out (cpu) " + name, head_rows(dims, got_out, q_len, computed, q_len),
                head_rows(dims, want_out, q_len, computed, q_len));
}

TEST_CASE("CUDA attention_forward_block matches the CPU on padded blocks", "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    const Dims dims{2, 3, d};
    auto both = [&](int64_t q_len, int64_t k_len, ValidRows valid) {
      forward_block_case<float>(dims, q_len, k_len, valid);
      forward_block_case<sfm::bf16>(dims, q_len, k_len, valid);
    };
    both(129, 129, {100, 77});  // both sides padded
    both(199, 513, {129, 513});  // a query tile of padding only (rows 192..198)
    both(513, 520, {513, 517});
    both(129, 200, {129, 0});  // no valid key: every row (0, −∞)
    both(129, 129, {0, 50});   // no valid query
    both(65, 1, {1, 1});
  }
}

// --- merge ---------------------------------------------------------------------------------------

// Device buffers of one padded key block [B, H, kb, d], built from the full K, V with copy_heads
// (the padding keeps the NaN it was poisoned with).
template <class T>
struct KeyBlock {
  DeviceArray<T> k, v;
  int64_t valid;
};

template <class T>
std::vector<KeyBlock<T>> split_keys(const Dims& dims, const DeviceArray<T>& k, const DeviceArray<T>& v, int64_t n,
                                    int64_t kb) {
  std::vector<KeyBlock<T>> blocks;
  for (int64_t first = 0; first < n; first += kb) {
    const int64_t valid = std::min(kb, n - first);
    KeyBlock<T> block{poisoned<T>(dims.size(kb)), poisoned<T>(dims.size(kb)), valid};
    sfm::copy_heads(Cuda{}, dims.view(block.k.data(), kb), dims.view_from<const T>(k.data(), n, first), dims.B,
                    dims.H, valid, dims.d);
    sfm::copy_heads(Cuda{}, dims.view(block.v.data(), kb), dims.view_from<const T>(v.data(), n, first), dims.B,
                    dims.H, valid, dims.d);
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// The forward over key blocks: block 0 into (out, lse), each later block (and, after the first, an
// empty block) into a part merged into them.
template <class T>
void blockwise_forward(const Dims& dims, AttentionOutputs<T> o, HeadsView<const T> q, int64_t q_len, int64_t queries,
                       std::vector<KeyBlock<T>>& blocks, int64_t kb, float scale) {
  const AttentionShape s = dims.shape(q_len, kb);
  auto part = poisoned<T>(dims.size(q_len));
  auto part_lse = poisoned<float>(dims.rows_size(q_len));
  const AttentionOutputs<T> p{dims.view(part.data(), q_len), part_lse.data()};
  for (size_t i = 0; i < blocks.size(); ++i) {
    const AttentionInputs<T> in{q, dims.view<const T>(blocks[i].k.data(), kb), dims.view<const T>(blocks[i].v.data(), kb),
                                s, scale};
    const ValidRows valid{queries, blocks[i].valid};
    if (i == 0) {
      sfm::attention_forward_block(Cuda{}, o, in, valid);
      continue;
    }
    sfm::attention_forward_block(Cuda{}, p, in, valid);
    sfm::attention_merge(Cuda{}, o, p.saved(), s);
    if (i == 1) {  // a block without valid keys has weight 0
      sfm::attention_forward_block(Cuda{}, p, in, ValidRows{queries, 0});
      sfm::attention_merge(Cuda{}, o, p.saved(), s);
    }
  }
}

template <class T>
void merge_case(const Dims& dims, int64_t n, int64_t q_len, int64_t kb) {
  const float scale = float(1.0 / std::sqrt(double(dims.d)));
  const uint64_t seed = uint64_t(n * 11 + q_len + kb + dims.d);
  const auto q = rounded<T>(padded_randn(dims, q_len, n, 400 + seed));  // the queries, padded to q_len
  const auto k = rounded<T>(randn(dims.size(n), 500 + seed));
  const auto v = rounded<T>(randn(dims.size(n), 600 + seed));

  // The CPU's full attention of the n queries (a view of the first n rows of q) over the n keys.
  std::vector<float> want_out(dims.size(n)), want_lse(dims.rows_size(n));
  ref::attention_forward({dims.view(want_out.data(), n), want_lse.data()},
                         {dims.view(q.data(), q_len), dims.view(k.data(), n), dims.view(v.data(), n),
                          dims.shape(n, n), scale});

  auto gq = upload<T>(q), gk = upload<T>(k), gv = upload<T>(v);
  auto blocks = split_keys(dims, gk, gv, n, kb);
  auto g_out = poisoned<T>(dims.size(q_len));
  auto g_lse = poisoned<float>(dims.rows_size(q_len));
  blockwise_forward<T>(dims, {dims.view(g_out.data(), q_len), g_lse.data()}, dims.view<const T>(gq.data(), q_len),
                       q_len, n, blocks, kb, scale);
  const auto got_out = download(g_out), got_lse = download(g_lse);

  const std::string name = shape_name(dims, q_len, kb, ValidRows{n, n}) + " in " + std::to_string(blocks.size()) +
                           " key blocks of " + std::to_string(kb);
  const std::string prefix = std::string(type_name<T>()) + " merged ";
  check_close(prefix + "out " + name, head_rows(dims, got_out, q_len, 0, n), want_out, attn_tol<T>());
  check_close(prefix + "lse " + name, stat_rows(dims, got_lse, q_len, 0, n), want_lse, kTolLse);
  const size_t pad_rows = size_t(dims.B * dims.H * (q_len - n));
  check_bitwise(prefix + "padded out " + name, head_rows(dims, got_out, q_len, n, q_len),
                filled(pad_rows * size_t(dims.d), 0.0f));
  check_bitwise(prefix + "padded lse " + name, stat_rows(dims, got_lse, q_len, n, q_len), filled(pad_rows, -kInf));
}

TEST_CASE("CUDA attention_merge of key blocks equals the full attention", "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    const Dims dims{2, 2, d};
    merge_case<float>(dims, 129, 199, 65);  // 65 + 64 keys; 70 padded queries
    merge_case<sfm::bf16>(dims, 129, 199, 65);
    merge_case<float>(dims, 513, 520, 129);  // 129 + 129 + 129 + 126 keys
    merge_case<sfm::bf16>(dims, 513, 520, 129);
  }
}

template <class T>
void isolated_merge_case(const Dims& dims, int64_t rows) {
  // Row i of every head: empty in a when i % 5 == 0, empty in b when i % 7 == 0 (both when i % 35 == 0).
  auto out_a = rounded<T>(randn(dims.size(rows), 700)), out_b = rounded<T>(randn(dims.size(rows), 701));
  auto lse_a = randn(dims.rows_size(rows), 702, 2.0f), lse_b = randn(dims.rows_size(rows), 703, 2.0f);
  for (int64_t bh = 0; bh < dims.B * dims.H; ++bh)
    for (int64_t i = 0; i < rows; ++i) {
      const size_t r = size_t(bh * rows + i);
      for (auto [out, lse, empty] : {std::tuple{&out_a, &lse_a, i % 5 == 0}, std::tuple{&out_b, &lse_b, i % 7 == 0}}) {
        if (!empty) continue;
        (*lse)[r] = -kInf;
        for (int64_t c = 0; c < dims.d; ++c) (*out)[r * size_t(dims.d) + size_t(c)] = 0.0f;
      }
    }
  const AttentionShape s = dims.shape(rows, rows);
  std::vector<float> want_out = out_a, want_lse = lse_a;
  ref::attention_merge({dims.view(want_out.data(), rows), want_lse.data()},
                       {dims.view<const float>(out_b.data(), rows), lse_b.data()}, s);

  auto g_out = upload<T>(out_a), g_part = upload<T>(out_b);
  auto g_lse = upload<float>(lse_a), g_part_lse = upload<float>(lse_b);
  sfm::attention_merge(Cuda{}, AttentionOutputs<T>{dims.view(g_out.data(), rows), g_lse.data()},
                       SavedAttention<T>{dims.view<const T>(g_part.data(), rows), g_part_lse.data()}, s);
  const auto got_out = download(g_out), got_lse = download(g_lse);
  const std::string prefix = std::string(type_name<T>()) + " isolated merge d" + std::to_string(dims.d) + " ";
  check_close(prefix + "out", got_out, want_out, attn_tol<T>());
  // lse: −∞ exactly where both are empty, close elsewhere (check_close rejects the infinities).
  std::vector<float> got_finite, want_finite, got_empty;
  size_t both_empty = 0;
  for (size_t r = 0; r < got_lse.size(); ++r) {
    if (want_lse[r] == -kInf) {
      ++both_empty;
      got_empty.push_back(got_lse[r]);
      for (int64_t c = 0; c < dims.d; ++c) got_empty.push_back(got_out[r * size_t(dims.d) + size_t(c)]);
      continue;
    }
    got_finite.push_back(got_lse[r]);
    want_finite.push_back(want_lse[r]);
  }
  REQUIRE(both_empty == size_t(dims.B * dims.H * ((rows + 34) / 35)));
  check_close(prefix + "lse", got_finite, want_finite, kTolLse);
  std::vector<float> empty_row = filled(size_t(dims.d) + 1, 0.0f);
  empty_row[0] = -kInf;
  std::vector<float> want_empty;
  for (size_t r = 0; r < both_empty; ++r) want_empty.insert(want_empty.end(), empty_row.begin(), empty_row.end());
  check_bitwise(prefix + "both-empty rows stay (0, -inf)", got_empty, want_empty);
}

TEST_CASE("CUDA attention_merge matches the CPU with empty rows on either side and both", "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    isolated_merge_case<float>(Dims{2, 3, d}, 129);
    isolated_merge_case<sfm::bf16>(Dims{2, 3, d}, 129);
  }
  // Two blocks without valid keys merge to (0, −∞): no NaN from −∞ − (−∞).
  const Dims dims{1, 2, 32};
  const int64_t rows = 70;
  auto q = upload<float>(randn(dims.size(rows), 710)), kv = poisoned<float>(dims.size(rows));
  auto out = poisoned<float>(dims.size(rows)), part = poisoned<float>(dims.size(rows));
  auto lse = poisoned<float>(dims.rows_size(rows)), part_lse = poisoned<float>(dims.rows_size(rows));
  const AttentionInputs<float> in{dims.view<const float>(q.data(), rows), dims.view<const float>(kv.data(), rows),
                                  dims.view<const float>(kv.data(), rows), dims.shape(rows, rows), 0.1f};
  const AttentionOutputs<float> o{dims.view(out.data(), rows), lse.data()}, p{dims.view(part.data(), rows), part_lse.data()};
  sfm::attention_forward_block(Cuda{}, o, in, ValidRows{rows, 0});
  sfm::attention_forward_block(Cuda{}, p, in, ValidRows{rows, 0});
  sfm::attention_merge(Cuda{}, o, p.saved(), in.shape);
  check_bitwise("fp32 both-empty merge out", download(out), filled(dims.size(rows), 0.0f));
  check_bitwise("fp32 both-empty merge lse", download(lse), filled(dims.rows_size(rows), -kInf));
}

// --- backward_delta ------------------------------------------------------------------------------

template <class T>
void delta_case(const Dims& dims, int64_t q_len, int64_t queries) {
  const uint64_t seed = uint64_t(q_len + queries * 3 + dims.d);
  const auto d_out = rounded<T>(padded_randn(dims, q_len, queries, 800 + seed));
  const auto out = rounded<T>(padded_randn(dims, q_len, queries, 900 + seed));
  const AttentionShape s = dims.shape(q_len, q_len);
  const float sentinel = 7.0f;
  std::vector<float> want = filled(dims.rows_size(q_len), sentinel);
  ref::attention_backward_delta(want.data(), dims.view(d_out.data(), q_len), dims.view(out.data(), q_len), s, queries);

  auto g_dout = upload<T>(d_out), g_o = upload<T>(out);
  auto g_delta = upload<float>(filled(dims.rows_size(q_len), sentinel));
  sfm::attention_backward_delta(Cuda{}, g_delta.data(), dims.view<const T>(g_dout.data(), q_len),
                                dims.view<const T>(g_o.data(), q_len), s, queries);
  const auto got = download(g_delta);
  const std::string name = std::string(type_name<T>()) + " delta Lq" + std::to_string(q_len) + " queries " +
                           std::to_string(queries) + " d" + std::to_string(dims.d);
  if (queries > 0)  // fp32 sums of the same (T-rounded) products in different orders
    check_close(name, stat_rows(dims, got, q_len, 0, queries), stat_rows(dims, want, q_len, 0, queries), kTolAttn32);
  check_bitwise(name + " padded rows untouched", stat_rows(dims, got, q_len, queries, q_len),
                filled(size_t(dims.B * dims.H * (q_len - queries)), sentinel));
}

TEST_CASE("CUDA attention_backward_delta matches the CPU, padded rows untouched", "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    const Dims dims{2, 3, d};
    const std::pair<int64_t, int64_t> cases[] = {{199, 129}, {513, 513}, {129, 0}, {520, 513}};  // q_len, queries
    for (auto [q_len, queries] : cases) {
      delta_case<float>(dims, q_len, queries);
      delta_case<sfm::bf16>(dims, q_len, queries);
    }
  }
}

// --- backward_block ------------------------------------------------------------------------------

template <class T>
void backward_block_case(const Dims& dims, int64_t q_len, int64_t k_len, ValidRows valid) {
  const float scale = float(1.0 / std::sqrt(double(dims.d)));
  const uint64_t seed = uint64_t(q_len * 7 + k_len * 3 + valid.queries * 5 + valid.keys + dims.d);
  const auto q = rounded<T>(padded_randn(dims, q_len, valid.queries, 1000 + seed));
  const auto k = rounded<T>(padded_randn(dims, k_len, valid.keys, 1100 + seed));
  const auto v = rounded<T>(padded_randn(dims, k_len, valid.keys, 1200 + seed));
  const auto d_out = rounded<T>(padded_randn(dims, q_len, valid.queries, 1300 + seed));
  const AttentionShape s = dims.shape(q_len, k_len);
  const AttentionInputs<float> cpu_in{dims.view(q.data(), q_len), dims.view(k.data(), k_len),
                                      dims.view(v.data(), k_len), s, scale};

  // lse and delta of this block (its own forward); their padded rows NaN (never read).
  std::vector<float> out(dims.size(q_len)), lse(dims.rows_size(q_len), kNaN), delta(dims.rows_size(q_len), kNaN);
  if (valid.keys > 0) {
    ref::attention_forward_block({dims.view(out.data(), q_len), lse.data()}, cpu_in, valid);
    for (int64_t bh = 0; bh < dims.B * dims.H; ++bh)
      for (int64_t i = valid.queries; i < q_len; ++i) lse[size_t(bh * q_len + i)] = kNaN;
    out = rounded<T>(out);
    ref::attention_backward_delta(delta.data(), dims.view(d_out.data(), q_len), dims.view(out.data(), q_len), s,
                                  valid.queries);
  }

  // Non-zero gradients to accumulate into: every row, the padded ones included (those must stay).
  const auto init_q = rounded<T>(randn(dims.size(q_len), 1400 + seed, 0.5f));
  const auto init_k = rounded<T>(randn(dims.size(k_len), 1500 + seed, 0.5f));
  const auto init_v = rounded<T>(randn(dims.size(k_len), 1600 + seed, 0.5f));
  std::vector<float> want_q = init_q, want_k = init_k, want_v = init_v;
  ref::attention_backward_block({dims.view(want_q.data(), q_len), dims.view(want_k.data(), k_len),
                                 dims.view(want_v.data(), k_len)},
                                dims.view(d_out.data(), q_len), lse.data(), delta.data(), cpu_in, valid);

  auto gq = upload<T>(q), gk = upload<T>(k), gv = upload<T>(v), g_dout = upload<T>(d_out);
  auto g_lse = upload<float>(lse), g_delta = upload<float>(delta);
  auto g_dq = upload<T>(init_q), g_dk = upload<T>(init_k), g_dv = upload<T>(init_v);
  const AttentionInputs<T> in{dims.view<const T>(gq.data(), q_len), dims.view<const T>(gk.data(), k_len),
                              dims.view<const T>(gv.data(), k_len), s, scale};
  sfm::attention_backward_block(Cuda{},
                                AttentionGrads<T>{dims.view(g_dq.data(), q_len), dims.view(g_dk.data(), k_len),
                                                  dims.view(g_dv.data(), k_len)},
                                dims.view<const T>(g_dout.data(), q_len), g_lse.data(), g_delta.data(), in, valid);
  const auto got_q = download(g_dq), got_k = download(g_dk), got_v = download(g_dv);

  const std::string prefix = std::string(type_name<T>()) + " backward_block += ";
  const std::string name = shape_name(dims, q_len, k_len, valid);
  const bool any = valid.queries > 0 && valid.keys > 0;
  const int64_t nq = any ? valid.queries : 0, nk = any ? valid.keys : 0;
  if (any) {
    // Measured against the accumulated dV's scale, as the full backward tests do.
    const auto want_dv = head_rows(dims, want_v, k_len, 0, nk);
    const double gradient_scale = max_abs(std::span<const float>(want_dv));
    check_close(prefix + "dq " + name, head_rows(dims, got_q, q_len, 0, nq), head_rows(dims, want_q, q_len, 0, nq),
                attn_tol<T>(), gradient_scale);
    check_close(prefix + "dk " + name, head_rows(dims, got_k, k_len, 0, nk), head_rows(dims, want_k, k_len, 0, nk),
                attn_tol<T>(), gradient_scale);
    check_close(prefix + "dv " + name, head_rows(dims, got_v, k_len, 0, nk), want_dv, attn_tol<T>(), gradient_scale);
    // The block did add something (an overwrite or a no-op would not match the CPU, but say so).
    CHECK(head_rows(dims, got_v, k_len, 0, nk) != head_rows(dims, init_v, k_len, 0, nk));
  }
  check_bitwise(prefix + "padded dq untouched " + name, head_rows(dims, got_q, q_len, nq, q_len),
                head_rows(dims, init_q, q_len, nq, q_len));
  check_bitwise(prefix + "padded dk untouched " + name, head_rows(dims, got_k, k_len, nk, k_len),
                head_rows(dims, init_k, k_len, nk, k_len));
  check_bitwise(prefix + "padded dv untouched " + name, head_rows(dims, got_v, k_len, nk, k_len),
                head_rows(dims, init_v, k_len, nk, k_len));
}

TEST_CASE("CUDA attention_backward_block accumulates like the CPU, padded rows untouched",
          "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    const Dims dims{2, 3, d};
    auto both = [&](int64_t q_len, int64_t k_len, ValidRows valid) {
      backward_block_case<float>(dims, q_len, k_len, valid);
      backward_block_case<sfm::bf16>(dims, q_len, k_len, valid);
    };
    both(129, 129, {100, 77});
    both(199, 520, {129, 513});
    both(513, 192, {513, 129});
    both(129, 129, {129, 129});
    both(129, 129, {0, 129});  // nothing to add: everything unchanged
    both(129, 129, {129, 0});
  }
}

// --- the blocks assemble the full backward -------------------------------------------------------

// The global lse (rows ≥ n NaN) from the CPU's full forward, and the GPU backward of the n queries
// (padded to q_len) over key blocks of kb: dQ accumulated over the blocks, each block's dK, dV
// copied back into [B, H, n, d] buffers (zero_heads, backward_block, copy_heads as kv_blocks.hpp
// assembles them).
template <class T>
void blockwise_backward_case(const Dims& dims, int64_t n, int64_t q_len, int64_t kb) {
  const float scale = float(1.0 / std::sqrt(double(dims.d)));
  const uint64_t seed = uint64_t(n * 13 + q_len + kb + dims.d);
  const auto q = rounded<T>(padded_randn(dims, q_len, n, 1700 + seed));
  const auto k = rounded<T>(randn(dims.size(n), 1800 + seed));
  const auto v = rounded<T>(randn(dims.size(n), 1900 + seed));
  const auto d_out = rounded<T>(padded_randn(dims, q_len, n, 2000 + seed));
  const AttentionShape full = dims.shape(n, n);
  const AttentionInputs<float> cpu_in{dims.view(q.data(), q_len), dims.view(k.data(), n), dims.view(v.data(), n), full,
                                      scale};
  std::vector<float> out(dims.size(q_len), kNaN), lse_n(dims.rows_size(n));
  ref::attention_forward({dims.view(out.data(), q_len), lse_n.data()}, cpu_in);
  out = rounded<T>(out);
  std::vector<float> lse(dims.rows_size(q_len), kNaN);
  for (int64_t bh = 0; bh < dims.B * dims.H; ++bh)
    for (int64_t i = 0; i < n; ++i) lse[size_t(bh * q_len + i)] = lse_n[size_t(bh * n + i)];
  std::vector<float> want_q(dims.size(n)), want_k(dims.size(n)), want_v(dims.size(n));
  ref::attention_backward({dims.view(want_q.data(), n), dims.view(want_k.data(), n), dims.view(want_v.data(), n)},
                          dims.view(d_out.data(), q_len), {dims.view(out.data(), q_len), lse_n.data()}, cpu_in);

  auto gq = upload<T>(q), gk = upload<T>(k), gv = upload<T>(v), g_dout = upload<T>(d_out), g_o = upload<T>(out);
  auto g_lse = upload<float>(lse);
  auto g_delta = poisoned<float>(dims.rows_size(q_len));
  auto blocks = split_keys(dims, gk, gv, n, kb);
  auto g_dq = poisoned<T>(dims.size(q_len));
  auto g_dk = poisoned<T>(dims.size(n)), g_dv = poisoned<T>(dims.size(n));
  sfm::attention_backward_delta(Cuda{}, g_delta.data(), dims.view<const T>(g_dout.data(), q_len),
                                dims.view<const T>(g_o.data(), q_len), dims.shape(q_len, kb), n);
  sfm::zero_heads(Cuda{}, dims.view(g_dq.data(), q_len), dims.B, dims.H, q_len, dims.d);
  auto bk = poisoned<T>(dims.size(kb)), bv = poisoned<T>(dims.size(kb));
  for (size_t i = 0; i < blocks.size(); ++i) {
    sfm::zero_heads(Cuda{}, dims.view(bk.data(), kb), dims.B, dims.H, kb, dims.d);
    sfm::zero_heads(Cuda{}, dims.view(bv.data(), kb), dims.B, dims.H, kb, dims.d);
    const AttentionInputs<T> in{dims.view<const T>(gq.data(), q_len), dims.view<const T>(blocks[i].k.data(), kb),
                                dims.view<const T>(blocks[i].v.data(), kb), dims.shape(q_len, kb), scale};
    sfm::attention_backward_block(Cuda{}, AttentionGrads<T>{dims.view(g_dq.data(), q_len), dims.view(bk.data(), kb),
                                                            dims.view(bv.data(), kb)},
                                  dims.view<const T>(g_dout.data(), q_len), g_lse.data(), g_delta.data(), in,
                                  ValidRows{n, blocks[i].valid});
    const int64_t first = int64_t(i) * kb;
    sfm::copy_heads(Cuda{}, dims.view_from(g_dk.data(), n, first), dims.view<const T>(bk.data(), kb), dims.B, dims.H,
                    blocks[i].valid, dims.d);
    sfm::copy_heads(Cuda{}, dims.view_from(g_dv.data(), n, first), dims.view<const T>(bv.data(), kb), dims.B, dims.H,
                    blocks[i].valid, dims.d);
  }
  const auto got_q = download(g_dq);
  const std::string name = shape_name(dims, q_len, kb, ValidRows{n, n}) + " in " + std::to_string(blocks.size()) +
                           " key blocks of " + std::to_string(kb);
  const std::string prefix = std::string(type_name<T>()) + " blockwise backward ";
  const double gradient_scale = max_abs(std::span<const float>(want_v));
  check_close(prefix + "dq " + name, head_rows(dims, got_q, q_len, 0, n), want_q, attn_tol<T>(), gradient_scale);
  check_close(prefix + "dk " + name, download(g_dk), want_k, attn_tol<T>(), gradient_scale);
  check_close(prefix + "dv " + name, download(g_dv), want_v, attn_tol<T>(), gradient_scale);
  check_bitwise(prefix + "padded dq stays 0 " + name, head_rows(dims, got_q, q_len, n, q_len),
                filled(size_t(dims.B * dims.H * (q_len - n) * dims.d), 0.0f));
}

TEST_CASE("CUDA attention_backward_block summed over key blocks equals the full backward",
          "[cuda][attention][blocks]") {
  for (int64_t d : {32, 64}) {
    const Dims dims{2, 2, d};
    blockwise_backward_case<float>(dims, 129, 199, 65);
    blockwise_backward_case<sfm::bf16>(dims, 129, 199, 65);
    blockwise_backward_case<float>(dims, 513, 520, 129);
    blockwise_backward_case<sfm::bf16>(dims, 513, 520, 129);
  }
}

// --- copy_heads / zero_heads ---------------------------------------------------------------------

template <class T>
void copy_zero_case() {
  // src: the k part of a packed [B, L, 3, H, d]; dst: rows 3.. of a [B, H, L, d] buffer.
  const int64_t B = 2, H = 3, L = 37, d = 24, rows = 30, first = 3;
  const auto packed = rounded<T>(randn(size_t(B * L * 3 * H * d), 2100));
  const auto initial = rounded<T>(randn(size_t(B * H * L * d), 2101));
  const HeadsView<const float> src_host{packed.data() + H * d, L * 3 * H * d, d, 3 * H * d};
  std::vector<float> want = initial;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t c = 0; c < d; ++c)
          want[size_t(((b * H + h) * L + first + t) * d + c)] = src_host.at(b, h)[t * src_host.token_stride + c];
  auto g_packed = upload<T>(packed), g_dst = upload<T>(initial);
  const HeadsView<const T> src{g_packed.data() + H * d, L * 3 * H * d, d, 3 * H * d};
  sfm::copy_heads(Cuda{}, HeadsView<T>{g_dst.data() + first * d, H * L * d, L * d, d}, src, B, H, rows, d);
  check_bitwise(std::string(type_name<T>()) + " copy_heads packed -> rows 3..32", download(g_dst), want);

  // zero_heads on the v part of the packed buffer, rows < 20; everything else unchanged.
  std::vector<float> want_zero = packed;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < 20; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t c = 0; c < d; ++c) want_zero[size_t(((b * L + t) * 3 + 2) * H * d + h * d + c)] = 0.0f;
  sfm::zero_heads(Cuda{}, HeadsView<T>{g_packed.data() + 2 * H * d, L * 3 * H * d, d, 3 * H * d}, B, H, 20, d);
  sfm::zero_heads(Cuda{}, HeadsView<T>{g_packed.data(), L * 3 * H * d, d, 3 * H * d}, B, H, 0, d);  // no rows
  check_bitwise(std::string(type_name<T>()) + " zero_heads packed v rows < 20", download(g_packed), want_zero);
}

TEST_CASE("CUDA copy_heads and zero_heads on strided views", "[cuda][attention][blocks]") {
  copy_zero_case<float>();
  copy_zero_case<sfm::bf16>();
}

// --- determinism and the full forms --------------------------------------------------------------

TEST_CASE("CUDA attention blocks are deterministic; the full forms are the blocks with every row valid",
          "[cuda][attention][blocks][determinism]") {
  const Dims dims{2, 3, 64};
  const int64_t n = 513, q_len = 520, kb = 129;
  const float scale = 0.125f;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto gq = upload<T>(padded_randn(dims, q_len, n, 2200)), gk = upload<T>(randn(dims.size(n), 2201));
    auto gv = upload<T>(randn(dims.size(n), 2202)), g_dout = upload<T>(padded_randn(dims, q_len, n, 2203));
    auto blocks = split_keys(dims, gk, gv, n, kb);
    auto out = poisoned<T>(dims.size(q_len));
    auto lse = poisoned<float>(dims.rows_size(q_len)), delta = poisoned<float>(dims.rows_size(q_len));
    const AttentionOutputs<T> o{dims.view(out.data(), q_len), lse.data()};
    blockwise_forward<T>(dims, o, dims.view<const T>(gq.data(), q_len), q_len, n, blocks, kb, scale);
    sfm::attention_backward_delta(Cuda{}, delta.data(), dims.view<const T>(g_dout.data(), q_len),
                                  dims.view<const T>(out.data(), q_len), dims.shape(q_len, kb), n);
    auto dq = upload<T>(randn(dims.size(q_len), 2204)), dk = upload<T>(randn(dims.size(kb), 2205));
    auto dv = upload<T>(randn(dims.size(kb), 2206));
    for (const KeyBlock<T>& block : blocks)
      sfm::attention_backward_block(
          Cuda{}, AttentionGrads<T>{dims.view(dq.data(), q_len), dims.view(dk.data(), kb), dims.view(dv.data(), kb)},
          dims.view<const T>(g_dout.data(), q_len), lse.data(), delta.data(),
          AttentionInputs<T>{dims.view<const T>(gq.data(), q_len), dims.view<const T>(block.k.data(), kb),
                             dims.view<const T>(block.v.data(), kb), dims.shape(q_len, kb), scale},
          ValidRows{n, block.valid});
    return std::vector<std::vector<float>>{download(out), download(lse), download(delta), download(dq), download(dk),
                                           download(dv)};
  };
  auto twice = [&](auto tag) {
    using T = decltype(tag);
    INFO(type_name<T>());
    const auto a = run(tag), b = run(tag);
    for (size_t i = 0; i < a.size(); ++i) CHECK(bitwise_equal(a[i], b[i]));
  };
  twice(float{});
  twice(sfm::bf16{});

  // attention_forward / attention_backward and the block forms with valid = {q_len, k_len} (the
  // backward from zeroed gradients) give the same bits.
  const int64_t len = 129;
  auto gq = upload<float>(randn(dims.size(len), 2300)), gk = upload<float>(randn(dims.size(len), 2301));
  auto gv = upload<float>(randn(dims.size(len), 2302)), g_dout = upload<float>(randn(dims.size(len), 2303));
  const AttentionInputs<float> in{dims.view<const float>(gq.data(), len), dims.view<const float>(gk.data(), len),
                                  dims.view<const float>(gv.data(), len), dims.shape(len, len), scale};
  const ValidRows all{len, len};
  auto out_full = poisoned<float>(dims.size(len)), out_block = poisoned<float>(dims.size(len));
  auto lse_full = poisoned<float>(dims.rows_size(len)), lse_block = poisoned<float>(dims.rows_size(len));
  const AttentionOutputs<float> full{dims.view(out_full.data(), len), lse_full.data()};
  sfm::attention_forward(Cuda{}, full, in);
  sfm::attention_forward_block(Cuda{}, AttentionOutputs<float>{dims.view(out_block.data(), len), lse_block.data()}, in,
                               all);
  CHECK(bitwise_equal(download(out_full), download(out_block)));
  CHECK(bitwise_equal(download(lse_full), download(lse_block)));
  auto dqkv_full = poisoned<float>(3 * dims.size(len)), dqkv_block = poisoned<float>(3 * dims.size(len));
  auto grads_of = [&](DeviceArray<float>& g) {
    return AttentionGrads<float>{dims.view(g.data(), len), dims.view(g.data() + dims.size(len), len),
                                 dims.view(g.data() + 2 * dims.size(len), len)};
  };
  const auto d_out = dims.view<const float>(g_dout.data(), len);
  sfm::attention_backward(Cuda{}, grads_of(dqkv_full), d_out, full.saved(), in);
  auto delta = poisoned<float>(dims.rows_size(len));
  sfm::attention_backward_delta(Cuda{}, delta.data(), d_out, dims.view<const float>(out_full.data(), len), in.shape, len);
  sfm::zero_heads(Cuda{}, HeadsView<float>{dqkv_block.data(), 0, 0, dims.d}, 1, 1, 3 * dims.B * dims.H * len, dims.d);
  sfm::attention_backward_block(Cuda{}, grads_of(dqkv_block), d_out, lse_full.data(), delta.data(), in, all);
  // From zero, old + scale·dQ is scale·dQ bit for bit (x + 0 = x in fp32).
  CHECK(bitwise_equal(download(dqkv_full), download(dqkv_block)));
}

}  // namespace
