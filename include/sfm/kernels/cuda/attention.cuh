// Flash attention (CUDA), forward and backward, non-causal, with the log-sum-exp.
// Reference: kernels/cpu/attention.hpp (same semantics, same HeadsView addressing, so it runs
// straight on the packed qkv [B, L, 3, H, d] and writes [B, L, H, d]).
//
// A SIMT fp32 implementation (tiles in shared memory, fp32 scores, statistics and accumulators;
// inputs and outputs in T = float or bf16; lse [B, H, Lq] fp32). Head dims 8, 16, 32, 64, 128.
//
// Tiling (all kernels): a block of 256 threads works on a 64-query × 64-key tile. Thread
// (ty, tx) = (tid / 16, tid % 16) owns rows ty·4 + i (i < 4) and columns tx + 16·j of the 64×64
// score tile, and columns tx + 16·j (j < ⌈d/16⌉, only those < d) of 64×d output tiles. The 16 threads that share
// rows are one half-warp, so row reductions are xor shuffles over lanes 8, 4, 2, 1 (every lane ends
// with the same bits). [64][d] tiles are stored with row stride d + 1 (odd, so reading a column
// across 16 rows hits 16 banks); the 64×64 probability tile with stride 65.
//
// Forward (grid: query tiles × B·H): Q tile resident; for each key tile: S = scale·Q Kᵀ, online
// softmax (running max m, running sum l, O rescaled by exp(m_old − m_new)), O += P V.
// Out = O / l, lse = m + log l. Keys past k_len score −∞; queries past q_len are computed on
// zero rows and not written.
//
// Backward, deterministic (no atomics; tests compare runs bitwise), in three kernels:
//   1. delta[b, h, i] = Σ_c dO[i, c]·O[i, c]   (one warp per query row)
//   2. dK, dV per key tile (grid: key tiles × B·H): K, V resident; for each query tile recompute
//      P = exp(scale·Q Kᵀ − lse), dP = dO Vᵀ, dS = P ∘ (dP − delta); dV += Pᵀ dO, dK += dSᵀ Q.
//   3. dQ per query tile (grid: query tiles × B·H): Q, dO resident; for each key tile recompute
//      P, dP, dS the same way; dQ += dS K.
// FlashAttention-2 instead adds dQ with fp32 atomics from kernel 2; the separate dQ pass costs two
// more tile products (7 instead of 5) but is bitwise reproducible. dQ, dK are scaled by `scale`
// at the end. delta lives in the context's scratch between kernels 1 and 3.
#pragma once

#include <cmath>
#include <cstdint>

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

template <int D, class T>
__global__ void __launch_bounds__(kAttnThreads)
    attention_forward_kernel(HeadsView<T> out, float* lse, HeadsView<const T> q, HeadsView<const T> k,
                             HeadsView<const T> v, AttentionShape s, float scale) {
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

  load_tile<D>(sQ, q_head, q.token_stride, q0, s.q_len);
  float m[4], l[4], o[4][head_cols<D>];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) o[i][j] = 0.0f;
  }

  for (int64_t k0 = 0; k0 < s.k_len; k0 += kTile) {
    __syncthreads();  // the previous tile's readers of sK, sV, sP are done
    load_tile<D>(sK, k_head, k.token_stride, k0, s.k_len);
    load_tile<D>(sV, v_head, v.token_stride, k0, s.k_len);
    __syncthreads();

    float sc[4][4] = {};
    tile_abt<D>(sc, sQ, sK, tx, ty);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float row_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        sc[i][j] = k0 + tx + 16 * j < s.k_len ? sc[i][j] * scale : -INFINITY;
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
    const float inv = 1.0f / l[i];
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j)
      if (owns_col<D>(tx, j)) out_head[row * out.token_stride + tx + 16 * j] = from_f32<T>(o[i][j] * inv);
    if (tx == 0) lse[bh * s.q_len + row] = m[i] + logf(l[i]);
  }
}

// delta[bh·q_len + i] = Σ_c dO[i, c]·O[i, c], one warp per (b, h, i).
template <int D, class T>
__global__ void attention_delta_kernel(float* delta, HeadsView<const T> d_out, HeadsView<const T> out,
                                       AttentionShape s) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // bh·q_len + i
  if (row >= s.batch * s.heads * s.q_len) return;
  const int64_t bh = row / s.q_len, i = row % s.q_len, b = bh / s.heads, h = bh % s.heads;
  const T* dO = head_of(d_out, b, h) + i * d_out.token_stride;
  const T* O = head_of(out, b, h) + i * out.token_stride;
  float sum = 0.0f;
  for (int c = lane; c < D; c += 32) sum += to_f32(dO[c]) * to_f32(O[c]);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) delta[row] = sum;
}

