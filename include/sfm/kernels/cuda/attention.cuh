// Flash attention (CUDA), forward and backward, non-causal, with the log-sum-exp.
// Reference: kernels/cpu/attention.hpp (same semantics, same HeadsView addressing, so it runs
// straight on the packed qkv [B, L, 3, H, d] and writes [B, L, H, d]). Arguments are the structs
// of kernels/attention_args.hpp (AttentionInputs, AttentionOutputs, SavedAttention, AttentionGrads).
//
// A SIMT fp32 implementation (tiles in shared memory, fp32 scores, statistics and accumulators;
// inputs and outputs in T = float or bf16; lse [B, H, Lq] fp32). Head dims 8, 16, 32, 64, 128.
//
// The kernels below are written for a padded block (kernels/cuda/attention_blocks.cuh, the twin of
// kernels/cpu/attention_blocks.hpp): only ValidRows{queries, keys} of the shape's q_len × k_len
// rows hold tokens. Keys at or past valid.keys are masked and never read; queries at or past
// valid.queries are never read either, the forward writes them out = 0, lse = −∞ and the backward
// leaves their dQ alone; lse and delta rows are addressed with the padded stride q_len. The full
// attention_forward / attention_backward below are these same kernels with valid = {q_len, k_len}
// (then no row is padded), the backward in overwrite mode; the blockwise backward accumulates.
//
// Tiling (all kernels): a block of 256 threads works on a 64-query × 64-key tile. Thread
// (ty, tx) = (tid / 16, tid % 16) owns rows ty·4 + i (i < 4) and columns tx + 16·j of the 64×64
// score tile, and columns tx + 16·j (j < ⌈d/16⌉, only those < d) of 64×d output tiles. The 16 threads that share
// rows are one half-warp, so row reductions are xor shuffles over lanes 8, 4, 2, 1 (every lane ends
// with the same bits). [64][d] tiles are stored with row stride d + 1 (odd, so reading a column
// across 16 rows hits 16 banks); the 64×64 probability tile with stride 65.
//
// Forward (grid: query tiles of q_len × B·H): Q tile resident; for each key tile: S = scale·Q Kᵀ,
// online softmax (running max m, running sum l, O rescaled by exp(m_old − m_new)), O += P V.
// Out = O / l, lse = m + log l. Keys past valid.keys score −∞; queries past valid.queries are
// computed on zero rows and written as out = 0, lse = −∞ (all rows, when valid.keys = 0); rows past
// q_len do not exist and are not written.
//
// Backward, deterministic (no atomics; tests compare runs bitwise), in three kernels:
//   1. delta[b, h, i] = Σ_c dO[i, c]·O[i, c]   (one warp per valid query row)
//   2. dK, dV per key tile (grid: key tiles of valid.keys × B·H): K, V resident; for each query
//      tile recompute P = exp(scale·Q Kᵀ − lse), dP = dO Vᵀ, dS = P ∘ (dP − delta);
//      dV += Pᵀ dO, dK += dSᵀ Q.
//   3. dQ per query tile (grid: query tiles of valid.queries × B·H): Q, dO resident; for each key
//      tile recompute P, dP, dS the same way; dQ += dS K.
// FlashAttention-2 instead adds dQ with fp32 atomics from kernel 2; the separate dQ pass costs two
// more tile products (7 instead of 5) but is bitwise reproducible. dQ, dK are scaled by `scale`
// at the end. Kernels 2 and 3 either overwrite (full backward) or, with Accumulate, add the
// block's share to what d_q, d_k, d_v hold: new = old + scale·dQ (fp32, rounded once to T). The
// full backward keeps delta in the context's scratch between kernels 1 and 3; the blockwise one
// takes it from the caller (the global delta of the whole sequence).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "sfm/kernels/attention_args.hpp"
#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/views.hpp"

