// Linear layer kernels (CUDA): out = in · Wᵀ + b and its backward, as cuBLASLt GEMMs.
// Reference: kernels/cpu/linear.hpp (same shapes, same overwritten/accumulated outputs).
//
// Shapes: in [rows, in_dim], weight [out_dim, in_dim] (nn.Linear), bias [out_dim], out [rows,
// out_dim]; row-major, contiguous, on the device. T is float or sfm::bf16; products accumulate in
// fp32 (CUBLAS_COMPUTE_32F: for float inputs that is true fp32, no TF32, so the fp32 CUDA path can be
// compared tightly with the CPU backend; cuda_context().tf32_matmul opts into TF32 tensor cores).
//
// Row-major onto column-major cuBLAS: a row-major [r, c] matrix is, byte for byte, a column-major
// [c, r] matrix (its transpose). So every row-major product Y = A·B is computed as the column-major
// product Yᵀ = Bᵀ·Aᵀ on the same pointers:
//   forward   out = in·Wᵀ        → outᵀ[out,rows] = W_cm[in,out]ᵀ · in_cm[in,rows]     (op(A)=T, op(B)=N)
//   d_in      d_in = d_out·W     → d_inᵀ[in,rows] = W_cm[in,out] · d_out_cm[out,rows]  (N, N)
//   d_weight  d_W += d_outᵀ·in   → d_Wᵀ[in,out] += in_cm[in,rows] · d_out_cm[out,rows]ᵀ (N, T), beta = 1
// where X_cm is the row-major buffer X read as column-major (ld = its row length). The forward's
// bias is cuBLASLt's BIAS epilogue (a vector over the rows of the column-major result, i.e. over
// out_dim), used when the bias pointer is 16-byte aligned; otherwise (parameters at arbitrary
// offsets of a flat buffer) a small kernel adds it after the GEMM. d_bias is our deterministic
// column reduction (reduce.cuh), accumulated like the CPU's.
//
// Gradients: linear_backward is templated on the gradient type G separately from T, so the bf16
// model can keep fp32 master gradients (T = bf16, G = float: cuBLASLt reads bf16 A/B and accumulates
// into an fp32 C/D with beta = 1); G = T works too.
#pragma once

#include <cstdint>
#include <type_traits>

#include "sfm/kernels/cuda/backend.cuh"
#include "sfm/kernels/cuda/reduce.cuh"

namespace sfm {

namespace cuda_detail {

template <class T>
constexpr cudaDataType_t cuda_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, bf16>, "cuda kernels support float and bf16");
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

// Largest power of two (up to 256) dividing the address: what cuBLASLt may assume about a pointer.
inline uint32_t pointer_alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// Owns the descriptors of one cublasLtMatmul call.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  ~LtDescriptors() {
    if (preference) cublasLtMatmulPreferenceDestroy(preference);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Column-major D[m, n] = op(A)·op(B) + beta·D with fp32 accumulation, optionally + bias[m] per column.
// A is stored [m, k] (trans_a false) or [k, m] (true) with leading dimension lda; B likewise [k, n] / [n, k].
inline void lt_matmul(cudaDataType_t ab_type, cudaDataType_t d_type, bool trans_a, bool trans_b, int64_t m,
                      int64_t n, int64_t k, const void* A, int64_t lda, const void* B, int64_t ldb, void* D,
                      int64_t ldd, float beta, const void* bias) {
  CudaContext& context = cuda_context();
  LtDescriptors desc;
  const cublasComputeType_t compute =
      ab_type == CUDA_R_32F && context.tf32_matmul ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  SFM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.op, compute, CUDA_R_32F));
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  SFM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  SFM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    SFM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    SFM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    // The bias has the element type of D (the default of CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE).
  }
  SFM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.a, ab_type, uint64_t(trans_a ? k : m), uint64_t(trans_a ? m : k), lda));
  SFM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.b, ab_type, uint64_t(trans_b ? n : k), uint64_t(trans_b ? k : n), ldb));
  SFM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.c, d_type, uint64_t(m), uint64_t(n), ldd));

  SFM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&desc.preference));
  auto set_preference = [&](cublasLtMatmulPreferenceAttributes_t attribute, auto value) {
    SFM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(desc.preference, attribute, &value, sizeof(value)));
  };
  set_preference(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(context.workspace_bytes));
  // Split-K partial sums stay in fp32 (no bf16 in-place reduction); both schemes are deterministic.
  set_preference(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                 uint32_t(CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE));
  // Tell the heuristic how the pointers are really aligned (it assumes 256 bytes otherwise).
  set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, pointer_alignment(A));
  set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, pointer_alignment(B));
  set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, pointer_alignment(D));
  set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, pointer_alignment(D));

  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  SFM_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(context.lt, desc.op, desc.a, desc.b, desc.c, desc.c,
                                                  desc.preference, 1, &heuristic, &found));
  SFM_CHECK(found > 0, "cuBLASLt has no algorithm for the ", m, "x", n, "x", k, " GEMM (types ", int(ab_type), "/",
            int(d_type), ")");
  const float alpha = 1.0f;
  SFM_CUBLAS_CHECK(cublasLtMatmul(context.lt, desc.op, &alpha, A, desc.a, B, desc.b, &beta, D, desc.c, D, desc.c,
                                  &heuristic.algo, context.workspace, context.workspace_bytes, context.stream));
}