// Scores of one 64×64 tile for the backward: with queries in sQ/sdO (rows q0..) and keys in sK/sV
// (rows k0..), p[i][j] = P and ds[i][j] = dS for query ty·4+i, key tx+16j; 0 outside the lengths.
template <int D>
__device__ __forceinline__ void backward_tile_scores(float (&p)[4][4], float (&ds)[4][4], const float* sQ,
                                                     const float* sdO, const float* sK, const float* sV,
                                                     const float* sL, const float* sDelta, int64_t q0, int64_t k0,
                                                     const AttentionShape& s, float scale, int tx, int ty) {
  float sc[4][4] = {}, dp[4][4] = {};
  tile_abt<D>(sc, sQ, sK, tx, ty);
  tile_abt<D>(dp, sdO, sV, tx, ty);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = ty * 4 + i;
    const bool row_ok = q0 + r < s.q_len;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const bool ok = row_ok && k0 + tx + 16 * j < s.k_len;
      p[i][j] = ok ? expf(sc[i][j] * scale - sL[r]) : 0.0f;
      ds[i][j] = p[i][j] * (dp[i][j] - sDelta[r]);
    }
  }
}

// Loads lse and delta of query rows q0.. into shared memory (0 past q_len; masked anyway).
__device__ __forceinline__ void load_row_stats(float* sL, float* sDelta, const float* lse, const float* delta,
                                               int64_t bh, int64_t q0, int64_t q_len) {
  if (threadIdx.x < kTile) {
    const int64_t row = q0 + threadIdx.x;
    sL[threadIdx.x] = row < q_len ? lse[bh * q_len + row] : 0.0f;
    sDelta[threadIdx.x] = row < q_len ? delta[bh * q_len + row] : 0.0f;
  }
}

template <int D, class T>
__global__ void __launch_bounds__(kAttnThreads)
    attention_backward_dkdv_kernel(HeadsView<T> d_k, HeadsView<T> d_v, HeadsView<const T> d_out, const float* lse,
                                   const float* delta, HeadsView<const T> q, HeadsView<const T> k,
                                   HeadsView<const T> v, AttentionShape s, float scale) {
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

  load_tile<D>(sK, head_of(k, b, h), k.token_stride, k0, s.k_len);
  load_tile<D>(sV, head_of(v, b, h), v.token_stride, k0, s.k_len);
  float dk[4][head_cols<D>] = {}, dv[4][head_cols<D>] = {};  // key rows ty·4+i, columns tx+16j

  for (int64_t q0 = 0; q0 < s.q_len; q0 += kTile) {
    __syncthreads();  // the previous tile's readers of sQ, sdO, sPS are done
    load_tile<D>(sQ, q_head, q.token_stride, q0, s.q_len);
    load_tile<D>(sdO, do_head, d_out.token_stride, q0, s.q_len);
    load_row_stats(sL, sDelta, lse, delta, bh, q0, s.q_len);
    __syncthreads();

    float p[4][4], ds[4][4];
    backward_tile_scores<D>(p, ds, sQ, sdO, sK, sV, sL, sDelta, q0, k0, s, scale, tx, ty);
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
    if (key >= s.k_len) continue;
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j) {
      if (!owns_col<D>(tx, j)) continue;
      dk_head[key * d_k.token_stride + tx + 16 * j] = from_f32<T>(dk[i][j] * scale);
      dv_head[key * d_v.token_stride + tx + 16 * j] = from_f32<T>(dv[i][j]);
    }
  }
}

template <int D, class T>
__global__ void __launch_bounds__(kAttnThreads)
    attention_backward_dq_kernel(HeadsView<T> d_q, HeadsView<const T> d_out, const float* lse, const float* delta,
                                 HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v, AttentionShape s,
                                 float scale) {
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

  load_tile<D>(sQ, head_of(q, b, h), q.token_stride, q0, s.q_len);
  load_tile<D>(sdO, head_of(d_out, b, h), d_out.token_stride, q0, s.q_len);
  load_row_stats(sL, sDelta, lse, delta, bh, q0, s.q_len);
  float dq[4][head_cols<D>] = {};  // query rows ty·4+i, columns tx+16j

  for (int64_t k0 = 0; k0 < s.k_len; k0 += kTile) {
    __syncthreads();  // the previous tile's readers of sK, sV, sPS are done (and the loads above)
    load_tile<D>(sK, k_head, k.token_stride, k0, s.k_len);
    load_tile<D>(sV, v_head, v.token_stride, k0, s.k_len);
    __syncthreads();

    float p[4][4], ds[4][4];
    backward_tile_scores<D>(p, ds, sQ, sdO, sK, sV, sL, sDelta, q0, k0, s, scale, tx, ty);
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
    if (row >= s.q_len) continue;
#pragma unroll
    for (int j = 0; j < head_cols<D>; ++j)
      if (owns_col<D>(tx, j)) dq_head[row * d_q.token_stride + tx + 16 * j] = from_f32<T>(dq[i][j] * scale);
  }
}

// Opt a kernel into more than 48 KiB of dynamic shared memory (once per kernel and thread).
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    SFM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

