// Deterministic column reductions (CUDA): out[c] += Σ_r value(r, c) over the rows of a matrix.
//
// Parameter gradients (linear d_bias, layernorm d_gamma/d_beta, the cls and mask token gradients)
// are column sums over every token of the batch. They must not depend on scheduling (tests compare
// runs bitwise, and data-parallel ranks must agree), so there are no float atomics: two passes with
// a fixed summation order, accumulated in double like the CPU reference.
//   pass 1: block (bx, by) sums rows [by·kChunkRows, (by+1)·kChunkRows) of columns bx·32 .. bx·32+31;
//           thread (tx, ty) sums rows ty, ty+8, ... of the chunk, then thread ty = 0 sums the 8
//           per-thread sums in order → partial[by][c].
//   pass 2: one thread per column sums the partials of all chunks in chunk order and adds to out.
// The chunk size is a constant, so the order depends only on the shape.
#pragma once

#include <cstdint>

#include "sfm/kernels/cuda/backend.cuh"

namespace sfm::cuda_detail {

constexpr int kReduceColumns = 32;   // columns per block (threadIdx.x)
constexpr int kReduceLanes = 8;      // row lanes per block (threadIdx.y)
constexpr int kChunkRows = 256;      // rows per block

// Source: a functor with `__device__ void operator()(int64_t r, int64_t c, double (&v)[NV]) const`
// writing the NV values of element (r, c); Sink: `__device__ void operator()(int64_t c, const
// double (&sum)[NV]) const` adding the column sums into the outputs.
template <int NV, class Source>
__global__ void column_partials_kernel(double* partial, Source source, int64_t rows, int64_t cols) {
  __shared__ double lane_sums[NV][kReduceLanes][kReduceColumns];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kReduceColumns + tx;
  const int64_t first = int64_t(blockIdx.y) * kChunkRows;
  const int64_t last = first + kChunkRows < rows ? first + kChunkRows : rows;
  double acc[NV] = {};
  if (c < cols)
    for (int64_t r = first + ty; r < last; r += kReduceLanes) {
      double v[NV];
      source(r, c, v);
      for (int j = 0; j < NV; ++j) acc[j] += v[j];
    }
  for (int j = 0; j < NV; ++j) lane_sums[j][ty][tx] = acc[j];
  __syncthreads();
  if (ty == 0 && c < cols) {
    for (int j = 0; j < NV; ++j) {
      double s = 0;
      for (int lane = 0; lane < kReduceLanes; ++lane) s += lane_sums[j][lane][tx];
      partial[(int64_t(blockIdx.y) * NV + j) * cols + c] = s;
    }
  }
}

template <int NV, class Sink>
__global__ void column_finish_kernel(const double* partial, Sink sink, int64_t chunks, int64_t cols) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double sum[NV] = {};
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int j = 0; j < NV; ++j) sum[j] += partial[(chunk * NV + j) * cols + c];
  sink(c, sum);
}

// Runs both passes on the compute stream (partials in the context's scratch).
template <int NV, class Source, class Sink>
void column_reduce(Source source, Sink sink, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  CudaContext& context = cuda_context();
  const int64_t chunks = rows > 0 ? (rows + kChunkRows - 1) / kChunkRows : 0;
  SFM_CHECK(chunks <= 65535, "column_reduce: ", rows, " rows exceed the grid limit");
  double* partial = nullptr;
  if (chunks > 0) {
    partial = static_cast<double*>(context.scratch(size_t(chunks * NV * cols) * sizeof(double)));
    const dim3 grid(unsigned((cols + kReduceColumns - 1) / kReduceColumns), unsigned(chunks));
    column_partials_kernel<NV><<<grid, dim3(kReduceColumns, kReduceLanes), 0, context.stream>>>(partial, source,
                                                                                             rows, cols);
    SFM_CUDA_CHECK_LAUNCH();
  }
  // With no rows the sums are zero and the sink still runs (out += 0, as on the CPU).
  column_finish_kernel<NV><<<unsigned((cols + 255) / 256), 256, 0, context.stream>>>(partial, sink, chunks, cols);
  SFM_CUDA_CHECK_LAUNCH();
}

// Sink: out[c] = T(float(out[c]) + float(sum)), the CPU's `out[c] += T(sum)` for T = float.
template <class T>
struct AddColumnSum {
  T* out;
  __device__ void operator()(int64_t c, const double (&sum)[1]) const {
    out[c] = from_f32<T>(to_f32(out[c]) + float(sum[0]));
  }
};

}  // namespace sfm::cuda_detail