namespace sfm {

namespace cuda_detail {

constexpr int kTile = 64;          // query rows and key rows per tile
constexpr int kAttnThreads = 256;  // 16 × 16
constexpr int kPStride = kTile + 1;

// Output columns per thread: thread tx owns columns tx + 16·j, j < head_cols<D>; for D < 16 the
// threads with tx ≥ D own none (owns_col guards their loads and stores).
template <int D>
constexpr int head_cols = (D + 15) / 16;
template <int D>
__device__ __forceinline__ bool owns_col(int tx, int j) {
  return D % 16 == 0 || tx + 16 * j < D;
}

// Head (b, h) of a view on the device (HeadsView::at is host-only).
template <class T>
__device__ __forceinline__ T* head_of(HeadsView<T> v, int64_t b, int64_t h) {
  return v.data + b * v.batch_stride + h * v.head_stride;
}

// tile[r][c] = head[first + r][c] as fp32 for r < 64, c < D; rows at or past len are zero.
template <int D, class T>
__device__ __forceinline__ void load_tile(float* tile, const T* head, int64_t token_stride, int64_t first,
                                          int64_t len) {
  for (int i = threadIdx.x; i < kTile * D; i += kAttnThreads) {
    const int r = i / D, c = i % D;
    const int64_t t = first + r;
    tile[r * (D + 1) + c] = t < len ? to_f32(head[t * token_stride + c]) : 0.0f;
  }
}

// acc[i][j] += Σ_c A[ty·4+i][c] · B[tx+16j][c]   (A·Bᵀ of two [64][D] tiles: the 64×64 scores).
template <int D>
__device__ __forceinline__ void tile_abt(float (&acc)[4][4], const float* A, const float* B, int tx, int ty) {
#pragma unroll 4
  for (int c = 0; c < D; ++c) {
    float a[4], b[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = A[(ty * 4 + i) * (D + 1) + c];
#pragma unroll
    for (int j = 0; j < 4; ++j) b[j] = B[(tx + 16 * j) * (D + 1) + c];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// acc[i][j] += Σ_r P[ty·4+i][r] · B[r][tx+16j]   (P·B: P a 64×64 tile, B a [64][D] tile).
template <int D>
__device__ __forceinline__ void tile_pb(float (&acc)[4][head_cols<D>], const float* P, const float* B, int tx, int ty) {
#pragma unroll 4
  for (int r = 0; r < kTile; ++r) {
    float p[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) p[i] = P[(ty * 4 + i) * kPStride + r];
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) {
      const float b = owns_col<D>(tx, j) ? B[r * (D + 1) + tx + 16 * j] : 0.0f;
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i][j] = fmaf(p[i], b, acc[i][j]);
    }
  }
}

// acc[i][j] += Σ_r P[r][ty·4+i] · B[r][tx+16j]   (Pᵀ·B).
template <int D>
__device__ __forceinline__ void tile_ptb(float (&acc)[4][head_cols<D>], const float* P, const float* B, int tx, int ty) {
#pragma unroll 4
  for (int r = 0; r < kTile; ++r) {
    float p[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) p[i] = P[r * kPStride + ty * 4 + i];
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) {
      const float b = owns_col<D>(tx, j) ? B[r * (D + 1) + tx + 16 * j] : 0.0f;
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i][j] = fmaf(p[i], b, acc[i][j]);
    }
  }
}

// Reductions over the 16 lanes of a half-warp (all 32 lanes call them together).
__device__ __forceinline__ float half_warp_max(float v) {
  for (int offset = 8; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ float half_warp_sum(float v) {
  for (int offset = 8; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <int D>
constexpr size_t forward_smem_bytes() {  // Q, K, V tiles and the probability tile
  return (3 * kTile * (D + 1) + kTile * kPStride) * sizeof(float);
}
template <int D>
constexpr size_t backward_smem_bytes() {  // four [64][D] tiles, one 64×64 tile, lse and delta of 64 rows
  return (4 * kTile * (D + 1) + kTile * kPStride + 2 * kTile) * sizeof(float);
}

// One query tile of the forward. Queries [0, valid.queries) against keys [0, valid.keys); every
// row < q_len of the tile is written (padded ones as out = 0, lse = −∞).
template <int D, class T>
__global__ void __launch_bounds__(kAttnThreads)
    attention_forward_kernel(HeadsView<T> out, float* lse, HeadsView<const T> q, HeadsView<const T> k,
                             HeadsView<const T> v, AttentionShape s, float scale, ValidRows valid) {
  extern __shared__ float smem[];
  float* sQ = smem;
  float* sK = sQ + kTile * (D + 1);
  float* sV = sK + kTile * (D + 1);
  float* sP = sV + kTile * (D + 1);
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t bh = blockIdx.y, b = bh / s.heads, h = bh % s.heads;
  const int64_t q0 = int64_t(blockIdx.x) * kTile;
  const T* q_head = head_of(q, b, h);
  const T* k_head = head_of(k, b, h);
  const T* v_head = head_of(v, b, h);
  // Rows with a softmax to take; a tile of padded queries only (or a block without keys) skips the
  // key loop and writes its rows as empty.
  const int64_t computed = valid.keys > 0 ? valid.queries : 0;
  const int64_t keys = q0 < computed ? valid.keys : 0;

  load_tile<D>(sQ, q_head, q.token_stride, q0, valid.queries);
  float m[4], l[4], o[4][head_cols<D>];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) o[i][j] = 0.0f;
  }

  for (int64_t k0 = 0; k0 < keys; k0 += kTile) {
    __syncthreads();  // the previous tile's readers of sK, sV, sP are done
    load_tile<D>(sK, k_head, k.token_stride, k0, valid.keys);
    load_tile<D>(sV, v_head, v.token_stride, k0, valid.keys);
    __syncthreads();

    float sc[4][4] = {};
    tile_abt<D>(sc, sQ, sK, tx, ty);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float row_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        sc[i][j] = k0 + tx + 16 * j < valid.keys ? sc[i][j] * scale : -INFINITY;
        row_max = fmaxf(row_max, sc[i][j]);
      }
      // Key k0 is valid and owned by tx = 0, j = 0 of this half-warp: m_new is finite.
      const float m_new = fmaxf(m[i], half_warp_max(row_max));
      const float correction = expf(m[i] - m_new);  // 0 on the first tile (m = −∞)
      float row_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = expf(sc[i][j] - m_new);  // 0 for masked keys
        sP[(ty * 4 + i) * kPStride + tx + 16 * j] = p;
        row_sum += p;
      }
      l[i] = l[i] * correction + half_warp_sum(row_sum);
      m[i] = m_new;
#pragma unroll
      for (int j = 0; j < head_cols<D>; ++j) o[i][j] *= correction;
    }
    __syncthreads();
    tile_pb<D>(o, sP, sV, tx, ty);
  }