inline void check_attention_shape(const AttentionShape& s, const char* what) {
  SFM_CHECK(s.head_dim == 8 || s.head_dim == 16 || s.head_dim == 32 || s.head_dim == 64 || s.head_dim == 128, what,
            ": head_dim ", s.head_dim, " not supported by the CUDA kernels (8, 16, 32, 64, 128)");
  SFM_CHECK(s.batch > 0 && s.heads > 0 && s.q_len > 0 && s.k_len > 0, what, ": empty shape");
  SFM_CHECK(s.batch * s.heads <= 65535, what, ": batch·heads = ", s.batch * s.heads, " exceeds the grid limit");
}

template <int D, class T>
void attention_forward_d(HeadsView<T> out, float* lse, HeadsView<const T> q, HeadsView<const T> k,
                         HeadsView<const T> v, AttentionShape s, float scale) {
  const auto kernel = attention_forward_kernel<D, T>;
  constexpr size_t smem = forward_smem_bytes<D>();
  allow_smem(kernel, smem);
  const dim3 grid(unsigned((s.q_len + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  kernel<<<grid, kAttnThreads, smem, cuda_context().stream>>>(out, lse, q, k, v, s, scale);
  SFM_CUDA_CHECK_LAUNCH();
}

template <int D, class T>
void attention_backward_d(HeadsView<T> d_q, HeadsView<T> d_k, HeadsView<T> d_v, HeadsView<const T> d_out,
                          HeadsView<const T> out, const float* lse, HeadsView<const T> q, HeadsView<const T> k,
                          HeadsView<const T> v, AttentionShape s, float scale) {
  CudaContext& context = cuda_context();
  const int64_t rows = s.batch * s.heads * s.q_len;
  float* delta = static_cast<float*>(context.scratch(size_t(rows) * sizeof(float)));
  attention_delta_kernel<D, T><<<unsigned((rows + 7) / 8), 256, 0, context.stream>>>(delta, d_out, out, s);
  SFM_CUDA_CHECK_LAUNCH();

  constexpr size_t smem = backward_smem_bytes<D>();
  const auto dkdv = attention_backward_dkdv_kernel<D, T>;
  allow_smem(dkdv, smem);
  const dim3 key_grid(unsigned((s.k_len + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  dkdv<<<key_grid, kAttnThreads, smem, context.stream>>>(d_k, d_v, d_out, lse, delta, q, k, v, s, scale);
  SFM_CUDA_CHECK_LAUNCH();

  const auto dq = attention_backward_dq_kernel<D, T>;
  allow_smem(dq, smem);
  const dim3 query_grid(unsigned((s.q_len + kTile - 1) / kTile), unsigned(s.batch * s.heads));
  dq<<<query_grid, kAttnThreads, smem, context.stream>>>(d_q, d_out, lse, delta, q, k, v, s, scale);
  SFM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda_detail

// out = softmax(scale · Q Kᵀ) V per (batch, head) (overwritten); lse [batch, heads, q_len] fp32.
// All pointers on the device. CPU: attention_forward(Cpu, ...) (there lse and scale are T).
template <class T>
void attention_forward(Cuda, HeadsView<T> out, float* lse, InHeads<T> q, InHeads<T> k, InHeads<T> v,
                       AttentionShape s, float scale) {
  using namespace cuda_detail;
  check_attention_shape(s, "attention_forward");
  switch (s.head_dim) {
    case 8: return attention_forward_d<8, T>(out, lse, q, k, v, s, scale);
    case 16: return attention_forward_d<16, T>(out, lse, q, k, v, s, scale);
    case 32: return attention_forward_d<32, T>(out, lse, q, k, v, s, scale);
    case 64: return attention_forward_d<64, T>(out, lse, q, k, v, s, scale);
    default: return attention_forward_d<128, T>(out, lse, q, k, v, s, scale);
  }
}

// Backward, recomputing P = exp(scale·QKᵀ − lse):
//   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
// d_q, d_k, d_v are overwritten (they may be parts of one packed d_qkv buffer, as in the model).
template <class T>
void attention_backward(Cuda, HeadsView<T> d_q, HeadsView<T> d_k, HeadsView<T> d_v, InHeads<T> d_out,
                        InHeads<T> out, const float* lse, InHeads<T> q, InHeads<T> k, InHeads<T> v, AttentionShape s,
                        float scale) {
  using namespace cuda_detail;
  check_attention_shape(s, "attention_backward");
  switch (s.head_dim) {
    case 8: return attention_backward_d<8, T>(d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
    case 16: return attention_backward_d<16, T>(d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
    case 32: return attention_backward_d<32, T>(d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
    case 64: return attention_backward_d<64, T>(d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
    default: return attention_backward_d<128, T>(d_q, d_k, d_v, d_out, out, lse, q, k, v, s, scale);
  }
}

}  // namespace sfm