// out[r, c] += bias[c] (for biases the epilogue cannot take).
template <class T>
__global__ void add_bias_kernel(T* out, const T* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(to_f32(out[i]) + to_f32(bias[i % cols]));
}

// Source for d_bias: the elements of d_out.
template <class T>
struct MatrixElement {
  const T* data;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double (&v)[1]) const { v[0] = to_f32(data[r * cols + c]); }
};

}  // namespace cuda_detail

// out = in · weightᵀ + bias (bias may be null); out overwritten. CPU: linear_forward(Cpu, ...).
template <class T>
void linear_forward(Cuda, T* out, const T* in, const T* weight, const T* bias, int64_t rows, int64_t in_dim,
                    int64_t out_dim) {
  using namespace cuda_detail;
  if (rows <= 0 || out_dim <= 0) return;
  SFM_CHECK(in_dim > 0, "linear_forward: in_dim must be positive");
  const bool fused_bias = bias != nullptr && pointer_alignment(bias) >= 16;
  lt_matmul(cuda_type<T>(), cuda_type<T>(), true, false, out_dim, rows, in_dim, weight, in_dim, in, in_dim, out, out_dim,
            0.0f, fused_bias ? bias : nullptr);
  if (bias && !fused_bias) {
    add_bias_kernel<<<grid_for(rows * out_dim, 256), 256, 0, cuda_context().stream>>>(out, bias, rows, out_dim);
    SFM_CUDA_CHECK_LAUNCH();
  }
}

// Backward of linear_forward given d_out (CPU: linear_backward(Cpu, ...)):
//   d_in      = d_out · weight        (overwritten; skipped when d_in is null)
//   d_weight += d_outᵀ · in           (accumulated)
//   d_bias   += column sums of d_out  (accumulated; skipped when null; deterministic)
// G, the gradient type, is T or float (fp32 master gradients for bf16 activations).
template <class T, class G>
  requires(std::is_same_v<G, T> || std::is_same_v<G, float>)
void linear_backward(Cuda, T* d_in, G* d_weight, G* d_bias, const T* d_out, const T* in, const T* weight,
                     int64_t rows, int64_t in_dim, int64_t out_dim) {
  using namespace cuda_detail;
  if (in_dim <= 0 || out_dim <= 0) return;
  if (rows <= 0) return;  // nothing to add, and d_in has no rows
  if (d_in)
    lt_matmul(cuda_type<T>(), cuda_type<T>(), false, false, in_dim, rows, out_dim, weight, in_dim, d_out, out_dim,
              d_in, in_dim, 0.0f, nullptr);
  lt_matmul(cuda_type<T>(), cuda_type<G>(), false, true, in_dim, out_dim, rows, in, in_dim, d_out, out_dim, d_weight,
            in_dim, 1.0f, nullptr);
  if (d_bias) column_reduce<1>(MatrixElement<T>{d_out, out_dim}, AddColumnSum<G>{d_bias}, rows, out_dim);
}

}  // namespace sfm