  T* out_head = head_of(out, b, h);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = q0 + ty * 4 + i;
    if (row >= s.q_len) continue;
    const bool empty = row >= computed;  // padded query, or no valid key: (0, −∞)
    const float inv = 1.0f / l[i];
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j)
      if (owns_col<D>(tx, j))
        out_head[row * out.token_stride + tx + 16 * j] = from_f32<T>(empty ? 0.0f : o[i][j] * inv);
    if (tx == 0) lse[bh * s.q_len + row] = empty ? -INFINITY : m[i] + logf(l[i]);
  }
}

// delta[bh·q_len + i] = Σ_c dO[i, c]·O[i, c] for i < queries, one warp per (b, h, i); rows at or
// past `queries` are not touched.
template <int D, class T>
__global__ void attention_delta_kernel(float* delta, HeadsView<const T> d_out, HeadsView<const T> out,
                                       AttentionShape s, int64_t queries) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // bh·queries + i
  if (row >= s.batch * s.heads * queries) return;
  const int64_t bh = row / queries, i = row % queries, b = bh / s.heads, h = bh % s.heads;
  const T* dO = head_of(d_out, b, h) + i * d_out.token_stride;
  const T* O = head_of(out, b, h) + i * out.token_stride;
  float sum = 0.0f;
  for (int c = lane; c < D; c += 32) sum += to_f32(dO[c]) * to_f32(O[c]);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) delta[bh * s.q_len + i] = sum;
}

// Scores of one 64×64 tile for the backward: with queries in sQ/sdO (rows q0..) and keys in sK/sV
// (rows k0..), p[i][j] = P and ds[i][j] = dS for query ty·4+i, key tx+16j; 0 outside the valid rows.
template <int D>
__device__ __forceinline__ void backward_tile_scores(float (&p)[4][4], float (&ds)[4][4], const float* sQ,
                                                     const float* sdO, const float* sK, const float* sV,
                                                     const float* sL, const float* sDelta, int64_t q0, int64_t k0,
                                                     ValidRows valid, float scale, int tx, int ty) {
  float sc[4][4] = {}, dp[4][4] = {};
  tile_abt<D>(sc, sQ, sK, tx, ty);
  tile_abt<D>(dp, sdO, sV, tx, ty);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = ty * 4 + i;
    const bool row_ok = q0 + r < valid.queries;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const bool ok = row_ok && k0 + tx + 16 * j < valid.keys;
      p[i][j] = ok ? expf(sc[i][j] * scale - sL[r]) : 0.0f;
      ds[i][j] = p[i][j] * (dp[i][j] - sDelta[r]);
    }
  }
}

// Loads lse and delta of query rows q0.. into shared memory (0 at or past `queries`, the valid
// rows; masked anyway). Row stride q_len, the padded length.
__device__ __forceinline__ void load_row_stats(float* sL, float* sDelta, const float* lse, const float* delta,
                                               int64_t bh, int64_t q0, int64_t queries, int64_t q_len) {
  if (threadIdx.x < kTile) {
    const int64_t row = q0 + threadIdx.x;
    sL[threadIdx.x] = row < queries ? lse[bh * q_len + row] : 0.0f;
    sDelta[threadIdx.x] = row < queries ? delta[bh * q_len + row] : 0.0f;
  }
}

// Stores one gradient element: overwrite with `value`, or (Accumulate) add it to what is there,
// in fp32, rounding once to T.
template <bool Accumulate, class T>
__device__ __forceinline__ void store_grad(T* at, float value) {
  if constexpr (Accumulate)
    *at = from_f32<T>(to_f32(*at) + value);
  else
    *at = from_f32<T>(value);
}

// dK, dV of one key tile of the valid keys, summed over the valid queries.
template <int D, class T, bool Accumulate>
__global__ void __launch_bounds__(kAttnThreads)
    attention_backward_dkdv_kernel(HeadsView<T> d_k, HeadsView<T> d_v, HeadsView<const T> d_out, const float* lse,
                                   const float* delta, HeadsView<const T> q, HeadsView<const T> k,
                                   HeadsView<const T> v, AttentionShape s, float scale, ValidRows valid) {
  extern __shared__ float smem[];
  float* sK = smem;
  float* sV = sK + kTile * (D + 1);
  float* sQ = sV + kTile * (D + 1);
  float* sdO = sQ + kTile * (D + 1);
  float* sPS = sdO + kTile * (D + 1);  // P, then dS, of the current tile
  float* sL = sPS + kTile * kPStride;
  float* sDelta = sL + kTile;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t bh = blockIdx.y, b = bh / s.heads, h = bh % s.heads;
  const int64_t k0 = int64_t(blockIdx.x) * kTile;
  const T* q_head = head_of(q, b, h);
  const T* do_head = head_of(d_out, b, h);

  load_tile<D>(sK, head_of(k, b, h), k.token_stride, k0, valid.keys);
  load_tile<D>(sV, head_of(v, b, h), v.token_stride, k0, valid.keys);
  float dk[4][head_cols<D>] = {}, dv[4][head_cols<D>] = {};  // key rows ty·4+i, columns tx+16j

  for (int64_t q0 = 0; q0 < valid.queries; q0 += kTile) {
    __syncthreads();  // the previous tile's readers of sQ, sdO, sPS are done
    load_tile<D>(sQ, q_head, q.token_stride, q0, valid.queries);
    load_tile<D>(sdO, do_head, d_out.token_stride, q0, valid.queries);
    load_row_stats(sL, sDelta, lse, delta, bh, q0, valid.queries, s.q_len);
    __syncthreads();

    float p[4][4], ds[4][4];
    backward_tile_scores<D>(p, ds, sQ, sdO, sK, sV, sL, sDelta, q0, k0, valid, scale, tx, ty);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sPS[(ty * 4 + i) * kPStride + tx + 16 * j] = p[i][j];
    __syncthreads();
    tile_ptb<D>(dv, sPS, sdO, tx, ty);  // dV[key][c] += Σ_q P[q][key]·dO[q][c]
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sPS[(ty * 4 + i) * kPStride + tx + 16 * j] = ds[i][j];
    __syncthreads();
    tile_ptb<D>(dk, sPS, sQ, tx, ty);  // dK[key][c] += Σ_q dS[q][key]·Q[q][c]
  }

  T* dk_head = head_of(d_k, b, h);
  T* dv_head = head_of(d_v, b, h);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t key = k0 + ty * 4 + i;
    if (key >= valid.keys) continue;  // padded keys: left alone
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) {
      if (!owns_col<D>(tx, j)) continue;
      store_grad<Accumulate>(dk_head + key * d_k.token_stride + tx + 16 * j, dk[i][j] * scale);
      store_grad<Accumulate>(dv_head + key * d_v.token_stride + tx + 16 * j, dv[i][j]);
    }
  }
}

// dQ of one query tile of the valid queries, summed over the valid keys.
template <int D, class T, bool Accumulate>
__global__ void __launch_bounds__(kAttnThreads)
    attention_backward_dq_kernel(HeadsView<T> d_q, HeadsView<const T> d_out, const float* lse, const float* delta,
                                 HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v, AttentionShape s,
                                 float scale, ValidRows valid) {
  extern __shared__ float smem[];
  float* sQ = smem;
  float* sdO = sQ + kTile * (D + 1);
  float* sK = sdO + kTile * (D + 1);
  float* sV = sK + kTile * (D + 1);
  float* sPS = sV + kTile * (D + 1);  // dS of the current tile
  float* sL = sPS + kTile * kPStride;
  float* sDelta = sL + kTile;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t bh = blockIdx.y, b = bh / s.heads, h = bh % s.heads;
  const int64_t q0 = int64_t(blockIdx.x) * kTile;
  const T* k_head = head_of(k, b, h);
  const T* v_head = head_of(v, b, h);

  load_tile<D>(sQ, head_of(q, b, h), q.token_stride, q0, valid.queries);
  load_tile<D>(sdO, head_of(d_out, b, h), d_out.token_stride, q0, valid.queries);
  load_row_stats(sL, sDelta, lse, delta, bh, q0, valid.queries, s.q_len);
  float dq[4][head_cols<D>] = {};  // query rows ty·4+i, columns tx+16j

  for (int64_t k0 = 0; k0 < valid.keys; k0 += kTile) {
    __syncthreads();  // the previous tile's readers of sK, sV, sPS are done (and the loads above)
    load_tile<D>(sK, k_head, k.token_stride, k0, valid.keys);
    load_tile<D>(sV, v_head, v.token_stride, k0, valid.keys);
    __syncthreads();

    float p[4][4], ds[4][4];
    backward_tile_scores<D>(p, ds, sQ, sdO, sK, sV, sL, sDelta, q0, k0, valid, scale, tx, ty);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sPS[(ty * 4 + i) * kPStride + tx + 16 * j] = ds[i][j];
    __syncthreads();
    tile_pb<D>(dq, sPS, sK, tx, ty);  // dQ[q][c] += Σ_key dS[q][key]·K[key][c]
  }

  T* dq_head = head_of(d_q, b, h);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = q0 + ty * 4 + i;
    if (row >= valid.queries) continue;  // padded queries: left alone
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j)
      if (owns_col<D>(tx, j)) store_grad<Accumulate>(dq_head + row * d_q.token_stride + tx + 16 * j, dq[i][j] * scale);
  }
}

// Opt a kernel into more than 48 KiB of dynamic shared memory (once per kernel and thread).
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    SFM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

inline void check_head_dim(int64_t head_dim, const char* what) {
  SFM_CHECK(head_dim == 8 || head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128, what,
            ": head_dim ", head_dim, " not supported by the CUDA kernels (8, 16, 32, 64, 128)");
}

inline void check_attention_shape(const AttentionShape& s, const char* what) {
  check_head_dim(s.head_dim, what);
  SFM_CHECK(s.batch > 0 && s.heads > 0 && s.q_len > 0 && s.k_len > 0, what, ": empty shape");
  SFM_CHECK(s.batch * s.heads <= 65535, what, ": batch·heads = ", s.batch * s.heads, " exceeds the grid limit");
}

// f(std::integral_constant<int, D>{}) for the supported head dims (checked before).
template <class F>
void with_head_dim(int64_t head_dim, F&& f) {
  switch (head_dim) {
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
    default: return f(std::integral_constant<int, 128>{});
  }
}

// The forward of the padded block (all q_len rows written; see the forward kernel).
template <int D, class T>
void launch_attention_forward(const AttentionOutputs<T>& o, const AttentionInputs<T>& in, ValidRows valid) {
  const AttentionShape& s = in.shape;
  const auto kernel = attention_forward_kernel<D, T>;
  constexpr size_t smem = forward_smem_bytes<D>();
  allow_smem(kernel, smem);
  const dim3 grid(unsigned((s.q_len + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  kernel<<<grid, kAttnThreads, smem, cuda_context().stream>>>(o.out, o.lse, in.q, in.k, in.v, s, in.scale, valid);
  SFM_CUDA_CHECK_LAUNCH();
}

// delta of the first `queries` rows of every (b, h), row stride s.q_len.
template <int D, class T>
void launch_attention_delta(float* delta, HeadsView<const T> d_out, HeadsView<const T> out, const AttentionShape& s,
                            int64_t queries) {
  const int64_t rows = s.batch * s.heads * queries;
  if (rows == 0) return;
  attention_delta_kernel<D, T><<<unsigned((rows + 7) / 8), 256, 0, cuda_context().stream>>>(delta, d_out, out, s,
                                                                                           queries);
  SFM_CUDA_CHECK_LAUNCH();
}

// Kernels 2 and 3 of the backward on the valid rows (overwriting, or with Accumulate adding to,
// the gradients of those rows); nothing to do without a valid query or key.
template <int D, class T, bool Accumulate>
void launch_attention_backward(const AttentionGrads<T>& g, HeadsView<const T> d_out, const float* lse,
                               const float* delta, const AttentionInputs<T>& in, ValidRows valid) {
  if (valid.queries == 0 || valid.keys == 0) return;
  const AttentionShape& s = in.shape;
  cudaStream_t stream = cuda_context().stream;
  constexpr size_t smem = backward_smem_bytes<D>();
  const auto dkdv = attention_backward_dkdv_kernel<D, T, Accumulate>;
  allow_smem(dkdv, smem);
  const dim3 key_grid(unsigned((valid.keys + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  dkdv<<<key_grid, kAttnThreads, smem, stream>>>(g.d_k, g.d_v, d_out, lse, delta, in.q, in.k, in.v, s, in.scale,
                                                 valid);
  SFM_CUDA_CHECK_LAUNCH();

  const auto dq = attention_backward_dq_kernel<D, T, Accumulate>;
  allow_smem(dq, smem);
  const dim3 query_grid(unsigned((valid.queries + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  dq<<<query_grid, kAttnThreads, smem, stream>>>(g.d_q, d_out, lse, delta, in.q, in.k, in.v, s, in.scale, valid);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda_detail

// o.out = softmax(in.scale · Q Kᵀ) V per (batch, head) (overwritten); o.lse [batch, heads, q_len]
// fp32. All pointers on the device. The padded-block form is attention_forward_block
// (attention_blocks.cuh); this is it with every row valid.
template <class T>
void attention_forward(Cuda, AttentionOutputs<T> o, const AttentionInputs<T>& in) {
  using namespace cuda_detail;
  check_attention_shape(in.shape, "attention_forward");
  const ValidRows all{in.shape.q_len, in.shape.k_len};
  with_head_dim(in.shape.head_dim, [&](auto d) { launch_attention_forward<decltype(d)::value, T>(o, in, all); });
}

// Backward, recomputing P = exp(scale·QKᵀ − lse) with the forward's saved lse:
//   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ fwd.out)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
// g.d_q, g.d_k, g.d_v are overwritten (they may be parts of one packed d_qkv buffer, as in the
// model). The blockwise form, which accumulates, is attention_backward_block (attention_blocks.cuh).
template <class T>
void attention_backward(Cuda, AttentionGrads<T> g, InHeads<T> d_out, SavedAttention<T> fwd,
                        const AttentionInputs<T>& in) {
  using namespace cuda_detail;
  const AttentionShape& s = in.shape;
  check_attention_shape(s, "attention_backward");
  const int64_t rows = s.batch * s.heads * s.q_len;
  float* delta = static_cast<float*>(cuda_context().scratch(size_t(rows) * sizeof(float)));
  with_head_dim(s.head_dim, [&](auto d) {
    constexpr int D = decltype(d)::value;
    launch_attention_delta<D, T>(delta, d_out, fwd.out, s, s.q_len);
    launch_attention_backward<D, T, /*Accumulate=*/false>(g, d_out, fwd.lse, delta, in, ValidRows{s.q_len, s.k_len});
  });
}

}  // namespace sfm
